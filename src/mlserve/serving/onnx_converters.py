"""skl2onnx converters mlserve substitutes for a double-precision ONNX graph.

They are passed to :func:`skl2onnx.convert_sklearn` per call
(``custom_conversion_functions``, ``custom_shape_calculators``,
``custom_parsers``, see :data:`CONVERTERS`, :data:`SHAPES`, :data:`PARSERS`), so
skl2onnx's process-wide registry is left as it is. Each reproduces the
arithmetic of the scikit-learn ``predict``/``predict_proba`` it replaces (the
source is named in each docstring), in float64 wherever scikit-learn computes
in float64.

Why skl2onnx 1.20.0's own converters are replaced:

* ``SimpleImputer``: its converter emits ``ai.onnx.ml.Imputer``, which
  onnxruntime implements for float32 only, and refuses ``missing_values=nan``
  on text columns.
* Trees and forests: in double it emits ``TreeEnsembleRegressor`` /
  ``TreeEnsembleClassifier`` (ai.onnx.ml 1), whose outputs are float32 and whose
  thresholds are stored as float32 attributes. Here ``TreeEnsemble``
  (ai.onnx.ml 5) keeps thresholds and leaf values in float64.
* ``HistGradientBoosting*``: the skl2onnx converter writes a Python ``False``
  into the integer attribute ``nodes_missing_value_tracks_true`` for every leaf;
  protobuf >= 5 (upb) refuses a bool in an int field, so conversion raises
  ``ValueError: Unable to create node 'TreeEnsembleRegressor'``.
* ``TransformedTargetRegressor`` has no skl2onnx converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from onnx import ModelProto, TensorProto, numpy_helper
from skl2onnx._parse import _parse_sklearn
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
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
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

ML_OPSET = 5  # ai.onnx.ml version of TreeEnsemble (float64 thresholds and leaves)
# skl2onnx 1.20 refuses to write an ai.onnx.ml opset above 3 ("not supported yet by this
# library"): the node is declared at 3 during conversion and :func:`finalize` raises the
# model's ai.onnx.ml import to 5 afterwards.
_DECLARED_ML_OPSET = 3
MISSING_TEXT = "\x00missing"  # a missing text value in a string tensor (see docs/serving.md)
_LEQ = 0  # TreeEnsemble nodes_modes: BRANCH_LEQ, the test of every scikit-learn tree



class Tree(NamedTuple):
    """One binary tree by node number: children (-1 at leaves), test ``x[feature] <= threshold``
    (true: ``left``), ``missing_left`` 1 where NaN goes left."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray


def _const(scope: Any, container: Any, value: np.ndarray, hint: str) -> str:
    """Add ``value`` as an initializer and return its name."""
    name = scope.get_unique_variable_name(hint)
    if value.dtype.kind in "OUS":
        flat = [str(v).encode() for v in value.ravel()]
        container.add_initializer(name, TensorProto.STRING, list(value.shape), flat)
    else:
        container.add_initializer(name, None, None, numpy_helper.from_array(value))
    return name


def _node(scope: Any, container: Any, op: str, inputs: list[str], **attrs: Any) -> str:
    """Add one standard-domain node with a fresh output; return the output name."""
    out = scope.get_unique_variable_name(op.lower())
    container.add_node(op, inputs, [out], name=scope.get_unique_operator_name(op), **attrs)
    return out


def _concat_inputs(scope: Any, container: Any, operator: Any) -> str:
    names = [v.full_name for v in operator.inputs]
    return names[0] if len(names) == 1 else _node(scope, container, "Concat", names, axis=1)


# --- SimpleImputer ----------------------------------------------------------------------------


