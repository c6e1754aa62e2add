"""Unit tests for mlserve.training.fit: TrainSpec, infer_task, check_spec and train().

train() is exercised on scikit-learn's bundled datasets (no download) and, in the
slow-marked tests, on the full california_housing data from the shared folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score, root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlserve.datasets.stats import column_summaries
from mlserve.errors import ValidationFailed
from mlserve.training.catalogue import CATALOGUE, inner_estimator
from mlserve.training.fit import TrainResult, clean, train
from mlserve.training.spec import MAX_CLASSES_INFERRED, TrainSpec, check_spec, infer_task

REGRESSION_METRIC_KEYS = {"rmse", "mae", "r2", "n_samples"}
CLASSIFICATION_METRIC_KEYS = {
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "n_samples",
    "confusion_matrix",
}


def make_spec(**overrides: Any) -> TrainSpec:
    values: dict[str, Any] = {
        "dataset_id": "ds1",
        "target": "target",
        "algorithm": "ridge",
        "model_name": "model",
    }
    values.update(overrides)
    return TrainSpec(**values)


def summaries(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in column_summaries(frame)}


class ProgressRecorder:
    """Progress callback that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, stage: str) -> None:
        self.calls.append((fraction, stage))


@pytest.fixture(autouse=True, scope="module")
def _single_threaded() -> Iterator[None]:
    # The datasets here are tiny: OpenMP/BLAS threads only add contention (gradient
    # boosting on iris can take 20 s instead of 0.3 s on a busy 2-core machine).
    with threadpool_limits(limits=1):
        yield


# --------------------------------------------------------------------------- datasets


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


@pytest.fixture(scope="module")
def breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """200 rows: numeric with gaps, categorical with a gap, boolean, string target."""
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    flag = rng.random(n) > 0.5
    label = np.where(x + 1.5 * (color == "red") > 0.5, "yes", "no").astype(object)
    frame = pd.DataFrame({"x": x, "color": color, "flag": flag, "label": label})
    frame.loc[[3, 7], "x"] = np.nan
    frame.loc[5, "color"] = None
    return frame


@pytest.fixture(scope="module")
def diabetes_ridge(diabetes: pd.DataFrame) -> tuple[TrainResult, ProgressRecorder]:
    recorder = ProgressRecorder()
    spec = make_spec(algorithm="ridge", cv_folds=5, random_state=0)
    task = check_spec(spec, len(diabetes), summaries(diabetes))
    return train(diabetes, spec, task, recorder), recorder


@pytest.fixture(scope="module")
def cancer_logistic(breast_cancer: pd.DataFrame) -> tuple[TrainResult, ProgressRecorder]:
    recorder = ProgressRecorder()
    spec = make_spec(algorithm="logistic_regression", cv_folds=5, random_state=0)
    task = check_spec(spec, len(breast_cancer), summaries(breast_cancer))
    return train(breast_cancer, spec, task, recorder), recorder


# --------------------------------------------------------------------------- TrainSpec


def test_train_spec_defaults() -> None:
    spec = make_spec()
    assert spec.task is None
    assert spec.params == {}
    assert spec.features is None
    assert spec.test_size == 0.2
    assert spec.cv_folds == 5
    assert spec.random_state == 0
    assert spec.drop_duplicates is False
    assert spec.drop_missing_target is True


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unexpected": 1}, "unexpected"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"cv_folds": -1}, "cv_folds"),
        ({"cv_folds": 21}, "cv_folds"),
        ({"test_size": 0.0}, "test_size"),
        ({"test_size": 1.0}, "test_size"),
        ({"test_size": 1.5}, "test_size"),
        ({"model_name": ""}, "model_name"),
        ({"model_name": "-leading-dash"}, "model_name"),
        ({"model_name": ".hidden"}, "model_name"),
        ({"model_name": "has space"}, "model_name"),
        ({"model_name": "slash/name"}, "model_name"),
        ({"model_name": "mödel"}, "model_name"),
        ({"model_name": "m" * 101}, "model_name"),
        ({"task": "clustering"}, "task"),
        ({"features": []}, "features"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": 2**32}, "random_state"),
        ({"dataset_id": ""}, "dataset_id"),
        ({"dataset_id": "d" * 65}, "dataset_id"),
        ({"target": ""}, "target"),
        ({"algorithm": ""}, "algorithm"),
        ({"params": ["alpha", 1]}, "params"),
    ],
)
def test_train_spec_invalid_is_rejected(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field) as info:
        make_spec(**overrides)
    assert [error["loc"][0] for error in info.value.errors()] == [field]


