"""skl2onnx converters mlserve substitutes to get a float64 ONNX graph (trees: ``onnx_trees``).

They are handed to :func:`skl2onnx.convert_sklearn` per call (see
``mlserve.serving.onnx._CUSTOM``), so skl2onnx's process-wide registry is left
alone. Each reproduces the arithmetic of the scikit-learn method it replaces,
named in its docstring, in float64. skl2onnx 1.20.0's own converters are
replaced because:

* ``SimpleImputer``: it emits ``ai.onnx.ml.Imputer``, which onnxruntime only
  implements for float32, and it refuses ``missing_values=nan`` on text.
* ``SVR`` and ``SVC`` (inside ``CalibratedClassifierCV``): ``ai.onnx.ml.SVMRegressor``
  / ``SVMClassifier`` have float32 outputs and no float64 kernel in onnxruntime.
* ``TransformedTargetRegressor`` has no converter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, numpy_helper
from skl2onnx import get_model_alias
from skl2onnx._parse import _parse_sklearn
from skl2onnx.common.data_types import (
    DoubleTensorType,
    Int64TensorType,
    StringTensorType,
)
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from mlserve.serving.onnx_model import MISSING_TEXT


class UnsupportedModel(ValueError):
    """A fitted model in a form mlserve's converters do not translate (the version is
    then served by scikit-learn, with this message as the recorded reason)."""


ML_OPSET = 5  # ai.onnx.ml version of TreeEnsemble (float64 thresholds and leaf values)
# skl2onnx 1.20 refuses to write an ai.onnx.ml import above 3 ("not supported yet by this
# library"): nodes of opset 5 are declared as 3 and :func:`finalize` fixes the import.
DECLARED_ML_OPSET = 3


class Graph:
    """Node and constant factory over a skl2onnx ``scope`` and ``container``."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def const(self, value: Any, hint: str = "const") -> str:
        """Add ``value`` (array or float, float -> float64 shape (1,)) as an initializer."""
        array = np.asarray([value] if np.isscalar(value) else value)
        name = self.scope.get_unique_variable_name(hint)
        if array.dtype.kind in "OUS":
            flat = [str(v).encode() for v in array.ravel()]
            self.container.add_initializer(name, TensorProto.STRING, list(array.shape), flat)
        else:
            if array.dtype.kind == "f":
                array = array.astype(np.float64)
            self.container.add_initializer(name, None, None, numpy_helper.from_array(array))
        return name

    def __call__(
        self, op: str, *inputs: str, out: str | None = None, ml: bool = False, **attrs: Any
    ) -> str:
        """Add node ``op`` (ai.onnx.ml when ``ml``); return its output, ``out`` or a new name."""
        out = out or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op,
            list(inputs),
            [out],
            name=self.scope.get_unique_operator_name(op),
            op_domain="ai.onnx.ml" if ml else "",
            op_version=DECLARED_ML_OPSET if ml else None,
            **attrs,
        )
        return out

    def features(self, operator: Any) -> str:
        """The operator's inputs as one (N, F) tensor: strings as they are, numbers float64."""
        names = [v.full_name for v in operator.inputs]
        x = names[0] if len(names) == 1 else self("Concat", *names, axis=1)
        kept = isinstance(operator.inputs[0].type, DoubleTensorType | StringTensorType)
        return x if kept else self("Cast", x, to=TensorProto.DOUBLE)

    def classes(self, operator: Any, proba: str, classes: Any) -> None:
        """Outputs: labels ``classes[argmax(proba)]`` (first maximum, as numpy) and ``proba``."""
        self("Identity", proba, out=operator.outputs[1].full_name)
        best = self("ArgMax", proba, axis=1, keepdims=0)
        self(
            "Gather",
            self.const(labels(classes), "classes"),
            best,
            out=operator.outputs[0].full_name,
            axis=0,
        )


def labels(classes: Any) -> np.ndarray:
    """Class labels as a graph outputs them: int64 (integers, booleans, whole floats) or str.

    Raises
    ------
    UnsupportedModel
        For other labels (the choice skl2onnx makes for its own classifiers).
    """
    array = np.asarray(classes)
    if array.dtype.kind in "OUS":
        return np.array([str(c) for c in array], dtype=object)
    if array.dtype.kind in "iub" or (array.dtype.kind == "f" and np.all(array % 1 == 0)):
        return array.astype(np.int64)
    raise UnsupportedModel(f"class labels of dtype {array.dtype} are not supported")


