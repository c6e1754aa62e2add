"""The catalogue described for clients: each algorithm's hyper-parameters, defaults and ranges.

A parameter's default is mlserve's (:meth:`mlserve.training.catalogue.Algorithm.parameters`);
its type, range and choices are read from the estimator's own constraints, the
``_parameter_constraints`` table that scikit-learn checks in every ``fit``
(``sklearn.utils._param_validation``): ``Interval`` (bounds, open or closed),
``StrOptions`` / ``Options`` (choices), ``"boolean"``, ``"random_state"``, Python
types, ``None`` (nullable), and ``"array-like"`` when the default is a list of integers
(``hidden_layer_sizes``: an ``array`` of ``integer`` items, bounded by the parameter's
integer interval). Parameters a client may not set
(:data:`mlserve.training.catalogue.FORBIDDEN_PARAMS`), deprecated ones (a default only a
hidden constraint accepts) and those with no JSON form (other arrays, callables,
estimators, dicts) are left out.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import (
    Hidden,
    Interval,
    Options,
    StrOptions,
    make_constraint,
)

from mlserve.training.catalogue import CATALOGUE, FORBIDDEN_PARAMS, Algorithm

Form = dict[str, Any]
RANDOM_STATE_MAX = 2**32 - 1  # numpy's seed range, as sklearn's "random_state" constraint says
_TYPES = {bool: "boolean", str: "string", int: "integer", Integral: "integer"}
_TYPES.update({float: "number", Real: "number"})


def describe_algorithms(task: str | None = None) -> list[dict[str, Any]]:
    """Every catalogue algorithm (of ``task``, or of both tasks), sorted by name then task.

    Returns
    -------
    list of dict
        ``{"name", "task", "estimator", "incremental", "available", "install_hint",
        "params"}``, see :func:`describe_algorithm`.
    """
    chosen = [a for (t, _name), a in CATALOGUE.items() if task is None or t == task]
    return [describe_algorithm(a) for a in sorted(chosen, key=lambda a: (a.name, a.task))]


def describe_algorithm(algorithm: Algorithm) -> dict[str, Any]:
    """One algorithm: its estimator's public import path and its settable parameters.

    Returns
    -------
    dict
        ``name``, ``task``, ``estimator`` (``"sklearn.ensemble.HistGradientBoostingRegressor"``)
        ``incremental`` (whether online updates can ``partial_fit`` it, see
        docs/online-learning.md), ``available`` (false when an optional dependency it
        needs is not installed on the server: training it is then a 422) with
        ``install_hint`` (``"pip install 'mlserve[torch]'"``, else None), and ``params``
        in the estimator's ``get_params`` order (see :func:`describe_parameter`).
    """
    constraints = algorithm.estimator._parameter_constraints
    hint = algorithm.install_hint()
    params = []
    for name, default in algorithm.parameters().items():
        if name in FORBIDDEN_PARAMS:
            continue
        described = describe_parameter(name, default, constraints.get(name, []))
        if described is not None:
            params.append(described)
    return {
        "name": algorithm.name,
        "task": algorithm.task,
        "estimator": public_path(algorithm.estimator),
        "incremental": algorithm.incremental,
        "available": hint is None,
        "install_hint": hint,
        "params": params,
    }


def public_path(cls: type) -> str:
    """``module.Class`` by the public module (the part before the first private one)."""
    public = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join([*public, cls.__name__])


def describe_parameter(name: str, default: Any, constraints: list[Any]) -> dict[str, Any] | None:
    """A parameter's default, main form and every JSON form it accepts; ``None`` to leave it out.

    Parameters
    ----------
    name : str
    default : object
        The value mlserve fits with unless told otherwise.
    constraints : list
        The entry of the estimator's ``_parameter_constraints``.

    Returns
    -------
    dict or None
        ``name``, ``default``, ``nullable`` (``None`` is accepted), the main form's
        ``type`` (``number``, ``integer``, ``boolean``, ``string`` or ``array``),
        ``items`` (``integer`` for an array, else None), ``choices``, ``minimum``,
        ``maximum``, ``exclusive_minimum``, ``exclusive_maximum`` (of the items, for an
        array), and ``accepts``: every JSON form in scikit-learn's order (an array
        first). The main form is the one the default satisfies (its own type first:
        ``False`` is also an integer to scikit-learn), or the first form when the
        default is ``None``. ``None`` when the default is neither a JSON scalar nor a
        list of integers, no JSON form exists, or only a hidden (deprecated)
        constraint accepts the default.
    """
    visible = [c for c in constraints if not isinstance(c, Hidden)]
    if _is_integer_list(default) and "array-like" in visible:
        return _describe_integer_list(name, list(default), visible)
    if not _is_json_scalar(default):
        return None
    forms = [(form, c) for c in visible for form in _forms(c)]
    if not forms:
        return None
    nullable = any(c is None or c == "random_state" for c in visible)
    main = _main_form(default, forms)
    if main is None:
        return None
    return {
        "name": name,
        "default": default,
        **main,
        "nullable": nullable,
        "accepts": [form for form, _c in forms],
    }


def _is_integer_list(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _describe_integer_list(name: str, default: list[int], visible: list[Any]) -> dict[str, Any]:
    """An ``array`` of ``integer`` items, each within the parameter's integer interval (if
    any; that interval is also a form of its own: one integer, one item)."""
    bounds = [c for c in visible if isinstance(c, Interval) and c.type is Integral]
    items = _interval_form(bounds[0]) if bounds else _form("integer")
    main = {**items, "type": "array", "items": "integer"}
    others = [form for c in visible if c != "array-like" for form in _forms(c)]
    nullable = any(c is None for c in visible)
    return {
        "name": name,
        "default": default,
        **main,
        "nullable": nullable,
        "accepts": [main, *others],
    }


def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    return value is None or isinstance(value, bool | int | str)


def _main_form(default: Any, forms: list[tuple[Form, Any]]) -> Form | None:
    if default is None:
        return forms[0][0]
    satisfied = [form for form, c in forms if _satisfies(c, default)]
    own_type = _TYPES.get(type(default))
    for form in satisfied:
        if form["type"] == own_type:
            return form
    return satisfied[0] if satisfied else None


def _satisfies(constraint: Any, value: Any) -> bool:
    if constraint == "random_state":
        constraint = _random_state_interval()
    return bool(make_constraint(constraint).is_satisfied_by(value))


def _random_state_interval() -> Interval:
    return Interval(Integral, 0, RANDOM_STATE_MAX, closed="both")


def _forms(constraint: Any) -> list[Form]:
    """The JSON forms one constraint stands for (none for arrays, callables, ``None``...)."""
    if constraint == "boolean":
        return [_form("boolean")]
    if constraint == "random_state":
        return [_interval_form(_random_state_interval())]
    if isinstance(constraint, Interval):
        return [_interval_form(constraint)]
    if isinstance(constraint, StrOptions):
        choices = sorted(constraint.options - constraint.deprecated)
        return [_form("string", choices=choices)] if choices else []
    if isinstance(constraint, Options):
        return _options_form(constraint)
    if isinstance(constraint, type) and constraint in _TYPES:
        return [_form(_TYPES[constraint])]
    return []


def _options_form(constraint: Options) -> list[Form]:
    kind = _TYPES.get(constraint.type)
    values = [v for v in constraint.options - constraint.deprecated if _is_json_scalar(v)]
    if kind is None or not values:
        return []  # e.g. Options(Real, {np.inf}): infinity has no JSON form
    return [_form(kind, choices=sorted(values))]


def _interval_form(interval: Interval) -> Form:
    kind = "integer" if interval.type is Integral else "number"
    left, right = _finite(interval.left), _finite(interval.right)
    return _form(
        kind,
        minimum=left,
        maximum=right,
        exclusive_minimum=left is not None and interval.closed in ("right", "neither"),
        exclusive_maximum=right is not None and interval.closed in ("left", "neither"),
    )


def _finite(bound: Any) -> float | None:
    if bound is None or not _is_json_scalar(float(bound)):
        return None
    return float(bound)


def _form(
    kind: str,
    choices: list[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> Form:
    return {
        "type": kind,
        "items": None,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "exclusive_maximum": exclusive_maximum,
    }
