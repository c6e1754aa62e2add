"""Plot data of a fitted model on rows it did not learn from, computed once per version.

:func:`plot_data` is pure: a fitted pipeline and the held-out rows in, a JSON-ready
dict out (stored with the model version, served by
``GET /api/v1/models/{name}/versions/{v}/evaluation``). A training job evaluates on
its test split; an online update on its guard window (the newest waiting samples,
which neither the new version nor production has learned from), and ``rows`` says
which. Every curve and metric is
scikit-learn's own (``sklearn.metrics``, ``sklearn.inspection``):

- regression: predicted against actual values (a seeded sample of at most
  2,000 test rows) and the histogram of the residuals ``actual - predicted``
  (every test row);
- classification: the confusion matrix (rows actual, columns predicted), and for
  models with ``predict_proba`` the ROC and precision-recall curves, one per class
  against the rest (one curve, the second class, for two classes), with their
  AUC and average precision;
- both: permutation importance of each input feature (Breiman 2001; scikit-learn's
  ``permutation_importance``) on a seeded sample of at most 2,000 test rows, 5
  repeats, scored by R² or accuracy, within a time budget
  (:func:`mlserve.training.budget.plan_importance`: fewer repeats, then fewer rows;
  ``permutation_importance_sample`` records the rows and repeats used), and the
  cross-validation scores;
- estimators trained in epochs (``torch_mlp``): ``training``, the estimator's own
  record (:class:`mlserve.store.documents.TrainingRecord`): device, torch version,
  train and validation loss per epoch, best epoch, and the passes of online updates.

Curves keep at most 200 points (the first and last included); non-finite
numbers become ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize

from mlserve.datasets.stats import histogram
from mlserve.store.documents import CvMetrics, TrainingRecord
from mlserve.training.budget import IMPORTANCE_REPEATS, plan_importance, predict_seconds
from mlserve.training.signature import to_json_scalar

MAX_POINTS = 2_000
MAX_CURVE_POINTS = 200
SCORING = {"regression": "r2", "classification": "accuracy"}
TEST_SPLIT, GUARD_WINDOW = "test split", "guard window"  # the values of ``rows``


def _nothing() -> None:
    return None


def plot_data(
    pipeline: Pipeline,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    *,
    task: str,
    cv_metrics: CvMetrics,
    random_state: int,
    before_importance: Callable[[], None] = _nothing,
    rows: str = TEST_SPLIT,
    budget_s: float = math.inf,
    importance: bool = True,
) -> dict[str, Any]:
    """Plot data of a fitted ``pipeline`` on held-out rows (the test split by default).

    Parameters
    ----------
    pipeline : Pipeline
        Fitted on the training split.
    X_test : DataFrame of shape (n_test, n_features)
        Held-out rows in model input dtypes (one column per input feature): the
        test split, or an online update's guard window.
    y_test : Series of shape (n_test,)
    task : {"regression", "classification"}
    cv_metrics : dict
        The cross-validation summary, stored as ``cv``.
    random_state : int
        Seed of the row samples and of the permutations.
    before_importance : callable, optional
        Called before the permutation importance, the slow part (a progress hook).
    rows : {"test split", "guard window"}
        Which rows ``X_test`` holds, recorded as ``rows``.
    budget_s : float
        Time the permutation importance should take, in seconds
        (:func:`mlserve.training.budget.extras_budget_s` of the fit time); unlimited
        by default.
    importance : bool
        Compute the permutation importance here (a training job adds it later, scored
        on the compiled graph: :func:`budgeted_importances`).

    Returns
    -------
    dict
        ``task``, ``rows``, ``n_test``, ``cv``, ``permutation_importance``,
        ``permutation_importance_sample`` (``rows``, ``repeats``, ``budget_s``: what the
        importance was computed on; both absent when ``importance`` is False) and either
        ``predicted_vs_actual`` and ``residuals`` (regression) or
        ``confusion_matrix``, ``roc`` and ``precision_recall`` (classification); and
        ``training`` for estimators that keep a training record (:func:`training_record`).
    """
    y_true = y_test.to_numpy()
    y_pred = pipeline.predict(X_test)
    sample = sample_rows(len(X_test), random_state)
    out: dict[str, Any] = {"task": task, "rows": rows, "n_test": len(X_test)}
    if task == "regression":
        out.update(_regression(y_true, y_pred, sample))
    else:
        out.update(_classification(pipeline, X_test, y_true, y_pred))
    if importance:
        before_importance()
        out.update(
            budgeted_importances(pipeline, X_test, y_test, task, random_state, budget_s=budget_s)
        )
    out["cv"] = cv_metrics
    record = training_record(pipeline)
    if record is not None:
        out["training"] = record
    return clean(out)


def budgeted_importances(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    random_state: int,
    *,
    budget_s: float = math.inf,
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Permutation importance on a seeded sample of ``X``, sized by :func:`plan_importance`.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted.
    X : DataFrame of shape (n_samples, n_features)
    y : Series of shape (n_samples,)
    task : {"regression", "classification"}
    random_state : int
    budget_s : float
        Seconds the importance should take (unlimited by default).
    predict : callable, optional
        Predictions of shape (n_rows,) of a frame of shape (n_rows, n_features) equal
        to ``pipeline.predict``'s (the compiled graph's, within the compiler's
        tolerance), used for every scoring instead of the pipeline: the same
        importances, faster.

    Returns
    -------
    dict
        ``permutation_importance`` (:func:`importances`) and
        ``permutation_importance_sample``: ``rows``, ``repeats`` and ``budget_s``
        (``None`` when unlimited). With a finite budget the sample depends on how fast
        the model predicted here, so two runs may differ; without one it is seeded.
    """
    sample = sample_rows(len(X), random_state)
    rows, repeats = len(sample), IMPORTANCE_REPEATS
    if math.isfinite(budget_s):
        call_s = predict_seconds(predict or pipeline.predict, X.iloc[sample])
        rows, repeats = plan_importance(len(sample), X.shape[1], call_s, budget_s)
    sample = sample_rows(len(X), random_state, limit=rows)
    found = importances(
        pipeline,
        X.iloc[sample],
        y.iloc[sample],
        task,
        random_state,
        repeats=repeats,
        predict=predict,
    )
    return {
        "permutation_importance": found,
        "permutation_importance_sample": {
            "rows": len(sample),
            "repeats": repeats,
            "budget_s": budget_s if math.isfinite(budget_s) else None,
        },
    }


