"""Unit tests for mlserve.training.algorithms: each parameter's description against
scikit-learn itself.

The descriptions are checked by behaviour, not by reading them back: every default,
boundary and choice they advertise must be accepted by the catalogue's own
validation (:func:`mlserve.training.catalogue.build_estimator`, i.e. the estimator's
``_validate_params``), and every value just outside a single-form range refused.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import pytest
from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from mlserve.errors import ValidationFailed
from mlserve.training.algorithms import describe_algorithm, describe_algorithms, describe_parameter
from mlserve.training.catalogue import (
    CATALOGUE,
    FORBIDDEN_PARAMS,
    Algorithm,
    build_estimator,
    get_algorithm,
)

ALGORITHMS = sorted(CATALOGUE.values(), key=lambda a: (a.task, a.name))
IDS = [f"{a.task}-{a.name}" for a in ALGORITHMS]


def accepted(algorithm: Algorithm, name: str, value: Any) -> bool:
    try:
        build_estimator(algorithm, {name: value}, random_state=0)
    except ValidationFailed:
        return False
    return True


def _numbers(form: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(step, cast, wrap) of a numeric form; an array's bounds are those of its items."""
    kind = form["items"] if form["type"] == "array" else form["type"]
    step: Any = 1 if kind == "integer" else 1.0
    cast: Any = int if kind == "integer" else float
    return step, cast, (lambda v: [v]) if form["type"] == "array" else (lambda v: v)


def outside(form: dict[str, Any]) -> list[Any]:
    """Values just outside a numeric form's bounds (a one-item list for an array)."""
    values: list[Any] = []
    step, cast, wrap = _numbers(form)
    if form["minimum"] is not None:
        low = cast(form["minimum"])
        values.append(wrap(low if form["exclusive_minimum"] else low - step))
    if form["maximum"] is not None:
        high = cast(form["maximum"])
        values.append(wrap(high if form["exclusive_maximum"] else high + step))
    return values


def inside(form: dict[str, Any]) -> list[Any]:
    """Closed bounds of a numeric form (each must be accepted)."""
    _step, cast, wrap = _numbers(form)
    values = []
    if form["minimum"] is not None and not form["exclusive_minimum"]:
        values.append(wrap(cast(form["minimum"])))
    if form["maximum"] is not None and not form["exclusive_maximum"]:
        values.append(wrap(cast(form["maximum"])))
    return values


# --------------------------------------------------------------------------- every algorithm


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=IDS)
def test_every_advertised_value_is_accepted_by_the_estimator(algorithm: Algorithm) -> None:
    described = describe_algorithm(algorithm)
    assert described["params"], algorithm.name
    for param in described["params"]:
        name = param["name"]
        assert accepted(algorithm, name, param["default"]), name
        if param["nullable"]:
            assert accepted(algorithm, name, None), name
        for form in param["accepts"]:
            for value in [*(form["choices"] or []), *inside(form)]:
                assert accepted(algorithm, name, value), (name, value)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=IDS)
def test_values_outside_a_single_form_are_refused(algorithm: Algorithm) -> None:
    checked = 0
    for param in describe_algorithm(algorithm)["params"]:
        if len(param["accepts"]) != 1:
            continue
        form = param["accepts"][0]
        for value in outside(form):
            assert not accepted(algorithm, param["name"], value), (param["name"], value)
            checked += 1
        if form["choices"] is not None:
            assert not accepted(algorithm, param["name"], "not-a-choice"), param["name"]
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=IDS)
def test_params_follow_get_params_order_without_forbidden_ones(algorithm: Algorithm) -> None:
    names = [p["name"] for p in describe_algorithm(algorithm)["params"]]
    order = list(algorithm.estimator().get_params(deep=False))
    assert names == [n for n in order if n in names]
    assert not set(names) & FORBIDDEN_PARAMS


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=IDS)
def test_estimator_path_imports_the_class(algorithm: Algorithm) -> None:
    import importlib

    path = describe_algorithm(algorithm)["estimator"]
    module, _, name = path.rpartition(".")
    assert "._" not in path
    assert getattr(importlib.import_module(module), name) is algorithm.estimator


# --------------------------------------------------------------------------- chosen parameters


def param(task: str, algorithm: str, name: str) -> dict[str, Any] | None:
    described = describe_algorithm(get_algorithm(algorithm, task))
    found = [p for p in described["params"] if p["name"] == name]
    return found[0] if found else None


def test_learning_rate_of_gradient_boosting_is_a_positive_number() -> None:
    assert param("regression", "gradient_boosting", "learning_rate") == {
        "name": "learning_rate",
        "default": 0.1,
        "type": "number",
        "items": None,
        "choices": None,
        "minimum": 0.0,
        "maximum": None,
        "exclusive_minimum": True,
        "exclusive_maximum": False,
        "nullable": False,
        "accepts": [
            {
                "type": "number",
                "items": None,
                "choices": None,
                "minimum": 0.0,
                "maximum": None,
                "exclusive_minimum": True,
                "exclusive_maximum": False,
            }
        ],
    }


def test_mlserve_default_replaces_the_estimator_default() -> None:
    n_estimators = param("regression", "random_forest", "n_estimators")
    assert n_estimators is not None
    assert (n_estimators["default"], n_estimators["type"], n_estimators["minimum"]) == (
        100,
        "integer",
        1.0,
    )
    max_iter = param("classification", "logistic_regression", "max_iter")
    assert max_iter is not None and max_iter["default"] == 1000  # scikit-learn's is 100


