"""skl2onnx converter of the ``torch_mlp`` estimators: the network as a float64 ONNX graph.

:func:`convert_torch_mlp` writes, per layer of
:meth:`~mlserve.training.torch_mlp.TorchMLPRegressor.layers` (BatchNorm folded into
the weights, dropout gone), ``Add(MatMul(z, W), b)`` with float64 constants and the
activation (``Relu``, ``Tanh``, ``Sigmoid``, ``Mul(z, Sigmoid(z))`` for SiLU); a
classifier ends with ``Softmax`` and the label ``classes[ArgMax]``. This is the same
arithmetic as the estimators' numpy ``predict``, so the graph joined to the
preprocessing by :func:`mlserve.serving.onnx.compile_pipeline` passes its unchanged
1e-9 check (float64 throughout; docs/torch.md for the measured errors), needs neither
torch nor onnxscript, and converts in well under a second.

Why not ``torch.onnx.export`` then ``onnx.compose.merge_models``: that graph is float32
unless the module is exported in double, needs onnxscript, and takes 1 to 2 seconds
per model plus 4 for the first export in a process (measured, docs/torch.md).
"""

from __future__ import annotations

from typing import Any

from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

from mlserve.serving import onnx_converters as conv
from mlserve.training.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

_ALIAS = "MlserveTorchMLPClassifier"


def _activation(g: conv.Graph, z: str, name: str) -> str:
    """ONNX nodes of one activation, as ``torch.nn`` defines it.

    Raises
    ------
    UnsupportedModel
        For an activation without a float64 ONNX Runtime kernel.
    """
    if name == "relu":
        return g("Relu", z)
    if name == "tanh":
        return g("Tanh", z)
    if name == "logistic":
        return g("Sigmoid", z)
    if name == "silu":  # x * sigmoid(x) (torch.nn.SiLU)
        return g("Mul", z, g("Sigmoid", z))
    raise conv.UnsupportedModel(f"activation {name!r} has no float64 ONNX conversion")


def convert_torch_mlp(scope: Any, operator: Any, container: Any) -> None:
    """``TorchMLPRegressor.predict`` / ``TorchMLPClassifier.predict_proba`` and ``predict``.

    Raises
    ------
    UnsupportedModel
        A classifier asked with ZipMap, or an activation :func:`_activation` refuses.
    """
    g, model = conv.Graph(scope, container), operator.raw_operator
    classifier = isinstance(model, TorchMLPClassifier)
    if classifier and container.get_options(model, {"zipmap": False}).get("zipmap") is not False:
        raise conv.UnsupportedModel("torch_mlp classifiers convert with zipmap=False only")
    z = g.features(operator)
    for kind, first, second in model.layers():
        if kind == "linear":
            z = g("Add", g("MatMul", z, g.const(first, "weight")), g.const(second, "bias"))
        else:
            z = _activation(g, z, first)
    if classifier:
        g.classes(operator, g("Softmax", z, axis=1), model.classes_)
    else:
        g("Identity", z, out=operator.outputs[0].full_name)


def shape_classifier(operator: Any) -> None:
    """Labels (N,) int64 or string (:func:`mlserve.serving.onnx_converters.labels`),
    probabilities (N, K) float64.

    Unlike :func:`mlserve.serving.onnx_converters.shape_classifier`, it does not call
    skl2onnx's ``calculate_linear_classifier_output_shapes``, which reads options from
    skl2onnx's global registry.
    """
    n, classes = operator.inputs[0].get_first_dimension(), operator.raw_operator.classes_
    text = conv.labels(classes).dtype.kind == "O"
    operator.outputs[0].type = (StringTensorType if text else Int64TensorType)([n])
    operator.outputs[1].type = DoubleTensorType([n, len(classes)])


CONVERTERS: dict[type, Any] = {
    TorchMLPRegressor: convert_torch_mlp,
    TorchMLPClassifier: convert_torch_mlp,
}
SHAPE_CALCULATORS: dict[type, Any] = {
    TorchMLPRegressor: conv.shape_regressor,
    TorchMLPClassifier: shape_classifier,
}


def register_classifier_options() -> None:
    """Declare the classifier's options in skl2onnx's process-wide registry (once).

    skl2onnx's Pipeline parser gives every classifier step a ``zipmap`` option and checks
    options against that registry only, so an unregistered classifier fails with
    "Option 'zipmap' not in [] for class 'TorchMLPClassifier'". The conversion itself
    still goes through mlserve's per-call tables (:data:`CONVERTERS`).
    """
    update_registered_converter(
        TorchMLPClassifier,
        _ALIAS,
        shape_classifier,
        convert_torch_mlp,
        options={"zipmap": [False, True], "nocl": [False], "output_class_labels": [False]},
    )