def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """``SimpleImputer.transform`` as ``Where(missing, statistics_, X)``.

    Numeric inputs (float or double) are missing where ``IsNaN``; string inputs
    where equal to :data:`MISSING_TEXT` (scikit-learn's NaN in an object column,
    see :func:`mlserve.serving.onnx.feed_from_frame`) or to a string
    ``missing_values``. Columns whose statistic is NaN (no value seen in
    training) are dropped, as scikit-learn does with ``keep_empty_features=False``.

    Raises
    ------
    NotImplementedError
        ``add_indicator=True``, or ``missing_values`` other than NaN on numeric input.
    """
    imputer: SimpleImputer = operator.raw_operator
    if imputer.add_indicator:
        raise NotImplementedError("SimpleImputer(add_indicator=True) is not supported")
    x = _concat_inputs(scope, container, operator)
    stats = np.asarray(imputer.statistics_)
    text = isinstance(operator.inputs[0].type, StringTensorType)
    missing = imputer.missing_values
    missing_is_nan = missing is None or (isinstance(missing, float) and np.isnan(missing))
    if text:
        keep = np.array([not _is_nan(v) for v in stats])
        fill = np.array([str(v) for v in stats], dtype=object)
        token = MISSING_TEXT if missing_is_nan else str(missing)
        mask = _node(scope, container, "Equal", [x, _const(scope, container, np.array([token], dtype=object), "missing")])
    else:
        if not missing_is_nan:
            raise NotImplementedError(f"SimpleImputer(missing_values={missing!r}) on numbers")
        dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
        keep = ~np.isnan(stats.astype(np.float64))
        fill = stats.astype(dtype)
        mask = _node(scope, container, "IsNaN", [x])
    stats_name = _const(scope, container, fill.reshape(1, -1), "statistics")
    if keep.all():
        container.add_node(
            "Where", [mask, stats_name, x], [operator.outputs[0].full_name],
            name=scope.get_unique_operator_name("Where"),
        )  # fmt: skip
        return
    filled = _node(scope, container, "Where", [mask, stats_name, x])
    columns = _const(scope, container, np.flatnonzero(keep).astype(np.int64), "kept")
    container.add_node(
        "Gather", [filled, columns], [operator.outputs[0].full_name],
        axis=1, name=scope.get_unique_operator_name("Gather"),
    )  # fmt: skip


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def shape_imputer(operator: Any) -> None:
    """Output: same element type as the inputs, shape (N, kept columns)."""
    imputer: SimpleImputer = operator.raw_operator
    n_out = sum(not _is_nan(v) for v in np.asarray(imputer.statistics_).tolist())
    kind = type(operator.inputs[0].type)
    operator.outputs[0].type = kind([operator.inputs[0].get_first_dimension(), n_out])


# --- Tree ensembles ---------------------------------------------------------------------------


def _sklearn_tree(tree: Any) -> Tree:
    """:data:`Tree` arrays of a ``sklearn.tree._tree.Tree``."""
    missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8))
    return Tree(
        tree.children_left.astype(np.int64),
        tree.children_right.astype(np.int64),
        tree.feature.astype(np.int64),
        tree.threshold.astype(np.float64),
        np.asarray(missing).astype(np.int64),
    )


def _hist_tree(predictor: Any) -> Tree:
    """:data:`Tree` arrays of a HistGradientBoosting ``TreePredictor``.

    Raises
    ------
    NotImplementedError
        If the tree splits on a categorical feature (bitset membership).
    """
    nodes = predictor.nodes
    if nodes["is_categorical"].any():
        raise NotImplementedError("HistGradientBoosting categorical splits are not supported")
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        np.where(leaf, -1, nodes["left"].astype(np.int64)),
        np.where(leaf, -1, nodes["right"].astype(np.int64)),
        nodes["feature_idx"].astype(np.int64),
        nodes["num_threshold"].astype(np.float64),
        nodes["missing_go_to_left"].astype(np.int64),
    )


