"""The estimator catalogue: algorithm name -> scikit-learn estimator per task.

Hyper-parameters sent by a client are checked at submit time with the
estimator's own constraints (``sklearn.utils._param_validation``, the machinery
behind every estimator's ``fit``), so a bad value is a 422 before any job runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from mlserve.errors import ValidationFailed
from mlserve.training.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

TASKS = ("regression", "classification")
# Optional dependency groups of pyproject.toml an entry may need: extra -> module it imports.
EXTRAS: dict[str, str] = {"torch": "torch"}


def module_available(module: str) -> bool:
    """Whether ``module`` can be imported here (found on the path; not imported)."""
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Algorithm:
    """One catalogue entry for one task.

    Attributes
    ----------
    name : str
        Public name (``"gradient_boosting"``).
    task : {"regression", "classification"}
    estimator : type
        scikit-learn estimator class.
    defaults : dict
        Parameters mlserve sets unless the client overrides them.
    wrapper : {"scale_target", "calibrate"} or None
        ``scale_target`` standardises the regression target around the
        estimator (``TransformedTargetRegressor``): SGD, SVR and MLP are fitted
        on targets of unit scale, as their defaults (learning rates, epsilon,
        regularisation) assume. ``calibrate`` wraps SVC in
        ``CalibratedClassifierCV(ensemble=False)`` to serve probabilities, the
        replacement scikit-learn 1.9 gives for the deprecated ``probability=True``
        (Platt 1999 sigmoid calibration).
    incremental : bool
        The estimator learns from new samples with ``partial_fit`` (online
        updates, see :mod:`mlserve.online.policy`).
    extra : str or None
        The optional dependency group (``pip install 'mlserve[<extra>]'``) the estimator
        needs to train, see :data:`EXTRAS`; ``None``: only mlserve's own dependencies.
    """

    name: str
    task: str
    estimator: type[BaseEstimator]
    defaults: dict[str, Any] = field(default_factory=dict)
    wrapper: str | None = None
    incremental: bool = False
    extra: str | None = None

    def wrap(self, estimator: BaseEstimator) -> BaseEstimator:
        """Return ``estimator`` inside this entry's wrapper, if it has one."""
        if self.wrapper == "scale_target":
            return TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
        if self.wrapper == "calibrate":
            return CalibratedClassifierCV(estimator, ensemble=False)
        return estimator

    def install_hint(self) -> str | None:
        """How to install what the entry is missing to train here; ``None`` when nothing is."""
        if self.extra is None or module_available(EXTRAS[self.extra]):
            return None
        return f"pip install 'mlserve[{self.extra}]'"

    def parameters(self) -> dict[str, Any]:
        """Default value of every hyper-parameter, mlserve's defaults applied."""
        params = self.estimator().get_params(deep=False)
        params.update(self.defaults)
        return params