def test_train_spec_cv_folds_one_message() -> None:
    with pytest.raises(ValidationError, match=r"cv_folds must be 0 .* or at least 2"):
        make_spec(cv_folds=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"cv_folds": 0},
        {"cv_folds": 2},
        {"cv_folds": 20},
        {"model_name": "a"},
        {"model_name": "Model_1.v2-final"},
        {"model_name": "9" * 100},
        {"task": "classification"},
        {"task": "regression"},
        {"random_state": 2**32 - 1},
        {"test_size": 0.999},
        {"features": ["a", "b"]},
    ],
)
def test_train_spec_valid_is_accepted(overrides: dict[str, Any]) -> None:
    spec = make_spec(**overrides)
    for key, value in overrides.items():
        assert getattr(spec, key) == value


# --------------------------------------------------------------------------- infer_task


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"type": "string", "unique": 500}, "classification"),
        ({"type": "boolean", "unique": 2}, "classification"),
        ({"type": "integer", "unique": 2}, "classification"),
        ({"type": "integer", "unique": MAX_CLASSES_INFERRED}, "classification"),
        ({"type": "integer", "unique": MAX_CLASSES_INFERRED + 1}, "regression"),
        ({"type": "number", "unique": 2}, "regression"),
        ({"type": "number", "unique": 1000}, "regression"),
    ],
)
def test_infer_task_from_column_summary(column: dict[str, Any], expected: str) -> None:
    assert MAX_CLASSES_INFERRED == 20
    assert infer_task(column) == expected


def test_infer_task_from_real_summaries(diabetes: pd.DataFrame, iris: pd.DataFrame) -> None:
    assert infer_task(summaries(diabetes)["target"]) == "regression"
    assert infer_task(summaries(iris)["target"]) == "classification"


# --------------------------------------------------------------------------- check_spec


@pytest.fixture(scope="module")
def schema_frame() -> pd.DataFrame:
    """12 rows covering every column kind check_spec distinguishes."""
    rng = np.random.default_rng(1)
    n = 12
    y_sparse = rng.normal(size=n)
    y_sparse[:8] = np.nan  # only 4 rows keep a target
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 3, size=n),
            "color": pd.Series(rng.choice(["a", "b"], size=n), dtype=object),
            "flag": rng.random(n) > 0.5,
            "y": rng.normal(size=n),
            "label": pd.Series(["yes", "no"] * 6, dtype=object),
            "const": np.ones(n),
            "y_sparse": y_sparse,
        }
    )


