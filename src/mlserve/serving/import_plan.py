"""What an imported ONNX file is: its layout, signature and outputs, checked by a sample run.

:func:`plan_onnx` turns a checked graph (:func:`mlserve.serving.import_onnx.check_onnx`)
and the client's ``metadata`` into the version's tabular signature and
:class:`~mlserve.store.documents.ImportInfo`, then runs the ``sample`` (or one row of
zeros) in ONNX Runtime: a graph that does not run is refused before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import ModelProto

from mlserve.errors import ValidationFailed
from mlserve.serving.import_meta import ImportMetadata, sample_columns
from mlserve.serving.import_onnx import numpy_dtype, tensor_signature
from mlserve.serving.imported import ImportedOnnxRuntime, TensorModel
from mlserve.store.documents import FeatureSpec, ImportInfo, Signature, TensorSpec

LOGICAL_TYPES = {"FP16": "number", "FP32": "number", "FP64": "number", "BOOL": "boolean"}
LABEL_TYPES = frozenset({"INT64", "INT32", "BYTES"})
CLASSIFIER_OPS = frozenset(
    {"LinearClassifier", "SVMClassifier", "TreeEnsembleClassifier", "ZipMap"}
)
FRAMEWORKS = {
    "pytorch": "pytorch",
    "skl2onnx": "scikit-learn",
    "tf2onnx": "tensorflow",
    "keras2onnx": "keras",
    "onnxmltools": "onnxmltools",
}


@dataclass(kw_only=True)
class ImportPlan:
    """A checked model ready to be registered.

    Attributes
    ----------
    task : str
        ``regression``, ``classification`` or ``tensor``.
    signature : dict
        Tabular signature (``inputs`` empty for tensor models).
    info : dict
        :class:`~mlserve.store.documents.ImportInfo`.
    runtime : str
        ``onnx`` or ``sklearn``.
    """

    task: str
    signature: Signature
    info: ImportInfo
    runtime: str


def plan_onnx(model: ModelProto, data: bytes, meta: ImportMetadata, sample: Any) -> ImportPlan:
    """Signature, layout and outputs of a checked graph; the sample run.

    Parameters
    ----------
    model : ModelProto
        Checked by :func:`mlserve.serving.import_onnx.check_onnx`.
    data : bytes
        Its bytes (what ONNX Runtime opens).
    meta : ImportMetadata
        What the client says the file cannot.
    sample : object or None
        Rows (list of records or ``{feature: [values]}``) for a tabular model, or
        ``{input: nested list}`` (a nested list: the only input) for a tensor model.

    Raises
    ------
    ValidationFailed
        Metadata that contradicts the graph, or a sample run that fails.
    """
    tensors = tensor_signature(model)
    info: ImportInfo = {
        "format": "onnx",
        "framework": meta.framework or FRAMEWORKS.get(model.producer_name, model.producer_name),
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "opset": {(imp.domain or "ai.onnx"): int(imp.version) for imp in model.opset_import},
        "layout": _layout(tensors["inputs"], meta),
        "tensors": tensors,
        "label_output": None,
        "proba_output": None,
        "metadata": meta.model_dump(exclude_none=True),
    }
    tensor_model = TensorModel(data, info)
    if info["layout"] == "tensor":
        signature: Signature = {
            "inputs": [],
            "output": {"name": tensors["outputs"][0]["name"], "type": "tensor"},
        }
        tensor_model.run(_tensor_sample(sample, tensor_model.inputs))
        return ImportPlan(task="tensor", signature=signature, info=info, runtime="onnx")
    task = _outputs(info, tensors["outputs"], meta)
    signature = {
        "inputs": _features(info, tensors["inputs"], meta),
        "output": {"name": meta.output_name or "prediction", "type": "number"},
    }
    if task == "classification":
        classes = meta.classes or _graph_classes(model) or _default_classes(info)
        signature["output"] = {
            "name": meta.output_name or "prediction",
            "type": "string" if isinstance(classes[0], str) else "integer",
            "classes": classes,
        }
    runtime = ImportedOnnxRuntime(tensor_model, signature, info)
    columns = sample_columns(runtime.validator, signature, sample)
    predictions, _ = runtime.predict(columns)
    if task == "classification":
        unknown = set(predictions.tolist()) - set(signature["output"]["classes"])
        if unknown:
            raise ValidationFailed(
                f"the model predicts labels outside its classes: {sorted(map(str, unknown))[:5]}",
                {"field": "metadata", "key": "classes"},
            )
    return ImportPlan(task=task, signature=signature, info=info, runtime="onnx")


def _layout(inputs: list[TensorSpec], meta: ImportMetadata) -> str:
    if meta.feature_names is not None:
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 2:
            raise ValidationFailed(
                "feature_names applies to a model with one [N, F] input",
                {"field": "metadata", "key": "feature_names"},
            )
        width = inputs[0]["shape"][1]
        if width not in (-1, len(meta.feature_names)):
            raise ValidationFailed(
                f"the input has {width} columns and feature_names {len(meta.feature_names)}",
                {"field": "metadata", "key": "feature_names"},
            )
        return "matrix"
    per_column = all(
        len(t["shape"]) == 1 or (len(t["shape"]) == 2 and t["shape"][1] == 1) for t in inputs
    )
    if per_column and (len(inputs) > 1 or meta.task is not None):
        return "columns"
    return "tensor"


def _features(
    info: ImportInfo, inputs: list[TensorSpec], meta: ImportMetadata
) -> list[FeatureSpec]:
    if info["layout"] == "matrix":
        assert meta.feature_names is not None
        return [{"name": n, "type": "number", "nullable": True} for n in meta.feature_names]
    features: list[FeatureSpec] = []
    for spec in inputs:
        kind = "string" if spec["datatype"] == "BYTES" else LOGICAL_TYPES.get(spec["datatype"])
        features.append({"name": spec["name"], "type": kind or "integer", "nullable": True})  # type: ignore[typeddict-item]
    return features


def _outputs(info: ImportInfo, outputs: list[TensorSpec], meta: ImportMetadata) -> str:
    """Choose the label and probability outputs; return the task."""
    names = [o["name"] for o in outputs]
    for key in ("label_output", "proba_output"):
        given = getattr(meta, key)
        if given is not None and given not in names:
            raise ValidationFailed(
                f"{key} {given!r} is not an output of the graph: {names}",
                {"field": "metadata", "key": key},
            )
    labels = [o["name"] for o in outputs if o["datatype"] in LABEL_TYPES]
    if meta.label_output or meta.proba_output:
        info["label_output"], info["proba_output"] = meta.label_output, meta.proba_output
    elif len(outputs) == 2 and labels:
        info["label_output"] = labels[0]
        info["proba_output"] = next(n for n in names if n != labels[0])
    elif meta.task == "classification":
        info["proba_output"] = names[0]
    else:
        info["label_output"] = names[0]
    task = meta.task or ("classification" if info["proba_output"] else "regression")
    if task == "regression" and info["label_output"] is None:
        raise ValidationFailed("a regression model needs label_output", {"field": "metadata"})
    return task


def _graph_classes(model: ModelProto) -> list[Any] | None:
    """Class labels an ai.onnx.ml classifier node declares (skl2onnx, onnxmltools)."""
    for node in model.graph.node:
        if node.op_type not in CLASSIFIER_OPS:
            continue
        for attribute in node.attribute:
            if attribute.name in ("classlabels_ints", "classlabels_int64s") and attribute.ints:
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [v.decode() for v in attribute.strings]
    return None


def _default_classes(info: ImportInfo) -> list[Any]:
    """0..K-1 from the probability output's width (a single sigmoid column: 0, 1)."""
    proba = next(o for o in info["tensors"]["outputs"] if o["name"] == info["proba_output"])
    width = proba["shape"][-1] if len(proba["shape"]) == 2 else 1
    if width < 1:
        raise ValidationFailed(
            "the number of classes is not fixed by the graph: give metadata classes",
            {"field": "metadata", "key": "classes"},
        )
    return list(range(max(width, 2)))


def _tensor_sample(sample: Any, inputs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """The sample as a feed (``None``: zeros, one per dynamic axis)."""
    if sample is None:
        return {
            name: np.zeros([max(d, 1) for d in spec["shape"]], numpy_dtype(spec["datatype"]))
            for name, spec in inputs.items()
        }
    if not isinstance(sample, dict):
        if len(inputs) != 1:
            raise ValidationFailed("give the sample as {input: values}", {"field": "sample"})
        sample = {next(iter(inputs)): sample}
    feed = {}
    for name, values in sample.items():
        spec = inputs.get(name)
        if spec is None:
            raise ValidationFailed(f"unknown input {name!r} in sample", {"field": "sample"})
        try:
            feed[name] = np.asarray(values, dtype=numpy_dtype(spec["datatype"]))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(f"sample input {name!r}: {exc}", {"field": "sample"}) from exc
    return feed