def shape_regressor(operator: Any) -> None:
    """Output (N, 1) float64, whatever the input type."""
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), 1])


def shape_classifier(operator: Any) -> None:
    """Labels (N,) int64 or string (see :func:`labels`), probabilities (N, K) float64."""
    calculate_linear_classifier_output_shapes(operator)
    n, classes = operator.inputs[0].get_first_dimension(), operator.raw_operator.classes_
    operator.outputs[1].type = DoubleTensorType([n, len(classes)])
    text = labels(classes).dtype.kind == "O"
    operator.outputs[0].type = (StringTensorType if text else Int64TensorType)([n])


def finalize(model: ModelProto) -> None:
    """Import ai.onnx.ml at :data:`ML_OPSET` when the graph holds a ``TreeEnsemble`` node
    or a ``LabelEncoder`` with tensor values (both newer than what skl2onnx declares)."""
    if any(_needs_ml_opset(n) for n in model.graph.node):
        for entry in model.opset_import:
            if entry.domain == "ai.onnx.ml":
                entry.version = max(entry.version, ML_OPSET)


def _needs_ml_opset(node: Any) -> bool:
    if node.domain != "ai.onnx.ml":
        return False
    return node.op_type == "TreeEnsemble" or any(a.name == "values_tensor" for a in node.attribute)


# --- SimpleImputer ----------------------------------------------------------------------------


def _kept(imputer: SimpleImputer) -> np.ndarray:
    """Indices of the columns ``transform`` keeps: those with a statistic (not NaN)."""
    stats = np.asarray(imputer.statistics_).tolist()
    return np.array([i for i, v in enumerate(stats) if not (isinstance(v, float) and v != v)])


def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """``SimpleImputer.transform`` as ``Where(missing, statistics_, X)``.

    Numbers are missing where ``IsNaN``; text where equal to :data:`MISSING_TEXT`
    (how :func:`mlserve.serving.onnx.feed_from_frame` sends scikit-learn's NaN) or
    to a string ``missing_values``. Columns without a statistic (nothing seen in
    training) are dropped, as ``keep_empty_features=False`` does.

    Raises
    ------
    UnsupportedModel
        ``add_indicator=True``, or ``missing_values`` other than NaN on numbers.
    """
    g, imputer = Graph(scope, container), operator.raw_operator
    if imputer.add_indicator:
        raise UnsupportedModel("SimpleImputer(add_indicator=True) is not supported")
    missing = imputer.missing_values
    nan = missing is None or (isinstance(missing, float) and np.isnan(missing))
    x = g.features(operator)
    if isinstance(operator.inputs[0].type, StringTensorType):
        token = MISSING_TEXT if nan else str(missing)
        mask = g("Equal", x, g.const(np.array([token], dtype=object), "missing"))
        fill = np.array([str(v) for v in imputer.statistics_], dtype=object)
    elif nan:
        mask, fill = g("IsNaN", x), np.asarray(imputer.statistics_, dtype=np.float64)
    else:
        raise UnsupportedModel(f"SimpleImputer(missing_values={missing!r}) on numbers")
    kept, out = _kept(imputer), operator.outputs[0].full_name
    filled = g(
        "Where",
        mask,
        g.const(fill.reshape(1, -1), "statistics"),
        x,
        out=out if len(kept) == len(fill) else None,
    )
    if len(kept) < len(fill):
        g("Gather", filled, g.const(kept.astype(np.int64), "kept"), out=out, axis=1)


def shape_imputer(operator: Any) -> None:
    """Output: the inputs' element type (float64 for numbers), shape (N, kept columns)."""
    text = isinstance(operator.inputs[0].type, StringTensorType)
    kind = StringTensorType if text else DoubleTensorType
    n_out = len(_kept(operator.raw_operator))
    operator.outputs[0].type = kind([operator.inputs[0].get_first_dimension(), n_out])


# --- TransformedTargetRegressor ---------------------------------------------------------------