@pytest.mark.parametrize(
    ("overrides", "n_rows", "field", "message"),
    [
        ({"target": "missing_col"}, None, "target", "target column 'missing_col' is not in"),
        ({"target": "y", "features": ["x1", "nope"]}, None, "features", "feature 'nope' is not"),
        ({"target": "y", "features": ["x1", "y"]}, None, "features", "cannot also be a feature"),
        ({"target": "y", "features": ["x1", "x1"]}, None, "features", "listed twice"),
        ({"target": "const"}, None, "target", "target column 'const' is constant"),
        (
            {"target": "y_sparse", "drop_missing_target": False, "cv_folds": 0},
            None,
            "drop_missing_target",
            "8 missing values",
        ),
        ({"target": "label", "task": "regression"}, None, "task", "needs a numeric target"),
        ({"target": "flag", "task": "regression"}, None, "task", "needs a numeric target"),
        ({"target": "color"}, None, "algorithm", "unknown algorithm 'ridge' for classification"),
        ({"target": "y", "cv_folds": 5}, 4, "test_size", "4 rows are too few"),
        ({"target": "y", "cv_folds": 0, "test_size": 0.5}, 1, "test_size", "1 rows are too few"),
        # 12 rows minus 8 missing targets leaves 4: too few for 5 folds.
        ({"target": "y_sparse", "cv_folds": 5}, None, "test_size", "4 rows are too few"),
        ({"target": "y", "algorithm": "xgboost"}, None, "algorithm", "unknown algorithm"),
        ({"target": "y", "algorithm": "svc"}, None, "algorithm", "unknown algorithm 'svc'"),
        (
            {"target": "label", "algorithm": "svr"},
            None,
            "algorithm",
            "unknown algorithm 'svr' for classification",
        ),
        ({"target": "y", "params": {"bogus": 1}}, None, "params.bogus", "unknown hyper"),
        ({"target": "y", "params": {"n_jobs": 4}}, None, "params.n_jobs", "unknown hyper"),
        ({"target": "y", "params": {"alpha": -1}}, None, "params.alpha", "invalid hyper"),
    ],
    ids=[
        "unknown-target",
        "unknown-feature",
        "target-in-features",
        "duplicate-features",
        "constant-target",
        "missing-target-not-dropped",
        "regression-on-string",
        "regression-on-boolean",
        "ridge-on-inferred-classification",
        "too-few-rows-for-folds",
        "too-few-rows-for-split",
        "too-few-rows-after-dropping-missing",
        "unknown-algorithm",
        "classification-algorithm-for-regression",
        "regression-algorithm-for-classification",
        "unknown-param",
        "forbidden-param",
        "bad-param-value",
    ],
)
def test_check_spec_invalid_is_rejected(
    schema_frame: pd.DataFrame,
    overrides: dict[str, Any],
    n_rows: int | None,
    field: str,
    message: str,
) -> None:
    spec = make_spec(**overrides)
    rows = len(schema_frame) if n_rows is None else n_rows
    with pytest.raises(ValidationFailed, match=message) as info:
        check_spec(spec, rows, summaries(schema_frame))
    assert info.value.details["field"] == field


def test_check_spec_dataset_with_only_target_has_no_features(schema_frame: pd.DataFrame) -> None:
    columns = {"y": summaries(schema_frame)["y"]}
    with pytest.raises(ValidationFailed, match="no feature column") as info:
        check_spec(make_spec(target="y"), len(schema_frame), columns)
    assert info.value.details == {"field": "features"}


