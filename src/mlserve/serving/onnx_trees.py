"""Tree converters for skl2onnx: decision trees, forests and HistGradientBoosting in float64.

Each model becomes one ``TreeEnsemble`` node (ai.onnx.ml 5: float64 thresholds,
leaf weights and output) testing ``x[feature] <= threshold`` as scikit-learn does,
and adding leaf weights per target in tree order, as scikit-learn accumulates.
A ``TreeEnsemble`` leaf holds one weight for one target, so classifier forests
(a vector of class fractions per leaf) output the leaf reached in each tree and
look the fractions up in a float64 table.

skl2onnx 1.20.0's converters are replaced because in double they emit
``TreeEnsembleRegressor`` / ``TreeEnsembleClassifier`` (ai.onnx.ml 1-3), whose
outputs are float32 (onnxruntime refuses the double output skl2onnx declares),
and because its HistGradientBoosting converter fails outright:
``add_tree_to_attribute_pairs_hist_gradient_boosting`` appends a Python ``False``
to the integer attribute ``nodes_missing_value_tracks_true`` for every leaf,
which protobuf's upb backend (protobuf 7.36 here) refuses ("Expected an int, got
a boolean"), so ``make_node`` raises ``ValueError: Unable to create node
'TreeEnsembleRegressor'``. With that one value cast to int the conversion works,
but only in float32 (errors of 3e-7 relative), for the reason above.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from onnx import TensorProto, numpy_helper

from mlserve.serving.onnx_converters import Graph, UnsupportedModel

_LEQ = 0  # TreeEnsemble nodes_modes BRANCH_LEQ: x[feature] <= threshold goes to the true branch
_MEMBER = 6  # BRANCH_MEMBER: x[feature] in the node's membership_values goes to the true branch
_SUM = 1  # TreeEnsemble aggregate_function SUM
# AVERAGE: the same sums, in the same order, each divided by the number of trees once at
# the end (onnxruntime's TreeAggregatorAverage), as ForestRegressor.predict divides.
_AVERAGE = 0


class Tree(NamedTuple):
    """One binary tree by node number.

    ``x[feature] <= threshold`` goes to ``left`` (-1 at leaves), else ``right``;
    NaN goes left where ``missing_left`` is 1. ``members``: per node, the category codes
    that go left at a categorical split (``None`` at numeric splits and leaves).
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    members: tuple[np.ndarray | None, ...] | None = None

    def leaves(self) -> np.ndarray:
        """Node numbers of the leaves, in the order :func:`_flatten` numbers them."""
        return np.flatnonzero(self.left == -1)


_LONE = Tree(np.array([-1]), np.array([-1]), np.array([0]), np.array([0.0]), np.array([0]))


def _sklearn_tree(tree: Any) -> Tree:
    """The :class:`Tree` of a fitted ``sklearn.tree._tree.Tree``."""
    missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count))
    return Tree(
        tree.children_left.astype(np.int64),
        tree.children_right.astype(np.int64),
        tree.feature.astype(np.int64),
        tree.threshold.astype(np.float64),
        np.asarray(missing).astype(np.int64),
    )


