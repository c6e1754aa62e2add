"""Unit tests for mlserve.training.evaluation: plot data recomputed with scikit-learn, number
by number.

Each test fits a pipeline on a seeded split of a bundled dataset, calls
:func:`mlserve.training.evaluation.plot_data` on the held-out rows, and checks the result against
scikit-learn's own functions called directly on the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_regression
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlserve.training.budget import IMPORTANCE_REPEATS, extras_budget_s
from mlserve.training.evaluation import (
    MAX_CURVE_POINTS,
    MAX_POINTS,
    budgeted_importances,
    clean,
    downsample,
    plot_data,
    sample_rows,
)
from mlserve.training.fit import train
from mlserve.training.spec import TrainSpec
from tests.conftest import CALIFORNIA_TARGET

SEED = 7
CV = {"folds": 3, "r2": {"mean": 0.5, "std": 0.1, "values": [0.4, 0.5, 0.6]}}
Split = tuple[Pipeline, pd.DataFrame, pd.Series]


@pytest.fixture(autouse=True, scope="module")
def _single_threaded() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def fitted(frame: pd.DataFrame, target: str, estimator: Any, stratify: bool = False) -> Split:
    X, y = frame.drop(columns=target), frame[target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=SEED, stratify=y if stratify else None
    )
    return make_pipeline(StandardScaler(), estimator).fit(X_train, y_train), X_test, y_test


@pytest.fixture(scope="module")
def diabetes() -> Split:
    return fitted(load_diabetes(as_frame=True).frame, "target", LinearRegression())


@pytest.fixture(scope="module")
def cancer() -> Split:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]  # "malignant" / "benign"
    return fitted(frame, "target", LogisticRegression(max_iter=1000), stratify=True)


@pytest.fixture(scope="module")
def iris() -> Split:
    bunch = load_iris(as_frame=True)
    frame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]
    return fitted(frame, "target", LogisticRegression(max_iter=1000), stratify=True)


# --------------------------------------------------------------------------- regression


def test_regression_points_are_the_pipelines_predictions(diabetes: Split) -> None:
    pipeline, X_test, y_test = diabetes
    result = plot_data(
        pipeline, X_test, y_test, task="regression", cv_metrics=CV, random_state=SEED
    )
    assert set(result) == {
        "task",
        "rows",
        "n_test",
        "predicted_vs_actual",
        "residuals",
        "permutation_importance",
        "permutation_importance_sample",
        "cv",
    }
    assert (result["task"], result["n_test"], result["cv"]) == ("regression", len(X_test), CV)
    points = result["predicted_vs_actual"]
    assert points["n_total"] == len(X_test) == len(points["actual"])  # 133 rows: all kept
    assert points["actual"] == y_test.tolist()
    assert points["predicted"] == pipeline.predict(X_test).tolist()


@pytest.mark.parametrize(
    ("rows", "recorded"),
    [(None, "test split"), ("test split", "test split"), ("guard window", "guard window")],
)
def test_rows_say_what_was_evaluated(diabetes: Split, rows: str | None, recorded: str) -> None:
    """A training job's test split by default; an online update passes its guard window."""
    pipeline, X_test, y_test = diabetes
    extra = {} if rows is None else {"rows": rows}
    result = plot_data(
        pipeline,
        X_test.iloc[:40],
        y_test.iloc[:40],
        task="regression",
        cv_metrics=CV,
        random_state=SEED,
        **extra,
    )
    assert (result["rows"], result["n_test"]) == (recorded, 40)


def test_residuals_histogram_covers_every_test_row(diabetes: Split) -> None:
    pipeline, X_test, y_test = diabetes
    residuals = y_test.to_numpy() - pipeline.predict(X_test)
    histogram = plot_data(
        pipeline, X_test, y_test, task="regression", cv_metrics=CV, random_state=SEED
    )["residuals"]
    assert sum(histogram["counts"]) == len(X_test)
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1 <= 21
    assert histogram["edges"][0] == pytest.approx(residuals.min(), abs=1e-9)
    assert histogram["edges"][-1] == pytest.approx(residuals.max(), abs=1e-9)
    counts, _ = np.histogram(residuals, bins=histogram["edges"])
    assert histogram["counts"] == counts.tolist()


