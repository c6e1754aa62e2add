"""The estimator catalogue: algorithm name -> scikit-learn estimator per task.

Hyper-parameters sent by a client are checked at submit time with the
estimator's own constraints (``sklearn.utils._param_validation``, the machinery
behind every estimator's ``fit``), so a bad value is a 422 before any job runs.
"""

from __future__ import annotations

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

TASKS = ("regression", "classification")


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
        updates, see :mod:`mlserve.online`).
    """

    name: str
    task: str
    estimator: type[BaseEstimator]
    defaults: dict[str, Any] = field(default_factory=dict)
    wrapper: str | None = None
    incremental: bool = False

    def wrap(self, estimator: BaseEstimator) -> BaseEstimator:
        """Return ``estimator`` inside this entry's wrapper, if it has one."""
        if self.wrapper == "scale_target":
            return TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
        if self.wrapper == "calibrate":
            return CalibratedClassifierCV(estimator, ensemble=False)
        return estimator

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
]
CATALOGUE: dict[tuple[str, str], Algorithm] = {
    (a.task, a.name): a for a in [*_REGRESSION, *_CLASSIFICATION]
}
# Parameters a client may not set: they touch the process, not the model.
# ``probability`` (SVC) is replaced by calibration, see ``Algorithm.wrapper``.
FORBIDDEN_PARAMS = frozenset({"n_jobs", "verbose", "warm_start", "copy_X", "probability"})


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
    algorithm: Algorithm, params: dict[str, Any], random_state: int | None
) -> BaseEstimator:
    """Instantiate and validate the estimator with ``params``.

    Parameters
    ----------
    algorithm : Algorithm
    params : dict
        Client hyper-parameters (JSON values).
    random_state : int or None
        Applied when the estimator has a ``random_state`` the client left unset.

    Returns
    -------
    estimator
        Unfitted, inside the entry's wrapper if it has one (see
        :meth:`Algorithm.wrap`; :func:`inner_estimator` unwraps it).

    Raises
    ------
    ValidationFailed
        Unknown parameter name, forbidden parameter, or a value the estimator's
        constraints reject; ``details`` names the parameter.
    """
    known = algorithm.estimator().get_params(deep=False)
    for key in params:
        if key not in known or key in FORBIDDEN_PARAMS:
            raise ValidationFailed(
                f"unknown hyper-parameter {key!r} for {algorithm.name}",
                {"field": f"params.{key}", "allowed": sorted(set(known) - FORBIDDEN_PARAMS)},
            )
    merged = {**algorithm.defaults, **_jsonable(params)}
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