PASSIVE_AGGRESSIVE: dict[str, Any] = {"penalty": None, "learning_rate": "pa1", "eta0": 1.0}
_REGRESSION = [
    Algorithm("linear_regression", "regression", LinearRegression),
    Algorithm("ridge", "regression", Ridge),
    Algorithm("lasso", "regression", Lasso),
    Algorithm("elastic_net", "regression", ElasticNet),
    Algorithm(
        "sgd_regressor", "regression", SGDRegressor, wrapper="scale_target", incremental=True
    ),
    # scikit-learn 1.8 deprecated PassiveAggressiveRegressor for this SGDRegressor
    # configuration (Crammer et al. 2006, PA-I).
    Algorithm(
        "passive_aggressive_regressor",
        "regression",
        SGDRegressor,
        PASSIVE_AGGRESSIVE | {"loss": "epsilon_insensitive"},
        wrapper="scale_target",
        incremental=True,
    ),
    Algorithm("decision_tree", "regression", DecisionTreeRegressor),
    Algorithm("random_forest", "regression", RandomForestRegressor, {"n_estimators": 100}),
    Algorithm("extra_trees", "regression", ExtraTreesRegressor),
    Algorithm("gradient_boosting", "regression", HistGradientBoostingRegressor),
    Algorithm("knn", "regression", KNeighborsRegressor),
    Algorithm("svr", "regression", SVR, wrapper="scale_target"),
    Algorithm(
        "mlp",
        "regression",
        MLPRegressor,
        {"max_iter": 500, "early_stopping": True},
        wrapper="scale_target",
        incremental=True,
    ),
    # PyTorch networks (docs/torch.md): trained in the worker, served as float64 ONNX.
    Algorithm(
        "torch_mlp",
        "regression",
        TorchMLPRegressor,
        wrapper="scale_target",
        incremental=True,
        extra="torch",
    ),
]
_CLASSIFICATION = [
    Algorithm("logistic_regression", "classification", LogisticRegression, {"max_iter": 1000}),
    Algorithm(
        "sgd_classifier", "classification", SGDClassifier, {"loss": "log_loss"}, incremental=True
    ),
    # Likewise the replacement of the deprecated PassiveAggressiveClassifier (PA-I).
    Algorithm(
        "passive_aggressive_classifier",
        "classification",
        SGDClassifier,
        PASSIVE_AGGRESSIVE | {"loss": "hinge"},
        incremental=True,
    ),
    Algorithm("perceptron", "classification", Perceptron, incremental=True),
    Algorithm("decision_tree", "classification", DecisionTreeClassifier),
    Algorithm("random_forest", "classification", RandomForestClassifier, {"n_estimators": 100}),
    Algorithm("extra_trees", "classification", ExtraTreesClassifier),
    Algorithm("gradient_boosting", "classification", HistGradientBoostingClassifier),
    Algorithm("knn", "classification", KNeighborsClassifier),
    Algorithm("svc", "classification", SVC, wrapper="calibrate"),
    Algorithm("naive_bayes", "classification", GaussianNB, incremental=True),
    Algorithm(
        "mlp",
        "classification",
        MLPClassifier,
        {"max_iter": 500, "early_stopping": True},
        incremental=True,
    ),
    Algorithm("torch_mlp", "classification", TorchMLPClassifier, incremental=True, extra="torch"),
]
CATALOGUE: dict[tuple[str, str], Algorithm] = {
    (a.task, a.name): a for a in [*_REGRESSION, *_CLASSIFICATION]
}
# Parameters a client may not set: they touch the process, not the model.
# ``probability`` (SVC) is replaced by calibration, see ``Algorithm.wrapper``; ``device``
# (torch_mlp) is the server's MLSERVE_TORCH_DEVICE, passed as a server parameter.
FORBIDDEN_PARAMS = frozenset({"n_jobs", "verbose", "warm_start", "copy_X", "probability", "device"})
# ``algorithm: "auto"`` (:mod:`mlserve.training.auto`) scores these entries, in this order,
# with their defaults: a linear baseline that costs seconds first (it always runs, so a
# spent budget still yields a model), then the two tree ensembles that win on most
# tabular data (Grinsztajn et al., "Why do tree-based models still outperform deep
# learning on tabular data?", NeurIPS 2022 Datasets and Benchmarks), the faster first.
AUTO = "auto"
AUTO_CANDIDATES: dict[str, tuple[str, ...]] = {
    "regression": ("ridge", "gradient_boosting", "random_forest"),
    "classification": ("logistic_regression", "gradient_boosting", "random_forest"),
}


def algorithm_names(task: str | None = None) -> list[str]:
    """Sorted algorithm names, for one task or all."""
    return sorted({name for (t, name) in CATALOGUE if task is None or t == task})