def _flatten(trees: list[Tree]) -> dict[str, Any]:
    """``TreeEnsemble`` attributes of ``trees``: tree ``t``'s ``j``-th leaf (node order)
    outputs its global number ``sum(leaves of trees < t) + j`` to target ``t``."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "feat", "split", "miss", "true", "tleaf", "false", "fleaf", "roots", "targets")}  # fmt: skip
    n_nodes = n_leaves = 0
    for t, tree in enumerate(trees):
        if tree.left[0] == -1:  # a lone leaf becomes a node whose both branches reach it
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
        for key, leaf_key, child in (("true", "tleaf", tree.left), ("false", "fleaf", tree.right)):
            child_is_leaf = is_leaf[child[inner]]
            parts[key].append(np.where(child_is_leaf, leaf_no[child[inner]], node_no[child[inner]]))
            parts[leaf_key].append(child_is_leaf.astype(np.int64))
        parts["targets"].append(np.full(int(is_leaf.sum()), t))
        n_nodes += len(inner)
        n_leaves += int(is_leaf.sum())
    a = {k: np.concatenate(v) for k, v in parts.items()}
    return dict(
        n_targets=len(trees), aggregate_function=1, post_transform=0,
        tree_roots=a["roots"].tolist(), nodes_featureids=a["feat"].tolist(),
        nodes_splits=numpy_helper.from_array(a["split"].astype(np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(n_nodes, _LEQ, dtype=np.uint8)),
        nodes_truenodeids=a["true"].tolist(), nodes_trueleafs=a["tleaf"].tolist(),
        nodes_falsenodeids=a["false"].tolist(), nodes_falseleafs=a["fleaf"].tolist(),
        nodes_missing_value_tracks_true=a["miss"].tolist(),
        leaf_targetids=a["targets"].tolist(),
        leaf_weights=numpy_helper.from_array(np.arange(n_leaves, dtype=np.float64)),
    )  # fmt: skip


def _leaves(tree: Tree) -> np.ndarray:
    """Node numbers of the leaves of ``tree``, in the order :func:`_flatten` numbers them."""
    return np.flatnonzero(tree.left == -1)


def _tree_sum(
    scope: Any, container: Any, operator: Any, trees: list[Tree], table: np.ndarray, f32: bool
) -> str:
    """Sum over trees of ``table[leaf reached]``: shape (N, table.shape[1]), float64.

    ``f32`` rounds the features to float32 first, as scikit-learn's
    ``BaseDecisionTree`` validates ``X`` to ``float32`` before comparing it with
    its float64 thresholds.
    """
    x = _concat_inputs(scope, container, operator)
    if f32 or not isinstance(operator.inputs[0].type, DoubleTensorType):
        x = _node(scope, container, "Cast", [x], to=TensorProto.FLOAT)
        x = _node(scope, container, "Cast", [x], to=TensorProto.DOUBLE)
    leaves = scope.get_unique_variable_name("leaf_index")
    container.add_node(
        "TreeEnsemble", [x], [leaves], op_domain="ai.onnx.ml", op_version=_DECLARED_ML_OPSET,
        name=scope.get_unique_operator_name("TreeEnsemble"), **_flatten(trees),
    )  # fmt: skip
    index = _node(scope, container, "Cast", [leaves], to=TensorProto.INT64)
    values = _const(scope, container, np.ascontiguousarray(table, dtype=np.float64), "leaf_values")
    picked = _node(scope, container, "Gather", [values, index], axis=0)  # (N, n_trees, K)
    axes = _const(scope, container, np.array([1], dtype=np.int64), "axes")
    return _node(scope, container, "ReduceSum", [picked, axes], keepdims=0)


def _emit_classes(scope: Any, container: Any, operator: Any, proba: str, classes: Any) -> None:
    """Write probabilities (N, K) float64 and ``classes[argmax(proba)]`` labels."""
    container.add_node(
        "Identity", [proba], [operator.outputs[1].full_name],
        name=scope.get_unique_operator_name("Identity"),
    )  # fmt: skip
    best = _node(scope, container, "ArgMax", [proba], axis=1, keepdims=0)
    labels = np.asarray(classes)
    if labels.dtype.kind in "iub":
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "OUS":
        raise NotImplementedError(f"class labels of dtype {labels.dtype} are not supported")
    container.add_node(
        "Gather", [_const(scope, container, labels, "classes"), best],
        [operator.outputs[0].full_name], axis=0, name=scope.get_unique_operator_name("Gather"),
    )  # fmt: skip


def _normalized(value: np.ndarray) -> np.ndarray:
    """Per-leaf class fractions as ``DecisionTreeClassifier.predict_proba`` normalizes them."""
    normalizer = value.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    return value / normalizer


def _forest_parts(model: Any) -> tuple[list[Any], int]:
    estimators = getattr(model, "estimators_", [model])
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotImplementedError("multi-output trees are not supported")
    return [e.tree_ for e in estimators], len(estimators)


def convert_forest_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``DecisionTreeRegressor`` / ``RandomForestRegressor`` / ``ExtraTreesRegressor``.

    Sum of leaf values over trees, divided by the number of trees (``ForestRegressor.predict``).
    """
    trees, n = _forest_parts(operator.raw_operator)
    arrays = [_sklearn_tree(t) for t in trees]
    table = np.concatenate([t.value[_leaves(a), 0, :1] for t, a in zip(trees, arrays, strict=True)])
    total = _tree_sum(scope, container, operator, arrays, table, True)
    count = _const(scope, container, np.array([float(n)]), "n_trees")
    container.add_node(
        "Div", [total, count], [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Div"),
    )  # fmt: skip


def convert_forest_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``DecisionTreeClassifier`` / ``RandomForestClassifier`` / ``ExtraTreesClassifier``.

    Mean over trees of each tree's normalized leaf fractions
    (``ForestClassifier.predict_proba``), labels ``classes_[argmax]``.
    """
    model = operator.raw_operator
    trees, n = _forest_parts(model)
    arrays = [_sklearn_tree(t) for t in trees]
    table = np.concatenate(
        [_normalized(t.value[_leaves(a), 0, :]) for t, a in zip(trees, arrays, strict=True)]
    )
    total = _tree_sum(scope, container, operator, arrays, table, True)
    count = _const(scope, container, np.array([float(n)]), "n_trees")
    proba = _node(scope, container, "Div", [total, count])
    _emit_classes(scope, container, operator, proba, model.classes_)


def _hist_raw(scope: Any, container: Any, operator: Any) -> str:
    """Raw predictions (N, n_trees_per_iteration_) of a HistGradientBoosting model.

    ``_baseline_prediction`` plus the sum of the leaf values of every iteration's
    trees (``BaseHistGradientBoosting._raw_predict``). The baseline is a
    one-leaf tree placed first, so the additions happen in scikit-learn's order.
    """
    model = operator.raw_operator
    k = model.n_trees_per_iteration_
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    lone = np.array([-1])
    trees = [Tree(lone, lone, np.array([0]), np.array([0.0]), np.array([0]))]
    rows = [baseline.reshape(1, k)]
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            arrays = _hist_tree(predictor)
            trees.append(arrays)
            values = np.zeros((len(_leaves(arrays)), k))
            values[:, target] = predictor.nodes["value"][_leaves(arrays)]
            rows.append(values)
    return _tree_sum(scope, container, operator, trees, np.concatenate(rows), False)


def convert_hist_regressor(scope: Any, operator: Any, container: Any) -> None:
    """``HistGradientBoostingRegressor.predict``: the loss link's inverse of the raw prediction.

    Raises
    ------
    NotImplementedError
        For a loss whose link is neither identity nor log.
    """
    link = type(operator.raw_operator._loss.link).__name__
    ops = {"IdentityLink": "Identity", "LogLink": "Exp"}
    if link not in ops:
        raise NotImplementedError(f"HistGradientBoostingRegressor with a {link} link")
    raw = _hist_raw(scope, container, operator)
    container.add_node(
        ops[link], [raw], [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name(ops[link]),
    )  # fmt: skip


def convert_hist_classifier(scope: Any, operator: Any, container: Any) -> None:
    """``HistGradientBoostingClassifier.predict_proba``: sigmoid (binary) or softmax.

    Binary: ``[1 - expit(raw), expit(raw)]`` (``HalfBinomialLoss.predict_proba``);
    multiclass: ``softmax(raw)`` (``HalfMultinomialLoss``). Labels ``classes_[argmax]``.
    """
    model = operator.raw_operator
    raw = _hist_raw(scope, container, operator)
    if model.n_trees_per_iteration_ == 1:
        p1 = _node(scope, container, "Sigmoid", [raw])
        one = _const(scope, container, np.array([1.0]), "one")
        p0 = _node(scope, container, "Sub", [one, p1])
        proba = _node(scope, container, "Concat", [p0, p1], axis=1)
    else:
        proba = _node(scope, container, "Softmax", [raw], axis=1)
    _emit_classes(scope, container, operator, proba, model.classes_)


def shape_regressor(operator: Any) -> None:
    """Output (N, 1), float64 (the graph computes in double whatever the input)."""
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), 1])


def shape_classifier(operator: Any) -> None:
    """Labels (N,) int64 or string, probabilities (N, K) float64."""
    calculate_linear_classifier_output_shapes(operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[1].type = DoubleTensorType([n, len(operator.raw_operator.classes_)])
    kind = np.asarray(operator.raw_operator.classes_).dtype.kind
    operator.outputs[0].type = (Int64TensorType if kind in "iub" else StringTensorType)([n])


# --- Support vector machines ------------------------------------------------------------------


def _svm_kernel(scope: Any, container: Any, operator: Any, model: Any) -> str:
    """Kernel matrix (N, n_SV) float64 between the rows and ``support_vectors_``.

    libsvm's ``Kernel::k_function``: linear ``x.s``, poly ``(gamma x.s + coef0)^degree``,
    rbf ``exp(-gamma |x - s|^2)`` (``|x|^2 + |s|^2 - 2 x.s``, floored at 0), sigmoid
    ``tanh(gamma x.s + coef0)``; ``gamma`` is the fitted ``_gamma``.

    Raises
    ------
    NotImplementedError
        For a precomputed or callable kernel.
    """
    kernel = model.kernel
    if kernel not in ("linear", "poly", "rbf", "sigmoid"):
        raise NotImplementedError(f"SVM kernel {kernel!r} is not supported")
    x = _as_double(scope, container, operator)
    sv = np.asarray(model.support_vectors_, dtype=np.float64)
    dot = _node(scope, container, "MatMul", [x, _const(scope, container, sv.T.copy(), "sv_t")])
    gamma = _const(scope, container, np.array([float(model._gamma)]), "gamma")
    if kernel == "linear":
        return dot
    if kernel == "rbf":
        x2 = _node(scope, container, "Mul", [x, x])
        axes = _const(scope, container, np.array([1], dtype=np.int64), "axes")
        x2 = _node(scope, container, "ReduceSum", [x2, axes], keepdims=1)
        s2 = _const(scope, container, (sv * sv).sum(axis=1).reshape(1, -1), "sv_sq")
        two = _const(scope, container, np.array([2.0]), "two")
        d2 = _node(scope, container, "Sub", [_node(scope, container, "Add", [x2, s2]),
                                             _node(scope, container, "Mul", [dot, two])])  # fmt: skip
        d2 = _node(scope, container, "Max", [d2, _const(scope, container, np.array([0.0]), "zero")])
        scaled = _node(scope, container, "Mul", [d2, gamma])
        return _node(scope, container, "Exp", [_node(scope, container, "Neg", [scaled])])
    coef0 = _const(scope, container, np.array([float(model.coef0)]), "coef0")
    inner = _node(scope, container, "Add", [_node(scope, container, "Mul", [dot, gamma]), coef0])
    if kernel == "sigmoid":
        return _node(scope, container, "Tanh", [inner])
    degree = _const(scope, container, np.array([float(model.degree)]), "degree")
    return _node(scope, container, "Pow", [inner, degree])


def _as_double(scope: Any, container: Any, operator: Any) -> str:
    x = _concat_inputs(scope, container, operator)
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return x
    return _node(scope, container, "Cast", [x], to=TensorProto.DOUBLE)


def convert_svr(scope: Any, operator: Any, container: Any) -> None:
    """``SVR.predict``: ``K @ dual_coef_.T + intercept_`` (libsvm ``svm_predict_values``)."""
    model = operator.raw_operator
    kernel = _svm_kernel(scope, container, operator, model)
    weights = _const(scope, container, np.asarray(model._dual_coef_, np.float64).T.copy(), "dual")
    bias = _const(scope, container, np.asarray(model._intercept_, np.float64), "intercept")
    container.add_node(
        "Add", [_node(scope, container, "MatMul", [kernel, weights]), bias],
        [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Add"),
    )  # fmt: skip


def _svc_decision(scope: Any, container: Any, operator: Any, model: Any) -> str:
    """``SVC.decision_function`` (N, 1) binary or (N, K) with ``decision_function_shape='ovr'``.

    One-vs-one values as libsvm's ``svm_predict_values`` (pair ``(i, j)``: the
    support vectors of class ``i`` weighted by ``dual_coef_[j - 1]``, those of
    ``j`` by ``dual_coef_[i]``, plus ``intercept_``), negated for two classes
    (``BaseLibSVM._decision_function``), then ``sklearn.utils.multiclass._ovr_decision_function``.
    """
    if model.decision_function_shape != "ovr":
        raise NotImplementedError("SVC(decision_function_shape='ovo') is not supported")
    dual = np.asarray(model._dual_coef_, np.float64)
    k = len(model.classes_)
    starts = np.concatenate([[0], np.cumsum(model._n_support)])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    weights = np.zeros((dual.shape[1], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        weights[starts[i] : starts[i + 1], p] = dual[j - 1, starts[i] : starts[i + 1]]
        weights[starts[j] : starts[j + 1], p] = dual[i, starts[j] : starts[j + 1]]
    kernel = _svm_kernel(scope, container, operator, model)
    dec = _node(scope, container, "MatMul", [kernel, _const(scope, container, weights, "ovo_w")])
    intercept = np.asarray(model._intercept_, np.float64)
    dec = _node(scope, container, "Add", [dec, _const(scope, container, intercept, "intercept")])
    if k == 2:
        return _node(scope, container, "Neg", [dec])
    first, second = np.zeros((len(pairs), k)), np.zeros((len(pairs), k))
    for p, (i, j) in enumerate(pairs):
        first[p, i], second[p, j] = 1.0, 1.0
    sums = _node(scope, container, "MatMul", [dec, _const(scope, container, first - second, "pm")])
    zero = _const(scope, container, np.array([0.0]), "zero")
    to_j = _node(scope, container, "Cast", [_node(scope, container, "Less", [dec, zero])],
                 to=TensorProto.DOUBLE)  # fmt: skip
    to_i = _node(scope, container, "Sub", [_const(scope, container, np.array([1.0]), "one"), to_j])
    votes = _node(scope, container, "Add", [
        _node(scope, container, "MatMul", [to_i, _const(scope, container, first, "vote_i")]),
        _node(scope, container, "MatMul", [to_j, _const(scope, container, second, "vote_j")]),
    ])  # fmt: skip
    three = _const(scope, container, np.array([3.0]), "three")
    one = _const(scope, container, np.array([1.0]), "one")
    denominator = _node(scope, container, "Mul", [
        _node(scope, container, "Add", [_node(scope, container, "Abs", [sums]), one]), three,
    ])  # fmt: skip
    return _node(scope, container, "Add", [votes, _node(scope, container, "Div", [sums, denominator])])


def convert_calibrated(scope: Any, operator: Any, container: Any) -> None:
    """``CalibratedClassifierCV.predict_proba`` over SVC with sigmoid calibration.

    Per calibrated classifier (``_CalibratedClassifier.predict_proba``): class
    ``k``'s probability ``expit(-(a_k d_k + b_k))`` of its decision column ``d_k``;
    two classes: ``[1 - p, p]`` from the single column; more: divided by the row
    sum (uniform where it is 0). Mean over calibrated classifiers; labels
    ``classes_[argmax]``.

    Raises
    ------
    NotImplementedError
        For another base estimator than SVC, or another method than sigmoid.
    """
    model = operator.raw_operator
    classes = np.asarray(model.classes_)
    total = None
    for calibrated in model.calibrated_classifiers_:
        base = calibrated.estimator
        if calibrated.method != "sigmoid" or type(base).__name__ != "SVC":
            raise NotImplementedError(
                f"calibration {calibrated.method!r} of {type(base).__name__} is not supported"
            )
        if not np.array_equal(np.asarray(base.classes_), classes):
            raise NotImplementedError("calibrated estimator saw a subset of the classes")
        dec = _svc_decision(scope, container, operator, base)
        a = np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64).reshape(1, -1)
        b = np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64).reshape(1, -1)
        z = _node(scope, container, "Mul", [dec, _const(scope, container, a, "a")])
        z = _node(scope, container, "Add", [z, _const(scope, container, b, "b")])
        p = _node(scope, container, "Sigmoid", [_node(scope, container, "Neg", [z])])
        one = _const(scope, container, np.array([1.0]), "one")
        if len(classes) == 2:
            p = _node(scope, container, "Concat", [_node(scope, container, "Sub", [one, p]), p], axis=1)
        else:
            axes = _const(scope, container, np.array([1], dtype=np.int64), "axes")
            den = _node(scope, container, "ReduceSum", [p, axes], keepdims=1)
            zero = _node(scope, container, "Equal", [den, _const(scope, container, np.array([0.0]), "zero")])
            uniform = _const(scope, container, np.array([1.0 / len(classes)]), "uniform")
            p = _node(scope, container, "Where", [zero, uniform, _node(scope, container, "Div", [p, den])])
        total = p if total is None else _node(scope, container, "Add", [total, p])
    count = _const(scope, container, np.array([float(len(model.calibrated_classifiers_))]), "n")
    proba = _node(scope, container, "Div", [total, count])
    _emit_classes(scope, container, operator, proba, classes)


# --- TransformedTargetRegressor ---------------------------------------------------------------

_TARGET_ALIAS = "MlserveTransformedTargetRegressor"


def parse_transformed_target(
    scope: Any, model: TransformedTargetRegressor, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    """Parse ``regressor_`` as usual, then one operator mapping its output back to target units."""
    inner = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)
    operator = scope.declare_local_operator(_TARGET_ALIAS, model)
    operator.inputs = list(inner)
    operator.outputs.append(scope.declare_local_variable("variable", DoubleTensorType()))
    return list(operator.outputs)


def convert_transformed_target(scope: Any, operator: Any, container: Any) -> None:
    """``StandardScaler.inverse_transform`` of the inner prediction: ``y * scale_ + mean_``.

    Source: ``TransformedTargetRegressor.predict`` then ``StandardScaler.inverse_transform``
    (``X *= scale_``; ``X += mean_``), each applied only when ``with_std`` / ``with_mean``.

    Raises
    ------
    NotImplementedError
        If ``transformer_`` is not a ``StandardScaler`` (``func``/``inverse_func`` included).
    """
    scaler = operator.raw_operator.transformer_
    if type(scaler) is not StandardScaler:
        raise NotImplementedError(f"target transformer {type(scaler).__name__} is not supported")
    y = operator.inputs[0].full_name
    if isinstance(operator.inputs[0].type, FloatTensorType):
        y = _node(scope, container, "Cast", [y], to=TensorProto.DOUBLE)
    if scaler.with_std:
        scale = _const(scope, container, np.asarray(scaler.scale_, dtype=np.float64), "scale")
        y = _node(scope, container, "Mul", [y, scale])
    if scaler.with_mean:
        mean = _const(scope, container, np.asarray(scaler.mean_, dtype=np.float64), "mean")
        y = _node(scope, container, "Add", [y, mean])
    container.add_node(
        "Identity", [y], [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Identity"),
    )  # fmt: skip


def finalize(model: ModelProto) -> None:
    """Import ai.onnx.ml at :data:`ML_OPSET` when the graph holds a ``TreeEnsemble`` node."""
    if any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in model.graph.node):
        for entry in model.opset_import:
            if entry.domain == "ai.onnx.ml":
                entry.version = max(entry.version, ML_OPSET)


_Fn = Callable[..., Any]
CONVERTERS: dict[type, _Fn] = {
    SimpleImputer: convert_imputer,
    DecisionTreeRegressor: convert_forest_regressor,
    RandomForestRegressor: convert_forest_regressor,
    ExtraTreesRegressor: convert_forest_regressor,
    DecisionTreeClassifier: convert_forest_classifier,
    RandomForestClassifier: convert_forest_classifier,
    ExtraTreesClassifier: convert_forest_classifier,
    HistGradientBoostingRegressor: convert_hist_regressor,
    HistGradientBoostingClassifier: convert_hist_classifier,
    TransformedTargetRegressor: convert_transformed_target,
    SVR: convert_svr,
    CalibratedClassifierCV: convert_calibrated,
}
SHAPES: dict[type, _Fn] = {
    SimpleImputer: shape_imputer,
    TransformedTargetRegressor: shape_regressor,
    SVR: shape_regressor,
    CalibratedClassifierCV: shape_classifier,
    **{t: shape_regressor for t in (DecisionTreeRegressor, RandomForestRegressor,
                                    ExtraTreesRegressor, HistGradientBoostingRegressor)},
    **{t: shape_classifier for t in (DecisionTreeClassifier, RandomForestClassifier,
                                     ExtraTreesClassifier, HistGradientBoostingClassifier)},
}  # fmt: skip
PARSERS: dict[type, _Fn] = {TransformedTargetRegressor: parse_transformed_target}