def parse_classifier(
    scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    """A classifier that mlserve's own converters write (tree ensembles), parsed with the
    outputs ``label`` and ``probabilities`` and no ``ZipMap``: what skl2onnx's parser
    gives with the option ``zipmap=False``, without passing options. Passing any makes
    skl2onnx walk every sub-estimator of the pipeline for option names, twice (0.1 s each
    for a 100-tree forest: it computes every tree's ``feature_importances_`` on the way).
    """
    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = list(inputs)
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    operator.outputs.append(scope.declare_local_variable("probabilities", DoubleTensorType()))
    return list(operator.outputs)


def parse_transformed_target(
    scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None
) -> list[Any]:
    """Parse ``regressor_`` as usual, then one operator mapping its output back to target units."""
    inner = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)
    operator = scope.declare_local_operator("MlserveTransformedTargetRegressor", model)
    operator.inputs = list(inner)
    operator.outputs.append(scope.declare_local_variable("variable", DoubleTensorType()))
    return list(operator.outputs)


def convert_transformed_target(scope: Any, operator: Any, container: Any) -> None:
    """``StandardScaler.inverse_transform`` of the inner prediction: ``y * scale_ + mean_``.

    Source: ``TransformedTargetRegressor.predict`` applies ``transformer_.inverse_transform``,
    which for ``StandardScaler`` is ``X *= scale_`` (if ``with_std``) then ``X += mean_``
    (if ``with_mean``).

    Raises
    ------
    UnsupportedModel
        If ``transformer_`` is not a ``StandardScaler`` (``func``/``inverse_func`` included).
    """
    g, scaler = Graph(scope, container), operator.raw_operator.transformer_
    if type(scaler) is not StandardScaler:
        raise UnsupportedModel(f"target transformer {type(scaler).__name__} is not supported")
    y = g.features(operator)
    if scaler.with_std:
        y = g("Mul", y, g.const(scaler.scale_, "scale"))
    if scaler.with_mean:
        y = g("Add", y, g.const(scaler.mean_, "mean"))
    g("Identity", y, out=operator.outputs[0].full_name)


# --- Support vector machines ------------------------------------------------------------------


def _kernel(g: Graph, operator: Any, model: Any) -> str:
    """Kernel values (N, n_SV) float64 between the rows and ``support_vectors_``.

    libsvm's ``Kernel::k_function``: linear ``x.s``; poly ``(gamma x.s + coef0)^degree``;
    rbf ``exp(-gamma |x - s|^2)``, with ``|x - s|^2 = |x|^2 + |s|^2 - 2 x.s`` floored at 0;
    sigmoid ``tanh(gamma x.s + coef0)``. ``gamma`` is the fitted ``_gamma``.

    Raises
    ------
    UnsupportedModel
        For a precomputed or callable kernel.
    """
    if model.kernel not in ("linear", "poly", "rbf", "sigmoid"):
        raise UnsupportedModel(f"SVM kernel {model.kernel!r} is not supported")
    x, sv = g.features(operator), np.asarray(model.support_vectors_, dtype=np.float64)
    dot = g("MatMul", x, g.const(sv.T.copy(), "support_t"))
    gamma = g.const(float(model._gamma), "gamma")
    if model.kernel == "linear":
        return dot
    if model.kernel == "rbf":
        x2 = g("ReduceSum", g("Mul", x, x), g.const(np.array([1]), "axis"), keepdims=1)
        s2 = g.const((sv * sv).sum(axis=1).reshape(1, -1), "support_sq")
        d2 = g("Sub", g("Add", x2, s2), g("Mul", dot, g.const(2.0)))
        d2 = g("Max", d2, g.const(0.0))
        return g("Exp", g("Neg", g("Mul", d2, gamma)))
    inner = g("Add", g("Mul", dot, gamma), g.const(float(model.coef0), "coef0"))
    if model.kernel == "sigmoid":
        return g("Tanh", inner)
    return g("Pow", inner, g.const(float(model.degree), "degree"))


def convert_svr(scope: Any, operator: Any, container: Any) -> None:
    """``SVR.predict``: ``K @ dual_coef_.T + intercept_`` (libsvm ``svm_predict_values``)."""
    g, model = Graph(scope, container), operator.raw_operator
    weights = g.const(np.asarray(model._dual_coef_).T.copy(), "dual")
    g(
        "Add",
        g("MatMul", _kernel(g, operator, model), weights),
        g.const(model._intercept_, "intercept"),
        out=operator.outputs[0].full_name,
    )


