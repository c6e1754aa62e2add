"""Unit tests for mlserve.training.catalogue: algorithm lookup and hyper-parameter validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import SGDRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVC, SVR

from mlserve.errors import ValidationFailed
from mlserve.training.catalogue import (
    CATALOGUE,
    FORBIDDEN_PARAMS,
    TASKS,
    Algorithm,
    algorithm_names,
    build_estimator,
    get_algorithm,
    inner_estimator,
)

REGRESSION_NAMES = [
    "decision_tree",
    "elastic_net",
    "extra_trees",
    "gradient_boosting",
    "knn",
    "lasso",
    "linear_regression",
    "mlp",
    "passive_aggressive_regressor",
    "random_forest",
    "ridge",
    "sgd_regressor",
    "svr",
    "torch_mlp",
]
CLASSIFICATION_NAMES = [
    "decision_tree",
    "extra_trees",
    "gradient_boosting",
    "knn",
    "logistic_regression",
    "mlp",
    "naive_bayes",
    "passive_aggressive_classifier",
    "perceptron",
    "random_forest",
    "sgd_classifier",
    "svc",
    "torch_mlp",
]


def test_algorithm_names_per_task_are_sorted_and_complete() -> None:
    assert algorithm_names("regression") == REGRESSION_NAMES
    assert algorithm_names("classification") == CLASSIFICATION_NAMES


def test_algorithm_names_without_task_is_sorted_union() -> None:
    assert algorithm_names() == sorted(set(REGRESSION_NAMES) | set(CLASSIFICATION_NAMES))


def test_algorithm_names_unknown_task_is_empty() -> None:
    assert algorithm_names("clustering") == []


def test_catalogue_keys_match_entries() -> None:
    assert set(TASKS) == {"regression", "classification"}
    for (task, name), algorithm in CATALOGUE.items():
        assert task in TASKS
        assert (algorithm.task, algorithm.name) == (task, name)


@pytest.mark.parametrize(("task", "name"), sorted(CATALOGUE))
def test_build_estimator_every_catalogue_entry_builds(task: str, name: str) -> None:
    algorithm = get_algorithm(name, task)
    estimator = inner_estimator(build_estimator(algorithm, {}, random_state=123))
    assert isinstance(estimator, algorithm.estimator)
    if task == "regression":
        assert is_regressor(estimator)
    else:
        assert is_classifier(estimator)
    params = estimator.get_params(deep=False)
    for key, value in algorithm.defaults.items():
        assert params[key] == value
    if "random_state" in params:
        assert params["random_state"] == 123


@pytest.mark.parametrize(("task", "name"), sorted(CATALOGUE))
def test_algorithm_parameters_apply_mlserve_defaults(task: str, name: str) -> None:
    algorithm = CATALOGUE[(task, name)]
    parameters = algorithm.parameters()
    assert set(parameters) == set(algorithm.estimator().get_params(deep=False))
    for key, value in algorithm.defaults.items():
        assert parameters[key] == value


@pytest.mark.parametrize(
    ("name", "task", "key", "value"),
    [
        ("logistic_regression", "classification", "max_iter", 1000),
        ("sgd_classifier", "classification", "loss", "log_loss"),
        ("random_forest", "regression", "n_estimators", 100),
        ("mlp", "regression", "early_stopping", True),
        ("mlp", "classification", "max_iter", 500),
    ],
)
def test_build_estimator_sets_mlserve_default(name: str, task: str, key: str, value: Any) -> None:
    estimator = inner_estimator(build_estimator(get_algorithm(name, task), {}, random_state=0))
    assert estimator.get_params()[key] == value


def test_build_estimator_client_params_override_defaults() -> None:
    estimator = build_estimator(get_algorithm("mlp", "classification"), {"max_iter": 50}, 0)
    assert estimator.max_iter == 50


@pytest.mark.parametrize(
    ("name", "task", "wrapper", "inner"),
    [
        ("svc", "classification", CalibratedClassifierCV, SVC),
        ("svr", "regression", TransformedTargetRegressor, SVR),
        ("mlp", "regression", TransformedTargetRegressor, MLPRegressor),
        ("sgd_regressor", "regression", TransformedTargetRegressor, SGDRegressor),
    ],
)
def test_build_estimator_wraps_scale_sensitive_estimators(
    name: str, task: str, wrapper: type, inner: type
) -> None:
    estimator = build_estimator(get_algorithm(name, task), {"tol": 0.01}, 0)
    assert isinstance(estimator, wrapper)
    assert isinstance(inner_estimator(estimator), inner)
    assert inner_estimator(estimator).tol == 0.01


def test_build_estimator_svc_probability_is_not_a_client_parameter() -> None:
    with pytest.raises(ValidationFailed, match="unknown hyper-parameter 'probability'"):
        build_estimator(get_algorithm("svc", "classification"), {"probability": True}, 0)


def test_build_estimator_client_random_state_is_kept() -> None:
    estimator = inner_estimator(
        build_estimator(get_algorithm("random_forest", "regression"), {"random_state": 9}, 1)
    )
    assert estimator.random_state == 9


def test_build_estimator_null_random_state_gets_seed() -> None:
    estimator = inner_estimator(
        build_estimator(get_algorithm("decision_tree", "classification"), {"random_state": None}, 5)
    )
    assert estimator.random_state == 5


def test_build_estimator_without_random_state_param_does_not_add_one() -> None:
    estimator = build_estimator(get_algorithm("linear_regression", "regression"), {}, 5)
    assert "random_state" not in estimator.get_params()


@pytest.mark.parametrize("task", TASKS)
def test_build_estimator_mlp_hidden_layer_sizes_list_becomes_tuple(task: str) -> None:
    estimator = inner_estimator(
        build_estimator(get_algorithm("mlp", task), {"hidden_layer_sizes": [8, 4]}, 0)
    )
    assert estimator.hidden_layer_sizes == (8, 4)
    assert isinstance(estimator.hidden_layer_sizes, tuple)


def test_build_estimator_does_not_mutate_client_params() -> None:
    params = {"hidden_layer_sizes": [8, 4]}
    build_estimator(get_algorithm("mlp", "regression"), params, 0)
    assert params == {"hidden_layer_sizes": [8, 4]}


def test_build_estimator_returns_fresh_estimator_each_call() -> None:
    algorithm = get_algorithm("ridge", "regression")
    first = build_estimator(algorithm, {"alpha": 3.0}, 0)
    second = build_estimator(algorithm, {}, 0)
    assert first is not second
    assert first.alpha == 3.0
    assert second.alpha == 1.0


def test_built_estimator_fits_with_given_params() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.01, size=60)
    estimator = build_estimator(get_algorithm("ridge", "regression"), {"alpha": 1e-6}, 0)
    estimator.fit(X, y)
    np.testing.assert_allclose(estimator.coef_, [1.0, -2.0, 0.5], atol=0.01)


@pytest.mark.parametrize(
    ("name", "task", "params", "field"),
    [
        ("ridge", "regression", {"bogus": 1}, "params.bogus"),
        ("ridge", "regression", {"alpha": 1.0, "Alpha": 2.0}, "params.Alpha"),
        ("random_forest", "classification", {"learning_rate": 0.1}, "params.learning_rate"),
        ("knn", "regression", {"random_state": 1}, "params.random_state"),
        ("naive_bayes", "classification", {"C": 1.0}, "params.C"),
    ],
)
def test_build_estimator_unknown_param_is_rejected(
    name: str, task: str, params: dict[str, Any], field: str
) -> None:
    algorithm = get_algorithm(name, task)
    key = field.removeprefix("params.")
    with pytest.raises(
        ValidationFailed, match=f"unknown hyper-parameter '{key}' for {name}"
    ) as info:
        build_estimator(algorithm, params, 0)
    assert info.value.details["field"] == field
    allowed = info.value.details["allowed"]
    assert allowed == sorted(allowed)
    assert key not in allowed
    assert not FORBIDDEN_PARAMS & set(allowed)


@pytest.mark.parametrize(
    ("name", "task", "param"),
    [
        ("ridge", "regression", "copy_X"),
        ("linear_regression", "regression", "n_jobs"),
        ("random_forest", "regression", "n_jobs"),
        ("random_forest", "classification", "verbose"),
        ("random_forest", "classification", "warm_start"),
        ("knn", "classification", "n_jobs"),
        ("mlp", "regression", "verbose"),
        ("gradient_boosting", "regression", "warm_start"),
    ],
)
def test_build_estimator_forbidden_param_is_rejected(name: str, task: str, param: str) -> None:
    algorithm = get_algorithm(name, task)
    assert param in algorithm.estimator().get_params()
    with pytest.raises(ValidationFailed, match=f"unknown hyper-parameter '{param}'") as info:
        build_estimator(algorithm, {param: 1}, 0)
    assert info.value.details["field"] == f"params.{param}"
    assert param not in info.value.details["allowed"]


@pytest.mark.parametrize(
    ("name", "task", "params", "field", "message"),
    [
        ("ridge", "regression", {"alpha": -1}, "params.alpha", "'alpha' parameter of Ridge"),
        (
            "random_forest",
            "regression",
            {"n_estimators": "many"},
            "params.n_estimators",
            "'n_estimators' parameter of RandomForestRegressor",
        ),
        (
            "random_forest",
            "classification",
            {"max_depth": 0},
            "params.max_depth",
            "'max_depth' parameter",
        ),
        ("decision_tree", "regression", {"max_depth": 0}, "params.max_depth", "'max_depth'"),
        ("svc", "classification", {"C": 0}, "params.C", "'C' parameter of SVC"),
        ("svc", "classification", {"kernel": "nope"}, "params.kernel", "'kernel'"),
        ("knn", "classification", {"n_neighbors": 0}, "params.n_neighbors", "'n_neighbors'"),
        (
            "logistic_regression",
            "classification",
            {"solver": "magic"},
            "params.solver",
            "'solver'",
        ),
        (
            "gradient_boosting",
            "regression",
            {"learning_rate": -0.1},
            "params.learning_rate",
            "'learning_rate'",
        ),
        (
            "mlp",
            "classification",
            {"hidden_layer_sizes": "big"},
            "params.hidden_layer_sizes",
            "'hidden_layer_sizes'",
        ),
        # Only the bad one of several parameters is named.
        (
            "ridge",
            "regression",
            {"alpha": 2.0, "solver": "nope"},
            "params.solver",
            "'solver' parameter of Ridge",
        ),
    ],
)
def test_build_estimator_bad_value_is_rejected(
    name: str, task: str, params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=f"invalid hyper-parameter: .*{message}") as info:
        build_estimator(get_algorithm(name, task), params, 0)
    assert info.value.details == {"field": field}
    assert info.value.status_code == 422


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("svc", "regression"),
        ("svr", "classification"),
        ("linear_regression", "classification"),
        ("logistic_regression", "regression"),
        ("xgboost", "regression"),
        ("", "classification"),
        ("Ridge", "regression"),
        ("ridge", "clustering"),
    ],
)
def test_get_algorithm_unknown_is_rejected(name: str, task: str) -> None:
    with pytest.raises(ValidationFailed, match=f"unknown algorithm '{name}' for {task}") as info:
        get_algorithm(name, task)
    assert info.value.details == {"field": "algorithm", "value": name, "task": task}


def test_get_algorithm_unknown_lists_choices_for_task() -> None:
    with pytest.raises(ValidationFailed, match=r"choose one of \[.*'svr'.*\]") as info:
        get_algorithm("svc", "regression")
    assert "'svc'" not in info.value.message.split("choose one of")[1]


def test_get_algorithm_same_name_differs_by_task() -> None:
    regression = get_algorithm("random_forest", "regression")
    classification = get_algorithm("random_forest", "classification")
    assert isinstance(regression, Algorithm)
    assert regression.estimator.__name__ == "RandomForestRegressor"
    assert classification.estimator.__name__ == "RandomForestClassifier"