def test_check_spec_unknown_target_lists_columns(schema_frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_spec(make_spec(target="nope"), 12, summaries(schema_frame))
    assert info.value.details["columns"] == sorted(schema_frame.columns)


def test_check_spec_target_error_reported_before_algorithm_error(
    schema_frame: pd.DataFrame,
) -> None:
    spec = make_spec(target="nope", algorithm="xgboost", params={"bogus": 1})
    with pytest.raises(ValidationFailed) as info:
        check_spec(spec, 12, summaries(schema_frame))
    assert info.value.details["field"] == "target"


@pytest.mark.parametrize(
    ("overrides", "expected_task"),
    [
        ({"target": "y"}, "regression"),
        ({"target": "label", "algorithm": "logistic_regression"}, "classification"),
        ({"target": "flag", "algorithm": "knn"}, "classification"),
        # A small-cardinality integer target is inferred as classification...
        ({"target": "x2", "algorithm": "decision_tree"}, "classification"),
        # ...unless the client asks for regression.
        ({"target": "x2", "algorithm": "decision_tree", "task": "regression"}, "regression"),
        ({"target": "y", "algorithm": "knn", "task": "classification"}, "classification"),
        ({"target": "y_sparse", "cv_folds": 2, "test_size": 0.25}, "regression"),
        ({"target": "y", "features": ["x1", "color"], "params": {"alpha": 0.5}}, "regression"),
    ],
)
def test_check_spec_valid_returns_task(
    schema_frame: pd.DataFrame, overrides: dict[str, Any], expected_task: str
) -> None:
    spec = make_spec(**overrides)
    assert check_spec(spec, len(schema_frame), summaries(schema_frame)) == expected_task


# --------------------------------------------------------------------------- clean


def test_clean_drops_duplicates_and_missing_targets() -> None:
    frame = pd.DataFrame(
        {"x": [1, 1, 2, 3, 4], "target": [1.0, 1.0, np.nan, 3.0, 4.0]}, index=[9, 8, 7, 6, 5]
    )
    both = clean(frame, make_spec(drop_duplicates=True, drop_missing_target=True))
    assert both.to_dict("list") == {"x": [1, 3, 4], "target": [1.0, 3.0, 4.0]}
    assert list(both.index) == [0, 1, 2]
    neither = clean(frame, make_spec(drop_duplicates=False, drop_missing_target=False))
    assert len(neither) == 5


# --------------------------------------------------------------------------- train: regression


def test_train_diabetes_ridge_metrics(diabetes_ridge: tuple[TrainResult, ProgressRecorder]) -> None:
    result, _ = diabetes_ridge
    assert result.task == "regression"
    assert set(result.metrics) == REGRESSION_METRIC_KEYS
    # Seed 0's test split is a hard one (test R² 0.33); the 5-fold CV mean is about 0.51.
    assert result.metrics["r2"] > 0.3
    assert result.cv_metrics["r2"]["mean"] > 0.45
    assert 40 < result.metrics["rmse"] < 65
    assert 30 < result.metrics["mae"] < result.metrics["rmse"]
    assert (result.n_train, result.n_test) == (353, 89)
    assert result.metrics["n_samples"] == 89
    assert result.training_seconds >= 0


def test_train_diabetes_ridge_matches_plain_sklearn(
    diabetes: pd.DataFrame, diabetes_ridge: tuple[TrainResult, ProgressRecorder]
) -> None:
    result, _ = diabetes_ridge
    X = diabetes.drop(columns="target")
    y = diabetes["target"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    reference = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X_train, y_train)
    predicted = reference.predict(X_test)
    assert result.metrics["r2"] == pytest.approx(r2_score(y_test, predicted), rel=1e-9)
    assert result.metrics["rmse"] == pytest.approx(
        root_mean_squared_error(y_test, predicted), rel=1e-9
    )
    np.testing.assert_allclose(result.pipeline.predict(X_test), predicted, rtol=1e-9)


def test_train_diabetes_ridge_cv_metrics(
    diabetes_ridge: tuple[TrainResult, ProgressRecorder],
) -> None:
    cv = diabetes_ridge[0].cv_metrics
    assert cv["folds"] == 5
    assert set(cv) == {"folds", "rmse", "mae", "r2"}
    for key in ("rmse", "mae", "r2"):
        values = cv[key]["values"]
        assert len(values) == 5
        assert all(isinstance(v, float) for v in values)
        assert cv[key]["mean"] == pytest.approx(np.mean(values))
        assert cv[key]["std"] == pytest.approx(np.std(values))  # population std
    assert 45 < cv["rmse"]["mean"] < 65


def test_train_diabetes_ridge_signature_and_params(
    diabetes: pd.DataFrame, diabetes_ridge: tuple[TrainResult, ProgressRecorder]
) -> None:
    result, _ = diabetes_ridge
    features = [c for c in diabetes.columns if c != "target"]
    assert result.signature["inputs"] == [
        {"name": name, "type": "number", "nullable": False, "imputed": True} for name in features
    ]
    assert result.signature["output"] == {"name": "target", "type": "number"}
    assert result.params["alpha"] == 1.0
    assert result.params["random_state"] == 0
    assert json.loads(json.dumps(result.params)) == result.params


def test_train_progress_is_monotonic_and_ends_explaining(
    diabetes_ridge: tuple[TrainResult, ProgressRecorder],
) -> None:
    calls = diabetes_ridge[1].calls
    fractions = [fraction for fraction, _ in calls]
    stages = _stages(calls)
    assert fractions == sorted(fractions)
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert stages[0] == "cleaning"
    assert stages[1:6] == [f"cross-validation {k}/5" for k in range(1, 6)]
    assert stages[-3:] == ["fitting", "evaluating", "explaining"]
    assert fractions[-1] >= 0.85


def _stages(calls: list[tuple[float, str]]) -> list[str]:
    """The stages in order, a stage reported twice in a row (permutation importance,
    then the SHAP summary: both ``explaining``) counted once."""
    return [stage for i, (_, stage) in enumerate(calls) if i == 0 or calls[i - 1][1] != stage]


def test_train_progress_without_cv_skips_cv_stages(iris: pd.DataFrame) -> None:
    recorder = ProgressRecorder()
    spec = make_spec(algorithm="logistic_regression", cv_folds=0)
    result = train(iris, spec, "classification", recorder)
    stages = _stages(recorder.calls)
    assert stages == ["cleaning", "fitting", "evaluating", "explaining"]
    assert [f for f, _ in recorder.calls] == [0.05, 0.7, 0.85, 0.9]
    assert result.cv_metrics == {"folds": 0}
    assert result.evaluation is not None and result.evaluation["cv"] == {"folds": 0}


def test_train_feature_subset_in_given_order(diabetes: pd.DataFrame) -> None:
    spec = make_spec(features=["bp", "bmi"], cv_folds=0)
    result = train(diabetes, spec, "regression")
    assert [spec_["name"] for spec_ in result.signature["inputs"]] == ["bp", "bmi"]
    prediction = result.pipeline.predict(pd.DataFrame({"bp": [0.0], "bmi": [0.05]}))
    assert prediction.shape == (1,)
    assert 0.1 < result.metrics["r2"] < 0.5


def test_train_is_deterministic_for_a_seed(diabetes: pd.DataFrame) -> None:
    spec = make_spec(algorithm="random_forest", params={"n_estimators": 20}, cv_folds=2)
    first = train(diabetes, spec, "regression")
    second = train(diabetes, spec, "regression")
    assert first.metrics == second.metrics
    assert first.cv_metrics == second.cv_metrics


def test_train_drop_missing_target_reduces_rows(diabetes: pd.DataFrame) -> None:
    frame = diabetes.copy()
    rng = np.random.default_rng(3)
    frame.loc[rng.choice(len(frame), size=20, replace=False), "target"] = np.nan
    result = train(frame, make_spec(cv_folds=0, drop_missing_target=True), "regression")
    assert result.n_train + result.n_test == len(diabetes) - 20
    assert (result.n_train, result.n_test) == (337, 85)  # ceil(0.2 * 422) = 85
    assert result.metrics["rmse"] is not None


def test_train_drop_duplicates_on_iris(iris: pd.DataFrame) -> None:
    # Iris has exactly one duplicated row (rows 101 and 142).
    doubled = pd.concat([iris, iris.head(20)], ignore_index=True)
    base = make_spec(algorithm="logistic_regression", cv_folds=0)
    kept = train(doubled, base, "classification")
    dropped = train(doubled, base.model_copy(update={"drop_duplicates": True}), "classification")
    assert kept.n_train + kept.n_test == 170
    assert dropped.n_train + dropped.n_test == 149


def test_train_constant_target_after_cleaning_is_rejected() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "target": [1.0] * 9 + [np.nan]})
    with pytest.raises(ValidationFailed, match="constant after cleaning") as info:
        train(frame, make_spec(cv_folds=0), "regression")
    assert info.value.details == {"field": "target"}