def _svc_decision(g: Graph, operator: Any, model: Any) -> str:
    """``SVC.decision_function``: (N, 1) for two classes, (N, K) for ``'ovr'`` shape.

    One-vs-one values as libsvm's ``svm_predict_values`` (pair ``(i, j)``: support
    vectors of class ``i`` weighted by ``_dual_coef_[j - 1]``, of class ``j`` by
    ``_dual_coef_[i]``, plus ``_intercept_``), negated for two classes
    (``BaseLibSVM._decision_function``), else ``sklearn.utils.multiclass._ovr_decision_function``:
    votes plus ``s / (3 (|s| + 1))`` of the summed confidences ``s``.
    """
    if model.decision_function_shape != "ovr":
        raise UnsupportedModel("SVC(decision_function_shape='ovo') is not supported")
    dual, k = np.asarray(model._dual_coef_, np.float64), len(model.classes_)
    start = np.concatenate([[0], np.cumsum(model._n_support)])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    weights = np.zeros((dual.shape[1], len(pairs)))
    first, second = np.zeros((len(pairs), k)), np.zeros((len(pairs), k))
    for p, (i, j) in enumerate(pairs):
        weights[start[i] : start[i + 1], p] = dual[j - 1, start[i] : start[i + 1]]
        weights[start[j] : start[j + 1], p] = dual[i, start[j] : start[j + 1]]
        first[p, i], second[p, j] = 1.0, 1.0
    dec = g("MatMul", _kernel(g, operator, model), g.const(weights, "ovo_weights"))
    dec = g("Add", dec, g.const(model._intercept_, "intercept"))
    if k == 2:
        return g("Neg", dec)
    sums = g("MatMul", dec, g.const(first - second, "signs"))
    to_j = g("Cast", g("Less", dec, g.const(0.0)), to=TensorProto.DOUBLE)  # dec < 0: j wins
    to_i = g("Sub", g.const(1.0), to_j)
    votes = g(
        "Add",
        g("MatMul", to_i, g.const(first, "vote_i")),
        g("MatMul", to_j, g.const(second, "vote_j")),
    )
    scale = g("Mul", g("Add", g("Abs", sums), g.const(1.0)), g.const(3.0))
    return g("Add", votes, g("Div", sums, scale))


def convert_calibrated(scope: Any, operator: Any, container: Any) -> None:
    """``CalibratedClassifierCV.predict_proba`` of SVC with sigmoid calibration.

    Per calibrated classifier (``_CalibratedClassifier.predict_proba``): class
    ``k`` gets ``expit(-(a_k d_k + b_k))`` of its decision column ``d_k``
    (``_SigmoidCalibration.predict``); two classes: ``[1 - p, p]``; more: divided
    by the row sum, uniform where it is 0. Then the mean over calibrated
    classifiers; labels ``classes_[argmax]`` (``CalibratedClassifierCV.predict``).

    Raises
    ------
    UnsupportedModel
        For a base estimator other than SVC, or a method other than sigmoid.
    """
    g, model = Graph(scope, container), operator.raw_operator
    classes, total = np.asarray(model.classes_), ""
    for calibrated in model.calibrated_classifiers_:
        base = calibrated.estimator
        if calibrated.method != "sigmoid" or type(base).__name__ != "SVC":
            name = type(base).__name__
            raise UnsupportedModel(f"{calibrated.method} calibration of {name} is unsupported")
        if not np.array_equal(np.asarray(base.classes_), classes):
            raise UnsupportedModel("the calibrated estimator saw a subset of the classes")
        a = np.array([[c.a_ for c in calibrated.calibrators]])
        b = np.array([[c.b_ for c in calibrated.calibrators]])
        z = g("Add", g("Mul", _svc_decision(g, operator, base), g.const(a, "a")), g.const(b, "b"))
        p = g("Sigmoid", g("Neg", z))
        if len(classes) == 2:
            p = g("Concat", g("Sub", g.const(1.0), p), p, axis=1)
        else:
            den = g("ReduceSum", p, g.const(np.array([1]), "axis"), keepdims=1)
            zero = g("Equal", den, g.const(0.0))
            p = g("Where", zero, g.const(1.0 / len(classes)), g("Div", p, den))
        total = g("Add", total, p) if total else p
    count = g.const(float(len(model.calibrated_classifiers_)), "n_calibrated")
    g.classes(operator, g("Div", total, count), classes)