def test_nullable_integer_with_none_default_takes_the_first_form() -> None:
    max_depth = param("regression", "decision_tree", "max_depth")
    assert max_depth is not None
    assert max_depth["default"] is None and max_depth["nullable"] is True
    assert (max_depth["type"], max_depth["minimum"], max_depth["maximum"]) == ("integer", 1.0, None)


def test_random_state_is_a_nullable_seed() -> None:
    seed = param("classification", "random_forest", "random_state")
    assert seed is not None
    assert (seed["type"], seed["minimum"], seed["maximum"], seed["nullable"]) == (
        "integer",
        0.0,
        float(2**32 - 1),
        True,
    )


def test_parameter_with_several_forms_describes_the_default_one_first() -> None:
    # RandomForestRegressor.max_features: int >= 1, float in (0, 1], "sqrt"/"log2", None.
    max_features = param("regression", "random_forest", "max_features")
    assert max_features is not None
    assert max_features["default"] == 1.0
    assert (max_features["type"], max_features["minimum"], max_features["maximum"]) == (
        "number",
        0.0,
        1.0,
    )
    assert (max_features["exclusive_minimum"], max_features["exclusive_maximum"]) == (True, False)
    assert [f["type"] for f in max_features["accepts"]] == ["integer", "number", "string"]
    assert max_features["accepts"][2]["choices"] == ["log2", "sqrt"]
    classifier = param("classification", "random_forest", "max_features")
    assert classifier is not None
    assert (classifier["default"], classifier["type"]) == ("sqrt", "string")


def test_boolean_default_is_described_as_boolean_not_integer() -> None:
    # SGD's average is Interval(Integral, 0, None) or "boolean": False is both to sklearn.
    average = param("classification", "sgd_classifier", "average")
    assert average is not None
    assert (average["default"], average["type"]) == (False, "boolean")
    assert [f["type"] for f in average["accepts"]] == ["integer", "boolean"]


@pytest.mark.parametrize(
    ("task", "algorithm", "name"),
    [
        ("regression", "decision_tree", "monotonic_cst"),  # array-like or None
        ("classification", "naive_bayes", "priors"),  # array-like or None
        ("classification", "knn", "metric_params"),  # dict or None
        ("classification", "logistic_regression", "penalty"),  # deprecated in 1.8
        ("classification", "random_forest", "n_jobs"),  # forbidden
        ("regression", "linear_regression", "copy_X"),  # forbidden
    ],
)
def test_parameters_without_json_form_or_forbidden_are_left_out(
    task: str, algorithm: str, name: str
) -> None:
    assert name in get_algorithm(algorithm, task).estimator().get_params()
    assert param(task, algorithm, name) is None


# --------------------------------------------------------------------------- describe_parameter


@pytest.mark.parametrize(
    ("default", "constraints", "expected"),
    [
        (
            0.5,
            [Interval(Real, 0, 1, closed="neither")],
            {"type": "number", "minimum": 0.0, "maximum": 1.0, "exclusive_minimum": True,
             "exclusive_maximum": True, "choices": None, "nullable": False},
        ),
        (
            3,
            [Interval(Integral, 1, None, closed="left"), None],
            {"type": "integer", "minimum": 1.0, "maximum": None, "exclusive_minimum": False,
             "exclusive_maximum": False, "choices": None, "nullable": True},
        ),
        (
            "b",
            [StrOptions({"b", "a", "old"}, deprecated={"old"}), Hidden(StrOptions({"x"}))],
            {"type": "string", "choices": ["a", "b"], "minimum": None, "nullable": False},
        ),
        (True, ["boolean"], {"type": "boolean", "choices": None, "nullable": False}),
        ("loss", [str, callable, None], {"type": "string", "choices": None, "nullable": True}),
    ],
    ids=["open-interval", "integer-or-none", "str-options", "boolean", "any-string"],
)  # fmt: skip
def test_describe_parameter_maps_constraints(
    default: Any, constraints: list[Any], expected: dict[str, Any]
) -> None:
    described = describe_parameter("p", default, constraints)
    assert described is not None
    assert {k: described[k] for k in expected} == expected
    assert described["default"] == default


@pytest.mark.parametrize(
    ("default", "constraints"),
    [
        ("deprecated", [StrOptions({"l1", "l2"}), Hidden(StrOptions({"deprecated"}))]),
        (None, ["array-like", None]),
        (None, [dict, callable, None]),
        (float("inf"), [Interval(Real, 0, None, closed="left")]),
    ],
    ids=["deprecated-sentinel", "array-or-none", "dict-or-callable", "inf"],
)
def test_describe_parameter_leaves_out_what_json_cannot_set(
    default: Any, constraints: list[Any]
) -> None:
    assert describe_parameter("p", default, constraints) is None


def test_describe_algorithms_filters_by_task_and_sorts_by_name() -> None:
    regression = describe_algorithms("regression")
    assert [a["name"] for a in regression] == sorted(a["name"] for a in regression)
    assert {a["task"] for a in regression} == {"regression"}
    every = describe_algorithms()
    assert len(every) == len(CATALOGUE)
    assert [(a["name"], a["task"]) for a in every] == sorted((n, t) for (t, n) in CATALOGUE)