def test_train_too_few_rows_after_cleaning_is_rejected() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "target": [1.0, 2.0, 3.0] + [np.nan] * 7})
    with pytest.raises(ValidationFailed, match="3 rows are too few") as info:
        train(frame, make_spec(cv_folds=2, test_size=0.5), "regression")
    assert info.value.details["field"] == "test_size"


# --------------------------------------------------------------------------- train: classification


def test_train_breast_cancer_logistic_metrics(
    cancer_logistic: tuple[TrainResult, ProgressRecorder],
) -> None:
    result, recorder = cancer_logistic
    assert result.task == "classification"
    assert set(result.metrics) == CLASSIFICATION_METRIC_KEYS
    assert result.metrics["accuracy"] > 0.93
    assert result.metrics["roc_auc"] > 0.97
    assert result.metrics["f1_macro"] > 0.93
    assert result.metrics["log_loss"] < 0.2
    assert (result.n_train, result.n_test) == (455, 114)
    cv = result.cv_metrics
    assert cv["folds"] == 5
    assert set(cv) == {"folds", "accuracy", "f1_macro"}
    assert len(cv["accuracy"]["values"]) == len(cv["f1_macro"]["values"]) == 5
    assert cv["accuracy"]["mean"] > 0.95
    assert [f for f, _ in recorder.calls] == sorted(f for f, _ in recorder.calls)