def _hist_tree(predictor: Any) -> Tree:
    """The :class:`Tree` of a HistGradientBoosting ``TreePredictor`` (``nodes`` records).

    A categorical split (native categorical features) keeps the codes of its left
    branch, read from the predictor's ``raw_left_cat_bitsets`` (256-bit sets: code ``c``
    is bit ``c % 32`` of word ``c // 32``), as ``_predictor.pyx`` tests them.
    """
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    members: tuple[np.ndarray | None, ...] | None = None
    if nodes["is_categorical"].any():
        bitsets = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32)
        codes = np.arange(256)
        members = tuple(
            np.flatnonzero((bitsets[n["bitset_idx"]][codes // 32] >> (codes % 32)) & 1).astype(
                np.float64
            )
            if n["is_categorical"] and not n["is_leaf"]
            else None
            for n in nodes
        )
    return Tree(
        np.where(leaf, -1, nodes["left"].astype(np.int64)),
        np.where(leaf, -1, nodes["right"].astype(np.int64)),
        nodes["feature_idx"].astype(np.int64),
        nodes["num_threshold"].astype(np.float64),
        nodes["missing_go_to_left"].astype(np.int64),
        members=members,
    )


def _modes(tree: Tree, inner: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``nodes_modes`` of the inner nodes and, for each membership node, its members
    followed by the NaN delimiter ``membership_values`` expects."""
    if tree.members is None:
        return np.full(len(inner), _LEQ, dtype=np.uint8), []
    sets = [tree.members[i] for i in inner]
    modes = np.array([_LEQ if m is None else _MEMBER for m in sets], dtype=np.uint8)
    return modes, [np.append(m, np.nan) for m in sets if m is not None]


def _ensemble(
    g: Graph,
    x: str,
    *,
    trees: list[Tree],
    targets: list[int],
    weights: np.ndarray,
    n_targets: int,
    average: bool = False,
    out: str | None = None,
) -> str:
    """One ``TreeEnsemble`` node: tree ``t`` adds its leaf's weight to target ``targets[t]``
    (then, with ``average``, the sums are divided by the number of trees).

    ``weights`` lists every leaf's weight, tree after tree, leaves in node order
    (:meth:`Tree.leaves`); a lone leaf becomes a node whose both branches reach it.
    Output (N, n_targets) float64, each target summed in tree order.
    """
    keys = ("feat", "split", "miss", "true", "tleaf", "false", "fleaf", "roots", "targets")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    modes: list[np.ndarray] = []
    members: list[np.ndarray] = []
    n_nodes = n_leaves = 0
    for tree, target in zip(trees, targets, strict=True):
        if tree.left[0] == -1:
            one, zero = np.array([1, -1]), np.zeros(2, dtype=np.int64)
            tree = Tree(one, one, zero, zero.astype(np.float64), zero)
        is_leaf = tree.left == -1
        leaf_no = n_leaves + np.cumsum(is_leaf) - 1
        node_no = n_nodes + np.cumsum(~is_leaf) - 1
        inner = np.flatnonzero(~is_leaf)
        parts["roots"].append(node_no[:1])
        parts["feat"].append(tree.feature[inner])
        parts["split"].append(tree.threshold[inner])
        parts["miss"].append(tree.missing_left[inner])
        tree_modes, tree_members = _modes(tree, inner)
        modes.append(tree_modes)
        members.extend(tree_members)
        for key, leaf_key, child in (("true", "tleaf", tree.left), ("false", "fleaf", tree.right)):
            to_leaf = is_leaf[child[inner]]
            parts[key].append(np.where(to_leaf, leaf_no[child[inner]], node_no[child[inner]]))
            parts[leaf_key].append(to_leaf.astype(np.int64))
        parts["targets"].append(np.full(int(is_leaf.sum()), target))
        n_nodes, n_leaves = n_nodes + len(inner), n_leaves + int(is_leaf.sum())
    a = {k: np.concatenate(v).tolist() for k, v in parts.items() if k != "split"}
    if members:  # the attribute may be omitted, not empty
        extra = {"membership_values": numpy_helper.from_array(np.concatenate(members))}
    else:
        extra = {}
    return g(
        "TreeEnsemble",
        x,
        ml=True,
        n_targets=n_targets,
        aggregate_function=_AVERAGE if average else _SUM,
        out=out,
        post_transform=0,
        tree_roots=a["roots"],
        nodes_featureids=a["feat"],
        nodes_splits=numpy_helper.from_array(np.concatenate(parts["split"])),
        nodes_modes=numpy_helper.from_array(np.concatenate(modes)),
        nodes_truenodeids=a["true"],
        nodes_trueleafs=a["tleaf"],
        nodes_falsenodeids=a["false"],
        nodes_falseleafs=a["fleaf"],
        nodes_missing_value_tracks_true=a["miss"],
        leaf_targetids=a["targets"],
        leaf_weights=numpy_helper.from_array(np.asarray(weights, dtype=np.float64)),
        **extra,
    )


def _features(g: Graph, operator: Any, f32: bool) -> str:
    """The features in float64; ``f32`` rounds them to float32 first, as ``BaseDecisionTree``
    validates ``X`` to float32 before comparing it with its float64 thresholds."""
    x = g.features(operator)
    return g("Cast", g("Cast", x, to=TensorProto.FLOAT), to=TensorProto.DOUBLE) if f32 else x


def _forest_trees(model: Any) -> tuple[list[Any], list[Tree]]:
    if getattr(model, "n_outputs_", 1) != 1:
        raise UnsupportedModel("multi-output trees are not supported")
    fitted = [e.tree_ for e in getattr(model, "estimators_", [model])]
    return fitted, [_sklearn_tree(t) for t in fitted]


def convert_forest_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``DecisionTreeRegressor`` / ``RandomForestRegressor`` / ``ExtraTreesRegressor.predict``.

    The leaf means summed in tree order, then divided by the number of trees, as
    ``ForestRegressor.predict`` accumulates (``aggregate_function`` AVERAGE).

    Raises
    ------
    UnsupportedModel
        For multi-output trees.
    """
    g = Graph(scope, container)
    fitted, trees = _forest_trees(operator.raw_operator)
    weights = np.concatenate(
        [t.value[tree.leaves(), 0, 0] for t, tree in zip(fitted, trees, strict=True)]
    )
    _ensemble(
        g,
        _features(g, operator, True),
        trees=trees,
        targets=[0] * len(trees),
        weights=weights,
        n_targets=1,
        average=True,
        out=operator.outputs[0].full_name,
    )


def convert_forest_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``DecisionTreeClassifier`` / ``RandomForestClassifier`` / ``ExtraTreesClassifier``.

    A ``TreeEnsemble`` gives the leaf reached in each tree, numbered across trees
    (output (N, n_trees)); a ``Gather`` in the table of leaf class fractions
    (normalized as ``DecisionTreeClassifier.predict_proba`` does) and a
    ``ReduceSum`` in tree order follow, then the division by the number of trees
    (``ForestClassifier.predict_proba``). ``TreeEnsemble`` alone cannot: a leaf
    holds one weight for one target. Labels ``classes_[argmax]`` as ``predict``.

    Raises
    ------
    UnsupportedModel
        For multi-output trees.
    """
    g = Graph(scope, container)
    fitted, trees = _forest_trees(operator.raw_operator)
    table = np.concatenate(
        [t.value[tree.leaves(), 0, :] for t, tree in zip(fitted, trees, strict=True)]
    )
    normalizer = table.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    numbers = np.arange(len(table), dtype=np.float64)
    x = _features(g, operator, True)
    numbered = _ensemble(
        g, x, trees=trees, targets=list(range(len(trees))), weights=numbers, n_targets=len(trees)
    )
    leaf = g("Cast", numbered, to=TensorProto.INT64)
    picked = g("Gather", g.const(table / normalizer, "leaf_fractions"), leaf, axis=0)
    total = g("ReduceSum", picked, g.const(np.array([1]), "axis"), keepdims=0)
    proba = g("Div", total, g.const(float(len(trees)), "n_trees"))
    g.classes(operator, proba, operator.raw_operator.classes_)


def _hist_raw(g: Graph, operator: Any) -> str:
    """Raw predictions (N, n_trees_per_iteration_) of a HistGradientBoosting model.

    ``_baseline_prediction`` plus the leaf values of every iteration's trees, tree
    ``k`` of an iteration adding to column ``k`` (``BaseHistGradientBoosting._raw_predict``).
    The baseline comes first as lone-leaf trees, so the additions happen in
    scikit-learn's order.
    """
    model = operator.raw_operator
    k = model.n_trees_per_iteration_
    trees, targets = [_LONE] * k, list(range(k))
    weights = [np.asarray(model._baseline_prediction, np.float64).reshape(-1)]
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            tree = _hist_tree(predictor)
            trees.append(tree)
            targets.append(target)
            weights.append(predictor.nodes["value"][tree.leaves()])
    return _ensemble(
        g,
        _hist_features(g, operator),
        trees=trees,
        targets=targets,
        weights=np.concatenate(weights),
        n_targets=k,
    )


def _hist_features(g: Graph, operator: Any) -> str:
    """The model's input in the order its trees index it.

    With categorical features HistGradientBoosting keeps a ``_preprocessor`` that moves
    them first and ordinal-encodes their values; mlserve's own ordinal codes are already
    ``0..k-1``, all seen in training, so that encoding is the identity and only the
    column order changes (a ``Gather``).

    Raises
    ------
    UnsupportedModel
        If the internal encoding is not the identity.
    """
    x, pre = g.features(operator), getattr(operator.raw_operator, "_preprocessor", None)
    if pre is None:
        return x
    order: list[int] = []
    for name, transformer, mask in pre.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "encoder":
            for known in transformer.categories_:
                if not np.array_equal(known, np.arange(len(known))):
                    raise UnsupportedModel(
                        "HistGradientBoosting categories other than codes 0..k-1"
                    )
        order.extend(np.flatnonzero(np.asarray(mask)).tolist())
    return g("Gather", x, g.const(np.array(order, dtype=np.int64), "order"), axis=1)


def convert_hist_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``HistGradientBoostingRegressor.predict``: inverse link of the raw prediction.

    Identity for squared error, absolute error and quantile losses; ``exp`` for
    the log link of the poisson and gamma losses.

    Raises
    ------
    UnsupportedModel
        For any other link (none in scikit-learn 1.9).
    """
    g, link = Graph(scope, container), type(operator.raw_operator._loss.link).__name__
    ops = {"IdentityLink": "Identity", "LogLink": "Exp"}
    if link not in ops:
        raise UnsupportedModel(f"HistGradientBoostingRegressor with a {link} link")
    g(ops[link], _hist_raw(g, operator), out=operator.outputs[0].full_name)


def convert_hist_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``HistGradientBoostingClassifier.predict_proba`` and ``predict``.

    Two classes: ``[1 - expit(raw), expit(raw)]`` (``HalfBinomialLoss.predict_proba``);
    more: ``softmax(raw)`` (``HalfMultinomialLoss``). Labels ``classes_[argmax]``.
    """
    g, model = Graph(scope, container), operator.raw_operator
    raw = _hist_raw(g, operator)
    if model.n_trees_per_iteration_ == 1:
        p1 = g("Sigmoid", raw)
        proba = g("Concat", g("Sub", g.const(1.0), p1), p1, axis=1)
    else:
        proba = g("Softmax", raw, axis=1)
    g.classes(operator, proba, model.classes_)