def test_regression_importance_is_sklearns_permutation_importance(diabetes: Split) -> None:
    pipeline, X_test, y_test = diabetes
    result = plot_data(
        pipeline, X_test, y_test, task="regression", cv_metrics=CV, random_state=SEED
    )
    expected = permutation_importance(
        pipeline, X_test, y_test, scoring="r2", n_repeats=5, random_state=SEED
    )
    by_feature = {row["feature"]: row for row in result["permutation_importance"]}
    assert list(by_feature) == sorted(by_feature, key=lambda f: -by_feature[f]["mean"])
    assert set(by_feature) == set(X_test.columns)
    for name, mean, std in zip(
        X_test.columns, expected.importances_mean, expected.importances_std, strict=True
    ):
        assert by_feature[name]["mean"] == pytest.approx(mean, rel=1e-12, abs=1e-15)
        assert by_feature[name]["std"] == pytest.approx(std, rel=1e-12, abs=1e-15)
    # sex carries little of the diabetes signal, s5 (log triglycerides) much
    ranked = [r["feature"] for r in result["permutation_importance"]]
    assert ranked.index("s5") < 3 and ranked.index("sex") > 3


def test_large_test_split_plots_a_seeded_sample_of_two_thousand_rows() -> None:
    X, y = make_regression(n_samples=5_000, n_features=3, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    target = pd.Series(y, name="y")
    pipeline = make_pipeline(LinearRegression()).fit(frame, target)
    first = plot_data(pipeline, frame, target, task="regression", cv_metrics=CV, random_state=SEED)
    again = plot_data(pipeline, frame, target, task="regression", cv_metrics=CV, random_state=SEED)
    rows = sample_rows(5_000, SEED)
    assert MAX_POINTS == 2_000 and len(rows) == 2_000
    assert np.all(np.diff(rows) > 0) and rows[-1] < 5_000
    points = first["predicted_vs_actual"]
    assert points["n_total"] == 5_000
    assert points["actual"] == target.iloc[rows].tolist()
    assert points["predicted"] == pipeline.predict(frame.iloc[rows]).tolist()
    assert first == again
    other = plot_data(
        pipeline, frame, target, task="regression", cv_metrics=CV, random_state=SEED + 1
    )
    assert other["predicted_vs_actual"]["actual"] != points["actual"]
    assert sum(first["residuals"]["counts"]) == 5_000


# --------------------------------------------------------------------------- classification


def test_binary_curves_are_sklearns_for_the_second_class(cancer: Split) -> None:
    pipeline, X_test, y_test = cancer
    result = plot_data(
        pipeline, X_test, y_test, task="classification", cv_metrics=CV, random_state=SEED
    )
    assert "predicted_vs_actual" not in result and "residuals" not in result
    assert list(pipeline.classes_) == ["benign", "malignant"]
    positive = (y_test == "malignant").to_numpy()
    score = pipeline.predict_proba(X_test)[:, 1]
    [roc] = result["roc"]
    assert roc["label"] == "malignant"
    assert roc["auc"] == pytest.approx(skm.roc_auc_score(positive, score), rel=1e-12)
    fpr, tpr, _ = skm.roc_curve(positive, score)
    assert len(fpr) <= MAX_CURVE_POINTS
    assert (roc["fpr"], roc["tpr"]) == (fpr.tolist(), tpr.tolist())
    [pr] = result["precision_recall"]
    assert pr["label"] == "malignant"
    assert pr["average_precision"] == pytest.approx(
        skm.average_precision_score(positive, score), rel=1e-12
    )
    precision, recall, _ = skm.precision_recall_curve(positive, score)
    keep = downsample(len(precision))
    assert pr["precision"] == precision[keep].tolist()
    assert pr["recall"] == recall[keep].tolist()
    assert (pr["recall"][0], pr["recall"][-1]) == (1.0, 0.0)


def test_confusion_matrix_rows_are_actual_classes(cancer: Split) -> None:
    pipeline, X_test, y_test = cancer
    matrix = plot_data(
        pipeline, X_test, y_test, task="classification", cv_metrics=CV, random_state=SEED
    )["confusion_matrix"]
    assert matrix["labels"] == ["benign", "malignant"]
    expected = skm.confusion_matrix(y_test, pipeline.predict(X_test), labels=pipeline.classes_)
    assert matrix["matrix"] == expected.tolist()
    assert sum(map(sum, matrix["matrix"])) == len(X_test)
    assert sum(matrix["matrix"][1]) == int((y_test == "malignant").sum())


def test_multiclass_curves_are_one_vs_rest_per_class(iris: Split) -> None:
    pipeline, X_test, y_test = iris
    result = plot_data(
        pipeline, X_test, y_test, task="classification", cv_metrics=CV, random_state=SEED
    )
    proba = pipeline.predict_proba(X_test)
    assert [c["label"] for c in result["roc"]] == ["setosa", "versicolor", "virginica"]
    for index, (roc, pr) in enumerate(zip(result["roc"], result["precision_recall"], strict=True)):
        positive = (y_test == pipeline.classes_[index]).to_numpy()
        assert roc["auc"] == pytest.approx(skm.roc_auc_score(positive, proba[:, index]))
        assert pr["average_precision"] == pytest.approx(
            skm.average_precision_score(positive, proba[:, index])
        )
    macro = skm.roc_auc_score(y_test, proba, multi_class="ovr", average="macro")
    assert np.mean([c["auc"] for c in result["roc"]]) == pytest.approx(macro)


def test_class_missing_from_the_test_rows_gets_no_curve(iris: Split) -> None:
    pipeline, X_test, y_test = iris
    kept = (y_test != "virginica").to_numpy()
    result = plot_data(
        pipeline,
        X_test[kept],
        y_test[kept],
        task="classification",
        cv_metrics=CV,
        random_state=SEED,
    )
    assert [c["label"] for c in result["roc"]] == ["setosa", "versicolor"]
    assert [c["label"] for c in result["precision_recall"]] == ["setosa", "versicolor"]
    assert result["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert result["confusion_matrix"]["matrix"][2] == [0, 0, 0]


def test_classifier_without_probabilities_has_no_curves(cancer: Split) -> None:
    _pipeline, X_test, y_test = cancer
    bunch = load_breast_cancer(as_frame=True)
    hinge = make_pipeline(StandardScaler(), SGDClassifier(loss="hinge", random_state=0))
    hinge.fit(bunch.data, bunch.target_names[bunch.target])
    result = plot_data(
        hinge, X_test, y_test, task="classification", cv_metrics=CV, random_state=SEED
    )
    assert (result["roc"], result["precision_recall"]) == ([], [])
    assert sum(map(sum, result["confusion_matrix"]["matrix"])) == len(X_test)
    accuracy = permutation_importance(
        hinge, X_test, y_test, scoring="accuracy", n_repeats=5, random_state=SEED
    )
    top = result["permutation_importance"][0]
    assert top["mean"] == pytest.approx(accuracy.importances_mean.max())


def test_evaluation_is_plain_json(iris: Split) -> None:
    pipeline, X_test, y_test = iris
    result = plot_data(
        pipeline, X_test, y_test, task="classification", cv_metrics=CV, random_state=SEED
    )
    assert orjson.loads(orjson.dumps(result)) == result


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("n_points", [1, 2, 199, 200, 201, 1_000, 12_345])
def test_downsample_keeps_first_and_last_at_most_200(n_points: int) -> None:
    kept = downsample(n_points)
    assert kept[0] == 0 and kept[-1] == n_points - 1
    assert len(kept) == min(n_points, 200)
    assert np.all(np.diff(kept) > 0)


def test_clean_replaces_non_finite_floats_at_any_depth() -> None:
    dirty = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": "x", "e": 2}
    assert clean(dirty) == {"a": None, "b": [1.0, None, {"c": None}], "d": "x", "e": 2}


def test_sample_rows_keeps_every_row_of_a_small_split() -> None:
    assert sample_rows(10, SEED).tolist() == list(range(10))


def test_train_records_the_evaluation_of_its_test_split() -> None:
    bunch = load_iris(as_frame=True)
    frame = bunch.frame
    spec = TrainSpec(
        dataset_id="d", target="target", algorithm="logistic_regression", model_name="m", cv_folds=3
    )
    result = train(frame, spec, "classification")
    assert result.evaluation is not None and result.test_frame is not None
    assert result.evaluation["n_test"] == result.n_test == len(result.test_frame) == 30
    assert result.evaluation["cv"] == result.cv_metrics
    assert result.evaluation["confusion_matrix"] == result.metrics["confusion_matrix"]
    assert len(result.evaluation["roc"]) == 3
    sample = result.evaluation["permutation_importance_sample"]
    assert result.cv_seconds > 0
    assert sample["budget_s"] == extras_budget_s(result.training_seconds + result.cv_seconds)
    assert len(result.evaluation["permutation_importance"]) == 4


def california_result(frame: pd.DataFrame, algorithm: str) -> dict[str, Any]:
    spec = TrainSpec(
        dataset_id="d", target=CALIFORNIA_TARGET, algorithm=algorithm, model_name="h", cv_folds=0
    )
    result = train(frame, spec, "regression")
    assert result.evaluation is not None
    return result.evaluation


def test_california_importance_ranks_income_and_location_first(
    california_frame: pd.DataFrame,
) -> None:
    linear = california_result(california_frame, "ridge")["permutation_importance"]
    assert linear[0]["feature"] == "median_income"
    assert len(linear) == california_frame.shape[1] - 1
    boosted = california_result(california_frame, "gradient_boosting")
    # Trees split on longitude and latitude together: shuffling either one breaks the
    # location, so each weighs about as much as median_income (all three above 0.4).
    top = boosted["permutation_importance"][:3]
    assert {row["feature"] for row in top} == {"median_income", "longitude", "latitude"}
    assert min(row["mean"] for row in top) > 0.4
    assert boosted["n_test"] == 4_128
    points = boosted["predicted_vs_actual"]
    assert len(points["actual"]) == len(points["predicted"]) == 2_000
    assert points["n_total"] == 4_128


@pytest.mark.parametrize(
    ("target", "algorithm", "task"),
    [
        (CALIFORNIA_TARGET, "linear_regression", "regression"),
        ("price_band", "logistic_regression", "classification"),
    ],
)
def test_importance_scored_on_the_compiled_graph_is_the_pipelines(
    california_frame: pd.DataFrame, target: str, algorithm: str, task: str
) -> None:
    from mlserve.serving.onnx import compile_pipeline, feed_from_frame
    from tests.serving.conftest import fit_california

    frame = california_frame.iloc[:3_000].copy()
    frame["price_band"] = np.where(frame[CALIFORNIA_TARGET] > 180_000, "high", "low")
    result = fit_california(frame, target, algorithm, task)
    assert result.test_frame is not None and result.test_target is not None
    compiled = compile_pipeline(result.pipeline, result.signature, result.test_frame)
    assert compiled.model is not None
    calls = []

    def graph_predict(X: pd.DataFrame) -> np.ndarray:
        calls.append(len(X))
        return compiled.model.run(feed_from_frame(X, result.signature))[0]

    X, y = result.test_frame, result.test_target
    on_graph = budgeted_importances(result.pipeline, X, y, task, SEED, predict=graph_predict)
    on_pipeline = budgeted_importances(result.pipeline, X, y, task, SEED)
    n_features = X.shape[1]
    assert calls == [len(X)] * (1 + n_features * IMPORTANCE_REPEATS)
    assert on_graph["permutation_importance_sample"] == on_pipeline["permutation_importance_sample"]
    want = {r["feature"]: r for r in on_pipeline["permutation_importance"]}
    assert len(want) == n_features
    for row in on_graph["permutation_importance"]:
        assert row["mean"] == pytest.approx(want[row["feature"]]["mean"], abs=1e-9)
        assert row["std"] == pytest.approx(want[row["feature"]]["std"], abs=1e-9)
