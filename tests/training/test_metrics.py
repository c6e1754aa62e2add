"""Unit tests for mlserve.training.metrics against hand-computed values on tiny arrays."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from mlserve.training.metrics import PRIMARY_METRIC, classification_metrics, regression_metrics


def _pairwise_auc(positive: list[float], negative: list[float]) -> float:
    """AUC as P(score_pos > score_neg) + 0.5 P(tie), counted over all pairs (Mann-Whitney)."""
    wins = 0.0
    for p, n in product(positive, negative):
        wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positive) * len(negative))


# --------------------------------------------------------------------------- regression


def test_regression_metrics_hand_computed() -> None:
    result = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert result["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert result["mae"] == pytest.approx(2 / 3)
    # SS_res = 4, SS_tot = (1-2)^2 + 0 + (3-2)^2 = 2 -> R² = 1 - 4/2.
    assert result["r2"] == pytest.approx(-1.0)
    assert result["n_samples"] == 3


def test_regression_metrics_perfect_prediction() -> None:
    y = np.array([3.5, -1.0, 7.25, 0.0])
    assert regression_metrics(y, y.copy()) == {"rmse": 0.0, "mae": 0.0, "r2": 1.0, "n_samples": 4}


def test_regression_metrics_mean_prediction_has_zero_r2() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 6.0])
    y_pred = np.full(4, y_true.mean())
    result = regression_metrics(y_true, y_pred)
    assert result["r2"] == pytest.approx(0.0)
    # Deviations from the mean 3: -2, -1, 0, 3 -> MSE = 14/4, MAE = 6/4.
    assert result["rmse"] == pytest.approx(math.sqrt(14 / 4))
    assert result["mae"] == pytest.approx(1.5)


def test_regression_metrics_matches_numpy_on_random_data() -> None:
    rng = np.random.default_rng(42)
    y_true = rng.normal(10, 3, size=200)
    y_pred = y_true + rng.normal(0, 1, size=200)
    result = regression_metrics(y_true, y_pred)
    error = y_true - y_pred
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)))
    assert result["mae"] == pytest.approx(np.mean(np.abs(error)))
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    assert result["r2"] == pytest.approx(1 - np.sum(error**2) / ss_tot)


def test_regression_metrics_values_are_python_floats() -> None:
    result = regression_metrics(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    assert all(type(result[k]) is float for k in ("rmse", "mae", "r2"))
    assert type(result["n_samples"]) is int


# --------------------------------------------------------------------------- classification


BINARY_TRUE = np.array([0, 0, 1, 1])
BINARY_PROBA = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
BINARY_PRED = np.array([0, 0, 0, 1])


def test_classification_metrics_binary_hand_computed() -> None:
    result = classification_metrics(BINARY_TRUE, BINARY_PRED, BINARY_PROBA, np.array([0, 1]))
    assert result["accuracy"] == pytest.approx(0.75)
    # Class 0: precision 2/3, recall 1, F1 0.8. Class 1: precision 1, recall 1/2, F1 2/3.
    assert result["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["recall_macro"] == pytest.approx((1 + 0.5) / 2)
    assert result["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    # Positive scores {0.35, 0.8} vs negative {0.1, 0.4}: 3 of 4 pairs ranked right.
    assert result["roc_auc"] == pytest.approx(0.75)
    assert result["log_loss"] == pytest.approx(
        -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    )
    assert result["n_samples"] == 4
    assert result["confusion_matrix"] == {"labels": [0, 1], "matrix": [[2, 0], [1, 1]]}


def test_classification_metrics_binary_auc_uses_second_class_as_positive() -> None:
    y_true = np.array(["no", "no", "yes", "yes"])
    y_pred = np.array(["no", "no", "no", "yes"])
    result = classification_metrics(y_true, y_pred, BINARY_PROBA, np.array(["no", "yes"]))
    assert result["roc_auc"] == pytest.approx(0.75)
    assert result["confusion_matrix"]["labels"] == ["no", "yes"]


def test_classification_metrics_binary_auc_counts_ties_as_half() -> None:
    y_true = np.array([0, 1, 0, 1])
    proba1 = np.array([0.5, 0.5, 0.2, 0.9])
    proba = np.column_stack([1 - proba1, proba1])
    result = classification_metrics(y_true, (proba1 > 0.5).astype(int), proba, np.array([0, 1]))
    expected = _pairwise_auc([0.5, 0.9], [0.5, 0.2])
    assert expected == pytest.approx(0.875)
    assert result["roc_auc"] == pytest.approx(expected)


def test_classification_metrics_multiclass_auc_is_one_vs_rest_macro() -> None:
    classes = np.array([0, 1, 2])
    y_true = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.3, 0.4, 0.3],
            [0.2, 0.5, 0.3],
            [0.4, 0.3, 0.3],
            [0.1, 0.3, 0.6],
            [0.3, 0.2, 0.5],
        ]
    )
    y_pred = classes[proba.argmax(axis=1)]
    result = classification_metrics(y_true, y_pred, proba, classes)
    per_class = []
    for k in classes:
        positive = proba[y_true == k, k].tolist()
        negative = proba[y_true != k, k].tolist()
        per_class.append(_pairwise_auc(positive, negative))
    # Hand count over the 2 x 4 pairs (a tie counts 1/2): class 0 -> 6.5/8, class 1 -> 6.5/8,
    # class 2 -> 8/8.
    assert per_class == [pytest.approx(13 / 16), pytest.approx(13 / 16), pytest.approx(1.0)]
    assert result["roc_auc"] == pytest.approx(sum(per_class) / 3)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["log_loss"] == pytest.approx(
        -np.mean(np.log(proba[np.arange(6), y_true])), rel=1e-9
    )


def test_classification_metrics_perfect_multiclass() -> None:
    classes = np.array(["a", "b", "c"])
    y = np.array(["a", "b", "c", "c", "b", "a"])
    proba = (y[:, None] == classes[None, :]).astype(float) * 0.97 + 0.01
    result = classification_metrics(y, y.copy(), proba, classes)
    assert result["accuracy"] == 1.0
    assert result["f1_macro"] == 1.0
    assert result["roc_auc"] == 1.0
    assert result["log_loss"] == pytest.approx(-math.log(0.98))
    assert result["confusion_matrix"]["matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_classification_metrics_confusion_matrix_follows_classes_order() -> None:
    y_true = np.array(["a", "b", "c", "a"])
    y_pred = np.array(["a", "c", "c", "b"])
    result = classification_metrics(y_true, y_pred, None, np.array(["c", "b", "a"]))
    matrix = result["confusion_matrix"]
    assert matrix["labels"] == ["c", "b", "a"]
    # Rows are true classes, columns predicted, both in the order c, b, a.
    assert matrix["matrix"] == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert result["accuracy"] == pytest.approx(0.5)
    # Per class (c, b, a): precision 1/2, 0, 1; recall 1, 0, 1/2.
    assert result["precision_macro"] == pytest.approx(0.5)
    assert result["recall_macro"] == pytest.approx(0.5)
    assert result["f1_macro"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)


def test_classification_metrics_labels_are_python_scalars() -> None:
    result = classification_metrics(
        np.array([1, 2]), np.array([1, 2]), None, np.array([1, 2], dtype=np.int64)
    )
    labels = result["confusion_matrix"]["labels"]
    assert labels == [1, 2]
    assert all(type(label) is int for label in labels)
    assert all(type(v) is int for row in result["confusion_matrix"]["matrix"] for v in row)


def test_classification_metrics_boolean_classes() -> None:
    y_true = np.array([True, False, True, True])
    y_pred = np.array([True, False, False, True])
    proba = np.array([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    result = classification_metrics(y_true, y_pred, proba, np.array([False, True]))
    assert result["confusion_matrix"] == {"labels": [False, True], "matrix": [[1, 0], [1, 2]]}
    assert result["roc_auc"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "classes"),
    [
        (np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([0, 1])),
        (np.array(["x", "y", "z"]), np.array(["x", "z", "z"]), np.array(["x", "y", "z"])),
    ],
    ids=["binary", "multiclass"],
)
def test_classification_metrics_without_proba_has_no_auc_or_log_loss(
    y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray
) -> None:
    result = classification_metrics(y_true, y_pred, None, classes)
    assert result["roc_auc"] is None
    assert result["log_loss"] is None
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_classification_metrics_class_missing_from_truth_skips_auc_keeps_log_loss() -> None:
    y_true = np.array([1, 1])
    proba = np.array([[0.3, 0.7], [0.6, 0.4]])
    result = classification_metrics(y_true, np.array([1, 0]), proba, np.array([0, 1]))
    assert result["roc_auc"] is None
    assert result["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.4)) / 2)
    assert result["confusion_matrix"]["matrix"] == [[0, 0], [1, 1]]


def test_classification_metrics_precision_zero_division_is_zero_not_error() -> None:
    # Class 1 is never predicted: its precision is 0 by convention, no warning-as-error.
    y_true = np.array([0, 1, 1, 0])
    y_pred = np.array([0, 0, 0, 0])
    result = classification_metrics(y_true, y_pred, None, np.array([0, 1]))
    assert result["precision_macro"] == pytest.approx((0.5 + 0.0) / 2)
    assert result["recall_macro"] == pytest.approx((1.0 + 0.0) / 2)


def test_classification_metrics_has_all_keys() -> None:
    result = classification_metrics(BINARY_TRUE, BINARY_PRED, BINARY_PROBA, np.array([0, 1]))
    assert set(result) == {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "log_loss",
        "n_samples",
        "confusion_matrix",
    }


def test_primary_metric_per_task() -> None:
    assert PRIMARY_METRIC == {"regression": "rmse", "classification": "accuracy"}


@pytest.mark.parametrize(
    ("y_true", "classes", "proba"),
    [
        # Binary model; a third class turns up in the evaluation rows.
        (
            np.array(["a", "b", "c"]),
            np.array(["a", "b"]),
            np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]]),
        ),
        # Same number of distinct labels as classes, but not the same labels.
        (
            np.array(["a", "c", "a"]),
            np.array(["a", "b"]),
            np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]),
        ),
        # Multiclass model; an unseen fourth class.
        (
            np.array([0, 1, 2, 3]),
            np.array([0, 1, 2]),
            np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3]]),
        ),
    ],
    ids=["binary-extra-class", "binary-swapped-class", "multiclass-extra-class"],
)
def test_classification_metrics_class_unseen_in_training_gives_none_not_error(
    y_true: np.ndarray, classes: np.ndarray, proba: np.ndarray
) -> None:
    y_pred = classes[proba.argmax(axis=1)]
    result = classification_metrics(y_true, y_pred, proba, classes)
    assert result["log_loss"] is None
    assert result["roc_auc"] is None
    expected_accuracy = float(np.mean(y_true == y_pred))
    assert result["accuracy"] == pytest.approx(expected_accuracy)
    assert result["confusion_matrix"]["labels"] == classes.tolist()