def test_train_breast_cancer_split_is_stratified(
    breast_cancer: pd.DataFrame, cancer_logistic: tuple[TrainResult, ProgressRecorder]
) -> None:
    result, _ = cancer_logistic
    matrix = result.metrics["confusion_matrix"]
    assert matrix["labels"] == [0, 1]
    row_sums = [sum(row) for row in matrix["matrix"]]
    assert sum(row_sums) == 114
    share = breast_cancer["target"].value_counts(normalize=True)
    for label, count in zip(matrix["labels"], row_sums, strict=True):
        assert abs(count - 114 * share[label]) <= 1


def test_train_breast_cancer_signature(
    cancer_logistic: tuple[TrainResult, ProgressRecorder],
) -> None:
    signature = cancer_logistic[0].signature
    assert len(signature["inputs"]) == 30
    assert all(s["type"] == "number" and s["nullable"] is False for s in signature["inputs"])
    assert signature["output"] == {"name": "target", "type": "integer", "classes": [0, 1]}
    assert all(type(c) is int for c in signature["output"]["classes"])


def test_train_iris_stratified_three_classes(iris: pd.DataFrame) -> None:
    spec = make_spec(algorithm="logistic_regression", cv_folds=3)
    task = check_spec(spec, len(iris), summaries(iris))
    result = train(iris, spec, task)
    assert task == "classification"
    assert result.metrics["accuracy"] > 0.9
    assert result.metrics["roc_auc"] > 0.97
    matrix = result.metrics["confusion_matrix"]
    assert matrix["labels"] == [0, 1, 2]
    # 30 test rows, stratified: exactly 10 of each class.
    assert [sum(row) for row in matrix["matrix"]] == [10, 10, 10]
    assert result.signature["output"]["classes"] == [0, 1, 2]
    assert len(result.cv_metrics["accuracy"]["values"]) == 3


def test_train_wine_random_forest(wine: pd.DataFrame) -> None:
    spec = make_spec(algorithm="random_forest", params={"n_estimators": 50}, cv_folds=3)
    result = train(wine, spec, "classification")
    assert result.metrics["accuracy"] > 0.9
    assert result.metrics["roc_auc"] > 0.97
    assert result.cv_metrics["accuracy"]["mean"] > 0.9
    assert len(result.cv_metrics["f1_macro"]["values"]) == 3
    assert result.params["n_estimators"] == 50
    assert result.params["random_state"] == 0
    assert (result.n_train, result.n_test) == (142, 36)