def get_algorithm(name: str, task: str) -> Algorithm:
    """Return the catalogue entry ``name`` for ``task``.

    Raises
    ------
    ValidationFailed
        If ``name`` is not in the catalogue for ``task``.
    """
    found = CATALOGUE.get((task, name))
    if found is None:
        raise ValidationFailed(
            f"unknown algorithm {name!r} for {task}; choose one of {algorithm_names(task)}",
            {"field": "algorithm", "value": name, "task": task},
        )
    return found


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Lists become tuples where sklearn expects tuples (``hidden_layer_sizes``)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def build_estimator(
    algorithm: Algorithm,
    params: dict[str, Any],
    random_state: int | None,
    server_params: Mapping[str, Any] | None = None,
) -> BaseEstimator:
    """Instantiate and validate the estimator with ``params``.

    Parameters
    ----------
    algorithm : Algorithm
    params : dict
        Client hyper-parameters (JSON values).
    random_state : int or None
        Applied when the estimator has a ``random_state`` the client left unset.
    server_params : mapping, optional
        Parameters the server sets and a client may not (:data:`FORBIDDEN_PARAMS`, e.g.
        ``{"device": "cpu"}``), applied to the estimators that have them.

    Returns
    -------
    estimator
        Unfitted, inside the entry's wrapper if it has one (see
        :meth:`Algorithm.wrap`; :func:`inner_estimator` unwraps it).

    Raises
    ------
    ValidationFailed
        The entry's optional dependency is not installed (``field`` ``algorithm``, with
        the ``extra`` and the ``install`` command); unknown parameter name, forbidden
        parameter, or a value the estimator's constraints reject (``field`` names it).
    """
    hint = algorithm.install_hint()
    if hint is not None:
        raise ValidationFailed(
            f"{algorithm.name} needs the optional extra '{algorithm.extra}', not installed "
            f"on this server: {hint}",
            {"field": "algorithm", "extra": algorithm.extra, "install": hint},
        )
    known = algorithm.estimator().get_params(deep=False)
    for key in params:
        if key not in known or key in FORBIDDEN_PARAMS:
            raise ValidationFailed(
                f"unknown hyper-parameter {key!r} for {algorithm.name}",
                {"field": f"params.{key}", "allowed": sorted(set(known) - FORBIDDEN_PARAMS)},
            )
    _refuse_booleans_as_numbers(algorithm, params, known)
    merged = {**algorithm.defaults, **_jsonable(params)}
    merged.update({k: v for k, v in (server_params or {}).items() if k in known})
    if "random_state" in known and merged.get("random_state") is None:
        merged["random_state"] = random_state
    estimator = algorithm.estimator(**merged)
    try:
        estimator._validate_params()
    except (InvalidParameterError, TypeError, ValueError) as exc:
        field_name = _param_named_in(str(exc), params)
        raise ValidationFailed(
            f"invalid hyper-parameter: {exc}",
            {"field": f"params.{field_name}" if field_name else "params"},
        ) from exc
    return algorithm.wrap(estimator)


def _refuse_booleans_as_numbers(
    algorithm: Algorithm, params: dict[str, Any], defaults: dict[str, Any]
) -> None:
    """Refuse a JSON ``true``/``false`` for a hyper-parameter that takes no boolean.

    Python's ``bool`` is an ``int``, so scikit-learn takes ``alpha=True`` as 1; the
    API is strict (a boolean is not a number) everywhere.

    Raises
    ------
    ValidationFailed
        Naming ``params.<name>``.
    """
    constraints = getattr(algorithm.estimator, "_parameter_constraints", {})
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        if not any(type(v) is bool for v in values):
            continue
        accepted = constraints.get(key, [])
        if isinstance(defaults.get(key), bool) or any(
            c in ("boolean", "verbose") or c is bool for c in accepted
        ):
            continue
        raise ValidationFailed(
            f"hyper-parameter {key!r} of {algorithm.name} takes no boolean (got {value!r})",
            {"field": f"params.{key}"},
        )


def _param_named_in(message: str, params: dict[str, Any]) -> str | None:
    for key in params:
        if f"'{key}'" in message:
            return key
    return None


def inner_estimator(estimator: BaseEstimator) -> BaseEstimator:
    """The catalogue estimator inside a wrapper (or ``estimator`` itself)."""
    if isinstance(estimator, TransformedTargetRegressor):
        return estimator.regressor
    if isinstance(estimator, CalibratedClassifierCV):
        return estimator.estimator
    return estimator
