"""HistGradientBoosting's trees in shap's tree format, categorical splits included.

scikit-learn's histogram gradient boosting splits a categorical feature on a set of
categories (a bitset: the categories that go left), which shap's own reader of these
models takes for a numeric threshold (its contributions then do not add up). Here each
categorical split becomes the equivalent subtree of threshold splits on the same feature
(the ordinal codes are integers, so a set of codes is a union of intervals), with a copy
of the original branch under each interval, so that shap's TreeSHAP explains the very
same function. How a row moves through a categorical node is scikit-learn's
(``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``, ``_predict_one_from_raw_data``):
NaN, a negative code and a code not seen in training take the node's missing-value side;
a known code goes left when it is in the node's bitset, else right.

Path-dependent TreeSHAP weighs each branch by the training rows that reached it (the
node's ``count``). A branch copied under several intervals gets its counts split
among them in proportion to each interval's rows in a sample (the explainer's
background), plus one, so that every copy keeps a positive weight and the copies add up
to the original branch: the weights stay consistent (each node's weight is its
children's sum), which is all additivity needs.

With categorical features the estimator encodes its input once more before the trees
see it (``_preprocessor``: categorical columns first, re-coded 0..n-1, then the rest):
:func:`internal_rows` gives the rows the trees read, :func:`internal_columns` which input
column each of theirs is.

The format is shap's dictionary of trees (``shap.TreeExplainer(model={"trees": ...})``,
see ``shap/explainers/_tree.py``, ``SingleTree``): per tree the arrays
``children_left``, ``children_right``, ``children_default`` (the child NaN takes),
``features``, ``thresholds`` (left when ``x <= threshold``), ``values`` of shape
(n_nodes, n_outputs) and ``node_sample_weight``.

May import numpy and scikit-learn's fitted estimators only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

MAX_NODES = 2_000_000  # past this (all trees), the caller uses another explainer
LEFT, RIGHT = 0, 1


class TooLarge(ValueError):
    """The expanded trees would exceed :data:`MAX_NODES` nodes."""


class Run(NamedTuple):
    """Consecutive codes that take one side: up to ``upper``, with ``share`` of that
    side's weight."""

    upper: float
    side: int
    share: float


@dataclass
class _Tree:
    """A tree being built, node by node (lists, then arrays)."""

    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    default: list[int] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)

    def add(self) -> int:
        for column in (self.left, self.right, self.default):
            column.append(-1)
        self.feature.append(-2)
        for values in (self.threshold, self.value, self.weight):
            values.append(0.0)
        return len(self.left) - 1