def test_train_imbalanced_split_is_stratified() -> None:
    rng = np.random.default_rng(5)
    label = np.array(["common"] * 90 + ["rare"] * 10, dtype=object)
    frame = pd.DataFrame({"x": rng.normal(size=100) + (label == "rare") * 3.0, "label": label})
    result = train(
        frame,
        make_spec(target="label", algorithm="logistic_regression", cv_folds=0),
        "classification",
    )
    matrix = result.metrics["confusion_matrix"]
    assert matrix["labels"] == ["common", "rare"]
    assert [sum(row) for row in matrix["matrix"]] == [18, 2]


def test_train_singleton_class_falls_back_to_unstratified() -> None:
    # "c" has one row: no stratified split, plain KFold, and the fold that validates
    # on "c" was fitted without it (its metrics must not crash on the unseen class).
    rng = np.random.default_rng(6)
    label = np.array(["a"] * 30 + ["b"] * 29 + ["c"], dtype=object)
    frame = pd.DataFrame({"x": rng.normal(size=60), "label": label})
    spec = make_spec(target="label", algorithm="decision_tree", cv_folds=3)
    result = train(frame, spec, "classification")
    assert result.n_train + result.n_test == 60
    assert result.cv_metrics["folds"] == 3
    assert len(result.cv_metrics["accuracy"]["values"]) == 3


def test_train_mixed_types_signature_and_prediction(mixed: pd.DataFrame) -> None:
    spec = make_spec(target="label", algorithm="logistic_regression", cv_folds=3)
    task = check_spec(spec, len(mixed), summaries(mixed))
    assert task == "classification"
    result = train(mixed, spec, task)
    assert result.signature == {
        "inputs": [
            {"name": "x", "type": "number", "nullable": True, "imputed": True},
            {
                "name": "color",
                "type": "string",
                "nullable": True,
                "imputed": True,
                "categories": ["blue", "green", "red"],
            },
            {"name": "flag", "type": "boolean", "nullable": False, "imputed": True},
        ],
        "output": {"name": "label", "type": "string", "classes": ["no", "yes"]},
    }
    assert result.metrics["accuracy"] > 0.9
    assert result.metrics["confusion_matrix"]["labels"] == ["no", "yes"]
    # Unseen category and missing values are handled by the preprocessing.
    request = pd.DataFrame(
        {"x": [2.0, -2.0, np.nan], "color": ["red", "purple", None], "flag": [1.0, 0.0, 1.0]}
    )
    predicted = result.pipeline.predict(request)
    assert list(predicted[:2]) == ["yes", "no"]
    assert set(predicted) <= {"yes", "no"}
    np.testing.assert_allclose(result.pipeline.predict_proba(request).sum(axis=1), 1.0)


def test_train_boolean_target_classes(mixed: pd.DataFrame) -> None:
    frame = mixed.assign(flag=mixed["x"].fillna(0) > 0)
    spec = make_spec(target="flag", algorithm="decision_tree", features=["x"], cv_folds=0)
    result = train(frame, spec, "classification")
    assert result.signature["output"] == {
        "name": "flag",
        "type": "boolean",
        "classes": [False, True],
    }
    assert result.metrics["confusion_matrix"]["labels"] == [False, True]


def test_train_classifier_without_proba_has_no_auc(iris: pd.DataFrame) -> None:
    spec = make_spec(algorithm="sgd_classifier", params={"loss": "hinge"}, cv_folds=0)
    result = train(iris, spec, "classification")
    assert result.metrics["roc_auc"] is None
    assert result.metrics["log_loss"] is None
    assert result.metrics["accuracy"] > 0.8


