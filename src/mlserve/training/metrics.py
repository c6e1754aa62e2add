"""Evaluation metrics of a fitted model on held-out rows (scikit-learn's implementations)."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

from mlserve.store.documents import ClassificationMetrics, Metrics, RegressionMetrics


def _clean(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    """RMSE, MAE and R² of predictions.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,)

    Returns
    -------
    dict
        ``rmse`` and ``mae`` in the target's unit, ``r2`` (coefficient of
        determination, 1 is perfect), ``n_samples``.
    """
    return {
        "rmse": _clean(skm.root_mean_squared_error(y_true, y_pred)),
        "mae": _clean(skm.mean_absolute_error(y_true, y_pred)),
        "r2": _clean(skm.r2_score(y_true, y_pred)),
        "n_samples": len(y_true),
    }


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> ClassificationMetrics:
    """Accuracy, macro precision/recall/F1, ROC AUC, log loss and confusion matrix.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,)
    proba : ndarray of shape (n_samples, n_classes) or None
        Class probabilities in ``classes`` order; ROC AUC and log loss are
        ``None`` without them.
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    dict
        ROC AUC is binary AUC on the second class, or one-vs-rest macro AUC
        for more classes (Provost & Domingos 2000); ``confusion_matrix``
        rows are true classes and columns predicted classes, in ``labels`` order.
    """
    matrix = skm.confusion_matrix(y_true, y_pred, labels=classes)
    result: ClassificationMetrics = {
        **label_scores(y_true, y_pred),  # type: ignore[typeddict-item]  # its two keys
        "precision_macro": _clean(
            skm.precision_score(y_true, y_pred, average="macro", zero_division=0)
        ),
        "recall_macro": _clean(skm.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": None,
        "log_loss": None,
        "n_samples": len(y_true),
        "confusion_matrix": {
            "labels": [c.item() if isinstance(c, np.generic) else c for c in classes],
            "matrix": matrix.tolist(),
        },
    }
    present = np.unique(y_true)
    # A true class the model never saw in training has no probability column:
    # log loss and ROC AUC are undefined (None), not an error.
    if proba is not None and np.isin(present, classes).all():
        result["log_loss"] = _clean(skm.log_loss(y_true, proba, labels=classes))
        if len(present) == len(classes) and len(classes) > 1:
            if len(classes) == 2:
                auc = skm.roc_auc_score(y_true == classes[1], proba[:, 1])
            else:
                auc = skm.roc_auc_score(
                    y_true, proba, multi_class="ovr", average="macro", labels=classes
                )
            result["roc_auc"] = _clean(auc)
    return result


PRIMARY_METRIC = {"regression": "rmse", "classification": "accuracy"}


def label_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """``accuracy`` and ``f1_macro`` of predicted labels, as :func:`classification_metrics`
    computes them: what cross-validation keeps of each fold, without the probabilities,
    confusion matrix and curves the test split gets (a fold of digits: 1 ms against 31).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,)
    """
    return {
        "accuracy": _clean(skm.accuracy_score(y_true, y_pred)),
        "f1_macro": _clean(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def metric_value(metrics: Metrics, name: str) -> float | None:
    """The value of metric ``name`` (``rmse``, ``accuracy``...) in ``metrics``.

    Raises
    ------
    KeyError
        ``metrics`` has no such metric (a regression metric of a classifier, say).
    """
    value = dict(metrics)[name]
    return None if value is None else float(value)  # type: ignore[arg-type]
