"""HistGradientBoosting's categorical splits as threshold splits (mlserve.training.hgb_trees):
the expanded trees compute the estimator's raw output exactly, their weights are
consistent, and shap's path-dependent TreeSHAP on them equals the Shapley values of the
same game computed by enumerating every coalition."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from mlserve.training import hgb_trees
from mlserve.training.shap_jit import load_shap

N_CODES = 6
# code -> effect on the target, not monotone in the code, so splits need several runs
EFFECT = np.array([3.0, -2.0, 4.0, -1.0, 2.5, -3.5])


def frame(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three numeric columns (some NaN) and a categorical code in column 1 (some NaN)."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 3))
    codes = rng.integers(0, N_CODES, size=n).astype(float)
    y = EFFECT[codes.astype(int)] + 2 * numeric[:, 0] - numeric[:, 2] ** 2 + rng.normal(0, 0.3, n)
    numeric[rng.random((n, 3)) < 0.05] = np.nan
    codes[rng.random(n) < 0.05] = np.nan
    X = np.column_stack([numeric[:, 0], codes, numeric[:, 1], numeric[:, 2]])
    return X, y


def fit(kind: str, max_iter: int = 30) -> Any:
    X, y = frame(600, 0)
    options = {"categorical_features": [1], "max_iter": max_iter, "random_state": 0}
    if kind == "regression":
        return HistGradientBoostingRegressor(**options).fit(X, y)
    labels = (y > np.median(y)).astype(int) if kind == "binary" else np.digitize(y, [-1.0, 2.0])
    return HistGradientBoostingClassifier(**options).fit(X, labels)


def probes() -> np.ndarray:
    """Seen rows, then the odd ones: NaN, negative and never-seen codes, code halves."""
    X, _ = frame(40, 1)
    odd = np.repeat(X[:1], 5, axis=0)
    odd[:, 1] = [np.nan, -1.0, N_CODES, N_CODES + 20, 2.0]
    return np.vstack([X, odd])


def explainer(estimator: Any) -> tuple[Any, dict[str, Any]]:
    sample = hgb_trees.internal_rows(estimator, frame(100, 2)[0])
    shap = load_shap()
    model = hgb_trees.shap_model(estimator, sample)
    made = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent", model_output="raw")
    return made, model


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_expanded_trees_compute_the_estimators_raw_output(kind: str) -> None:
    estimator = fit(kind)
    made, model = explainer(estimator)
    X = probes()
    raw = estimator._raw_predict(X)
    ours = made.model.predict(hgb_trees.internal_rows(estimator, X)).reshape(raw.shape)
    np.testing.assert_allclose(ours, raw, rtol=0, atol=1e-12)
    predictors = [p for iteration in estimator._predictors for p in iteration]
    assert sum(int(p.nodes["is_categorical"].sum()) for p in predictors) > 0  # the case here
    original = sum(len(p.nodes) for p in predictors)
    assert sum(len(t["features"]) for t in model["trees"]) > original


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_weights_are_consistent_and_positive(kind: str) -> None:
    _, model = explainer(fit(kind))
    for tree in model["trees"]:
        left, right = tree["children_left"], tree["children_right"]
        weight = tree["node_sample_weight"]
        inner = left >= 0
        np.testing.assert_allclose(weight[inner], weight[left[inner]] + weight[right[inner]])
        assert (weight > 0).all()


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_contributions_add_up_to_the_raw_output(kind: str) -> None:
    estimator = fit(kind)
    made, _ = explainer(estimator)
    X = probes()
    values = np.asarray(made.shap_values(hgb_trees.internal_rows(estimator, X)), np.float64)
    raw = estimator._raw_predict(X).reshape(len(X), -1)
    total = values.sum(axis=1).reshape(len(X), -1) + np.asarray(made.expected_value)
    np.testing.assert_allclose(total, raw, rtol=0, atol=1e-9)


def _conditional(
    tree: dict[str, np.ndarray], x: np.ndarray, known: set[int], node: int = 0
) -> float:
    """E[f(x) | x_known]: the path-dependent game (Lundberg et al. 2020, Algorithm 1)."""
    left, right = tree["children_left"][node], tree["children_right"][node]
    if left < 0:
        return float(tree["values"][node, 0])
    feature = int(tree["features"][node])
    if feature in known:
        value = x[feature]
        if np.isnan(value):
            nxt = tree["children_default"][node]
        else:
            nxt = left if value <= tree["thresholds"][node] else right
        return _conditional(tree, x, known, nxt)
    w = tree["node_sample_weight"]
    below = w[left] * _conditional(tree, x, known, left)
    return float(below + w[right] * _conditional(tree, x, known, right)) / w[node]


def test_tree_shap_equals_shapley_values_by_enumeration() -> None:
    estimator = fit("regression", max_iter=4)
    made, model = explainer(estimator)
    X = hgb_trees.internal_rows(estimator, probes())
    rows = [0, 7, len(X) - 5, len(X) - 3, len(X) - 1]  # seen, NaN code, unseen code, code 2
    shap_values = np.asarray(made.shap_values(X[rows]))
    p = X.shape[1]
    for i, row in enumerate(rows):
        x = X[row]

        def game(coalition: tuple[int, ...], x: np.ndarray = x) -> float:
            return sum(_conditional(t, x, set(coalition)) for t in model["trees"])

        phi = np.zeros(p)
        for j in range(p):
            others = [k for k in range(p) if k != j]
            for size in range(p):
                weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                for coalition in itertools.combinations(others, size):
                    phi[j] += weight * (game((*coalition, j)) - game(coalition))
        np.testing.assert_allclose(shap_values[i], phi, rtol=0, atol=1e-9)


def test_numeric_trees_explain_as_shaps_own_reader() -> None:
    """Without categorical splits the copy is the estimator's trees as they are: shap's
    reader of the estimator itself gives the same values."""
    X, y = load_diabetes(return_X_y=True)
    estimator = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    shap = load_shap()
    ours = shap.TreeExplainer(hgb_trees.shap_model(estimator, X[:50]), model_output="raw")
    theirs = shap.TreeExplainer(estimator)
    np.testing.assert_allclose(ours.shap_values(X[:20]), theirs.shap_values(X[:20]), atol=1e-9)
    np.testing.assert_array_equal(hgb_trees.internal_columns(estimator), np.arange(X.shape[1]))


def test_internal_columns_map_back_to_the_input() -> None:
    estimator = fit("regression")
    assert hgb_trees.internal_columns(estimator).tolist() == [1, 0, 2, 3]  # categorical first
    X = probes()[:5]
    internal = hgb_trees.internal_rows(estimator, X)
    np.testing.assert_array_equal(internal[:, 1:], X[:, [0, 2, 3]])


def test_too_many_nodes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    estimator = fit("regression")
    monkeypatch.setattr(hgb_trees, "MAX_NODES", 50)
    sample = hgb_trees.internal_rows(estimator, frame(20, 3)[0])
    with pytest.raises(hgb_trees.TooLarge, match="more than 50 nodes"):
        hgb_trees.shap_model(estimator, sample)