def test_train_mlp_params_are_json_lists(iris: pd.DataFrame) -> None:
    spec = make_spec(algorithm="mlp", params={"hidden_layer_sizes": [8, 4]}, cv_folds=0)
    result = train(iris, spec, "classification")
    assert result.params["hidden_layer_sizes"] == [8, 4]
    assert inner_estimator(result.pipeline.named_steps["estimator"]).hidden_layer_sizes == (8, 4)
    assert json.loads(json.dumps(result.params)) == result.params


# --------------------------------------------------------------------------- every algorithm


@pytest.fixture(scope="module")
def small_regression(diabetes: pd.DataFrame) -> pd.DataFrame:
    return diabetes.sample(150, random_state=0).reset_index(drop=True)


LABELS_ONLY = {"passive_aggressive_classifier", "perceptron"}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("task", "algorithm"), sorted(CATALOGUE))
def test_train_every_catalogue_algorithm_predicts(
    task: str,
    algorithm: str,
    small_regression: pd.DataFrame,
    iris: pd.DataFrame,
) -> None:
    frame = small_regression if task == "regression" else iris
    spec = make_spec(algorithm=algorithm, task=task, cv_folds=0)
    assert check_spec(spec, len(frame), summaries(frame)) == task
    result = train(frame, spec, task)
    X = frame.drop(columns="target").head(25)
    predicted = result.pipeline.predict(X)
    assert predicted.shape == (25,)
    assert json.loads(json.dumps(result.params)) == result.params
    if task == "regression":
        assert set(result.metrics) == REGRESSION_METRIC_KEYS
        assert np.isfinite(predicted).all()
        assert math.isfinite(result.metrics["rmse"]) and result.metrics["rmse"] > 0
        assert result.metrics["n_samples"] == 30
    else:
        assert set(result.metrics) == CLASSIFICATION_METRIC_KEYS
        assert set(predicted) <= {0, 1, 2}
        assert result.signature["output"]["classes"] == [0, 1, 2]
        if algorithm in LABELS_ONLY:  # hinge loss and the perceptron give no probabilities
            # Unregularised single-pass-style linear learners: weaker on 30 test rows.
            assert result.metrics["accuracy"] >= 0.7
            assert not hasattr(result.pipeline, "predict_proba")
            assert result.metrics["roc_auc"] is None
            return
        assert result.metrics["accuracy"] >= 0.8
        proba = result.pipeline.predict_proba(X)
        assert proba.shape == (25, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert result.metrics["roc_auc"] is not None


# --------------------------------------------------------------------------- california (slow)


@pytest.fixture(scope="module")
def california(california_bytes: bytes) -> pd.DataFrame:
    from mlserve.datasets.upload import parse_upload

    frame, source_format = parse_upload("california_housing.csv", california_bytes, 100)
    assert source_format == "csv"
    return frame


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "max_rmse", "min_r2"),
    [("linear_regression", 70_000, 0.6), ("gradient_boosting", 50_000, 0.8)],
)
def test_train_california_housing_test_rmse(
    california: pd.DataFrame, algorithm: str, max_rmse: float, min_r2: float
) -> None:
    spec = make_spec(
        target="median_house_value",
        algorithm=algorithm,
        test_size=0.2,
        random_state=0,
        cv_folds=0,
    )
    task = check_spec(spec, len(california), summaries(california))
    assert task == "regression"
    result = train(california, spec, task)
    assert (result.n_train, result.n_test) == (16512, 4128)
    assert result.metrics["rmse"] < max_rmse
    assert result.metrics["r2"] > min_r2
    inputs = {s["name"]: s for s in result.signature["inputs"]}
    assert inputs["total_bedrooms"]["nullable"] is True
    assert inputs["ocean_proximity"] == {
        "name": "ocean_proximity",
        "type": "string",
        "nullable": False,
        "imputed": True,
        "categories": ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"],
    }