def internal_rows(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The rows ``X`` (n_samples, n_features) as the estimator's trees read them."""
    preprocessor = getattr(estimator, "_preprocessor", None)
    return np.asarray(X if preprocessor is None else preprocessor.transform(X), np.float64)


def internal_columns(estimator: Any) -> np.ndarray:
    """For each column the trees read, the index of the estimator's input column.

    Returns
    -------
    ndarray of int of shape (n_features,)
    """
    preprocessor = getattr(estimator, "_preprocessor", None)
    everything = np.arange(estimator.n_features_in_)
    if preprocessor is None:
        return everything
    indices = preprocessor.output_indices_
    order = np.empty(len(everything), dtype=int)
    order[indices["encoder"]] = everything[estimator.is_categorical_]
    order[indices["numerical"]] = everything[~estimator.is_categorical_]
    return order


def shap_model(estimator: Any, sample: np.ndarray) -> dict[str, Any]:
    """shap's dictionary model of a fitted HistGradientBoosting estimator (raw output).

    Parameters
    ----------
    estimator : HistGradientBoostingRegressor or HistGradientBoostingClassifier
        Fitted; its raw output (``_raw_predict``: the regression value, or the log-odds
        margin per class) is what the trees add up to.
    sample : ndarray of shape (n_samples, n_features)
        Rows as the trees read them (:func:`internal_rows`), for the share of each
        category in the weights of copied branches.

    Returns
    -------
    dict
        ``trees`` (one per predictor: iterations x outputs), ``base_offset`` (the
        baseline prediction, one per output), ``tree_output`` ``"raw_value"``. Each
        tree's ``values`` has one column per output (zero but in its own output's).

    Raises
    ------
    TooLarge
        The expansion of categorical splits would exceed :data:`MAX_NODES` nodes.
    """
    known, index_of = estimator._bin_mapper.make_known_categories_bitsets()
    baseline = np.asarray(estimator._baseline_prediction, np.float64).reshape(-1)
    trees: list[dict[str, np.ndarray]] = []
    budget = [MAX_NODES]
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            copier = _Copier(
                predictor=predictor, known=known, index_of=index_of, sample=sample, budget=budget
            )
            copier.copy(0, 1.0)
            trees.append(_arrays(copier.tree, k, len(baseline)))
    return {"trees": trees, "base_offset": baseline, "tree_output": "raw_value"}


@dataclass(kw_only=True)
class _Copier:
    """Copies one scikit-learn tree (a ``TreePredictor``) into a :class:`_Tree`."""

    predictor: Any
    known: np.ndarray  # known categories' bitsets, one row per categorical feature
    index_of: np.ndarray  # feature index -> row of ``known``
    sample: np.ndarray
    budget: list[int]  # nodes left, shared by all trees of a model
    tree: _Tree = field(default_factory=_Tree)
    runs: dict[int, list[Run]] = field(default_factory=dict)  # per categorical node

    def add(self) -> int:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise TooLarge(f"more than {MAX_NODES} nodes once categorical splits are expanded")
        return self.tree.add()

    def copy(self, node: int, scale: float) -> int:
        """Copy the subtree at ``node``, its counts times ``scale``; return the copy's root."""
        record = self.predictor.nodes[node]
        if record["is_leaf"]:
            at = self.add()
            self.tree.value[at] = float(record["value"])
            self.tree.weight[at] = float(record["count"]) * scale
            return at
        feature = int(record["feature_idx"])
        missing = LEFT if record["missing_go_to_left"] else RIGHT
        children = (int(record["left"]), int(record["right"]))
        if record["is_categorical"]:
            if node not in self.runs:  # a node inside a copied branch is met once a copy
                self.runs[node] = _runs(self._directions(record), missing, self.sample[:, feature])
            runs = self.runs[node]
            return self.split_runs(feature, runs, missing, children, scale)
        at = self.add()
        nodes = (self.copy(children[LEFT], scale), self.copy(children[RIGHT], scale))
        self._set(at, feature, float(record["num_threshold"]), nodes, missing)
        return at

    def split_runs(
        self,
        feature: int,
        runs: list[Run],
        missing: int,
        children: tuple[int, int],
        scale: float,
    ) -> int:
        """Threshold splits on ``feature`` sending each run of codes to a copy of its side."""
        if len(runs) == 1:
            return self.copy(children[runs[0].side], scale * runs[0].share)
        at = self.add()
        middle = len(runs) // 2
        halves = (runs[:middle], runs[middle:])
        nodes = (
            self.split_runs(feature, halves[0], missing, children, scale),
            self.split_runs(feature, halves[1], missing, children, scale),
        )
        # NaN takes the half that holds a run of the missing side (runs alternate, so a
        # half of two or more runs always does).
        holds = any(run.side == missing for run in halves[0])
        self._set(at, feature, halves[0][-1].upper, nodes, LEFT if holds else RIGHT)
        return at

    def _set(
        self, at: int, feature: int, threshold: float, nodes: tuple[int, int], nan: int
    ) -> None:
        tree = self.tree
        tree.feature[at], tree.threshold[at] = feature, threshold
        tree.left[at], tree.right[at] = nodes
        tree.default[at] = nodes[nan]
        tree.weight[at] = tree.weight[nodes[LEFT]] + tree.weight[nodes[RIGHT]]

    def _directions(self, record: Any) -> list[int | None]:
        """Side of each code 0..(largest known code): LEFT, RIGHT, or None (unknown)."""
        known = self.known[self.index_of[int(record["feature_idx"])]]
        left = self.predictor.raw_left_cat_bitsets[int(record["bitset_idx"])]
        largest = max(c for c in range(32 * len(known)) if _has(known, c))
        return [
            (LEFT if _has(left, c) else RIGHT) if _has(known, c) else None
            for c in range(largest + 1)
        ]


def _has(bitset: np.ndarray, code: int) -> bool:
    return bool((int(bitset[code // 32]) >> (code % 32)) & 1)


def _runs(directions: list[int | None], missing: int, codes: np.ndarray) -> list[Run]:
    """Runs of codes with one side, in code order, each with its share of its side.

    Codes are integers: code ``c`` is the interval (c - 0.5, c + 0.5]; everything below
    0 and above the largest known code (and an unknown code) takes the missing side. A
    run's share is its rows in ``codes`` plus one, over the same for all runs of its side.
    """
    sides = [missing, *(missing if d is None else d for d in directions), missing]
    bounds = [-0.5, *(c + 0.5 for c in range(len(directions))), np.inf]
    merged: list[list[Any]] = []  # [upper, side, rows + 1]
    lower = -np.inf
    for upper, side in zip(bounds, sides, strict=True):
        rows = int(np.count_nonzero((codes > lower) & (codes <= upper)))
        if merged and merged[-1][1] == side:
            merged[-1][0] = upper
            merged[-1][2] += rows
        else:
            merged.append([upper, side, rows + 1])
        lower = upper
    totals = {side: sum(r[2] for r in merged if r[1] == side) for side in (LEFT, RIGHT)}
    return [Run(upper, side, rows / totals[side]) for upper, side, rows in merged]


def _arrays(tree: _Tree, k: int, n_outputs: int) -> dict[str, np.ndarray]:
    values = np.zeros((len(tree.value), n_outputs))
    values[:, k] = tree.value
    return {
        "children_left": np.asarray(tree.left),
        "children_right": np.asarray(tree.right),
        "children_default": np.asarray(tree.default),
        "features": np.asarray(tree.feature),
        "thresholds": np.asarray(tree.threshold, np.float64),
        "values": values,
        "node_sample_weight": np.asarray(tree.weight, np.float64),
    }