def training_record(pipeline: Pipeline) -> TrainingRecord | None:
    """The fitted estimator's ``training_record()`` (inside a target wrapper too), if it has one."""
    estimator = pipeline.steps[-1][1]
    estimator = getattr(estimator, "regressor_", estimator)
    record = getattr(estimator, "training_record", None)
    return record() if callable(record) else None


def sample_rows(n_rows: int, random_state: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Sorted positions of at most ``limit`` of ``n_rows`` rows, drawn without replacement."""
    if n_rows <= limit:
        return np.arange(n_rows)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_rows, size=limit, replace=False))


def _regression(y_true: np.ndarray, y_pred: np.ndarray, sample: np.ndarray) -> dict[str, Any]:
    actual = y_true.astype(np.float64)
    predicted = np.asarray(y_pred, dtype=np.float64)
    return {
        "predicted_vs_actual": {
            "actual": actual[sample].tolist(),
            "predicted": predicted[sample].tolist(),
            "n_total": len(actual),
        },
        "residuals": histogram(actual - predicted) or {"edges": [], "counts": []},
    }


def _classification(
    pipeline: Pipeline, X_test: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, Any]:
    classes = pipeline.classes_
    labels = [to_json_scalar(c) for c in classes]
    matrix = skm.confusion_matrix(y_true, y_pred, labels=classes)
    out: dict[str, Any] = {
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
        "roc": [],
        "precision_recall": [],
    }
    if not hasattr(pipeline, "predict_proba"):
        return out
    proba = pipeline.predict_proba(X_test)
    for index, positive in one_vs_rest(y_true, classes):
        score = proba[:, index]
        out["roc"].append(roc(positive, score, labels[index]))
        out["precision_recall"].append(precision_recall(positive, score, labels[index]))
    return out


def one_vs_rest(y_true: np.ndarray, classes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(class index, y_true == class)`` for each class a curve is drawn for.

    Two classes: the second one only (scikit-learn's positive class). More: each
    class against the rest (``label_binarize``). Classes absent from, or alone in,
    the test split are skipped: their curves are undefined.
    """
    if len(classes) == 2:
        pairs = [(1, np.asarray(y_true == classes[1]))]
    else:
        binary = label_binarize(y_true, classes=classes)
        pairs = [(i, binary[:, i].astype(bool)) for i in range(len(classes))]
    return [(i, positive) for i, positive in pairs if 0 < positive.sum() < len(positive)]


def roc(positive: np.ndarray, score: np.ndarray, label: Any) -> dict[str, Any]:
    """ROC curve (``sklearn.metrics.roc_curve``) and its area of one class."""
    fpr, tpr, _thresholds = skm.roc_curve(positive, score)
    keep = downsample(len(fpr))
    return {
        "label": label,
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "auc": float(skm.auc(fpr, tpr)),
    }


def precision_recall(positive: np.ndarray, score: np.ndarray, label: Any) -> dict[str, Any]:
    """Precision-recall curve and average precision (``sklearn.metrics``) of one class."""
    precision, recall, _thresholds = skm.precision_recall_curve(positive, score)
    keep = downsample(len(precision))
    return {
        "label": label,
        "precision": precision[keep].tolist(),
        "recall": recall[keep].tolist(),
        "average_precision": float(skm.average_precision_score(positive, score)),
    }


def downsample(n_points: int, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Positions of at most ``limit`` evenly spread points of ``n_points``, first and last kept."""
    if n_points <= limit:
        return np.arange(n_points)
    return np.unique(np.linspace(0, n_points - 1, limit).round().astype(int))


def importances(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    random_state: int,
    repeats: int = IMPORTANCE_REPEATS,
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Permutation importance of each column of ``X`` (n_samples, n_features), largest first.

    scikit-learn's ``permutation_importance`` shuffles the columns; with ``predict``
    (see :func:`budgeted_importances`) each shuffled frame is scored on its predictions
    by the same metric (``r2_score`` or ``accuracy_score``) instead of the pipeline's.

    Returns
    -------
    list of dict
        ``{"feature", "mean", "std"}``: the drop of the score (R² or accuracy) when
        the feature's values are shuffled, over ``repeats`` shuffles.
    """
    scoring: Any = SCORING[task]
    if predict is not None:
        metric = _r2 if task == "regression" else _accuracy

        def scoring(_estimator: Any, X_scored: pd.DataFrame, y_scored: Any) -> float:
            return metric(np.asarray(y_scored), predict(X_scored))

    result = permutation_importance(
        pipeline,
        X,
        y,
        scoring=scoring,
        n_repeats=repeats,
        random_state=random_state,
    )
    rows = [
        {"feature": str(name), "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(
            X.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(rows, key=lambda row: -row["mean"] if math.isfinite(row["mean"]) else math.inf)


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``sklearn.metrics.r2_score`` of one output, its formula without its input checks
    (which cost more than a compiled graph's run of a few hundred rows); scikit-learn's
    own for a constant target (its special cases)."""
    y_true = y_true.astype(np.float64, copy=False)
    numerator = ((y_true - y_pred) ** 2).sum(dtype=np.float64)
    denominator = ((y_true - np.average(y_true)) ** 2).sum(dtype=np.float64)
    if denominator == 0:
        return float(skm.r2_score(y_true, y_pred))
    return float(1 - numerator / denominator)


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``sklearn.metrics.accuracy_score``: the share of labels predicted right (the same
    value, without its 1.7 ms of input checks per call on 360 labels)."""
    return float(np.average(y_true == y_pred))


def clean(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts and lists) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
