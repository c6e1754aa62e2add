"""Checking an uploaded ONNX file before anything of it is stored or run.

Nothing a client sends is trusted (docs/import.md, "What is checked"). :func:`check_onnx`
parses the bytes, refuses external tensor data, refuses operator domains outside the
standard ones, refuses tensors declaring more data than ``max_model_bytes``, and runs
the full ``onnx.checker`` (with shape inference); only then may ONNX Runtime open it
(:func:`open_session`). :func:`tensor_signature` describes the graph's inputs and
outputs with Open Inference Protocol datatypes (KServe/Triton "Model Metadata").
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import onnxruntime as ort
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto

from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.serving.ort_options import session_options
from mlserve.serving.runtime import refuse_external_data
from mlserve.store.documents import TensorSignature, TensorSpec

# ai.onnx (spelled "" or "ai.onnx") and ai.onnx.ml: the operator sets the ONNX standard
# defines. ONNX Runtime's contrib domains (com.microsoft) are refused: their kernels are
# not specified by the standard and a graph needing them is not portable (docs/import.md).
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})

# ONNX element type -> (OIP datatype, numpy dtype); the OIP names follow the KServe
# V2 "Tensor Data Types" table.
ELEMENT_TYPES: dict[int, tuple[str, np.dtype]] = {
    TensorProto.BOOL: ("BOOL", np.dtype(np.bool_)),
    TensorProto.UINT8: ("UINT8", np.dtype(np.uint8)),
    TensorProto.UINT16: ("UINT16", np.dtype(np.uint16)),
    TensorProto.UINT32: ("UINT32", np.dtype(np.uint32)),
    TensorProto.UINT64: ("UINT64", np.dtype(np.uint64)),
    TensorProto.INT8: ("INT8", np.dtype(np.int8)),
    TensorProto.INT16: ("INT16", np.dtype(np.int16)),
    TensorProto.INT32: ("INT32", np.dtype(np.int32)),
    TensorProto.INT64: ("INT64", np.dtype(np.int64)),
    TensorProto.FLOAT16: ("FP16", np.dtype(np.float16)),
    TensorProto.FLOAT: ("FP32", np.dtype(np.float32)),
    TensorProto.DOUBLE: ("FP64", np.dtype(np.float64)),
    TensorProto.STRING: ("BYTES", np.dtype(object)),
}

DATATYPES: dict[str, np.dtype] = dict(ELEMENT_TYPES.values())


def check_onnx(data: bytes, max_model_bytes: int) -> ModelProto:
    """Parse and check an uploaded ONNX model.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    max_model_bytes : int
        Largest file, and largest data one tensor may declare, in bytes.

    Returns
    -------
    ModelProto
        The parsed model, which passed ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    PayloadTooLarge
        A file or a declared tensor larger than ``max_model_bytes``.
    ValidationFailed
        An empty or unreadable file (a pickle, a truncated file), external tensor
        data, an operator domain outside :data:`ALLOWED_DOMAINS`, a tensor whose
        stored data does not match its dimensions, or a model the checker refuses.
    """
    if not data:
        raise ValidationFailed("the model file is empty", {"field": "file"})
    if len(data) > max_model_bytes:
        raise PayloadTooLarge(
            f"model file of {len(data)} bytes exceeds max_model_bytes={max_model_bytes}",
            {"field": "file", "limit": max_model_bytes},
        )
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValidationFailed("the file is not an ONNX model", {"field": "file"}) from exc
    if not model.graph.node and not model.graph.output:
        raise ValidationFailed("the file is not an ONNX model (no graph)", {"field": "file"})
    try:
        refuse_external_data(data)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"field": "file"}) from exc
    _check_domains(model)
    _check_tensor_sizes(model, max_model_bytes)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ValidationFailed(
            f"onnx.checker refused the model: {message}", {"field": "file"}
        ) from exc
    return model


def _check_domains(model: ModelProto) -> None:
    local = {(f.domain, f.name) for f in model.functions}
    used = {imp.domain for imp in model.opset_import}
    for node in _nodes(model):
        if (node.domain, node.op_type) not in local:
            used.add(node.domain)
    for function in model.functions:
        used.update(imp.domain for imp in function.opset_import)
    local_domains = {domain for domain, _ in local}
    refused = sorted(used - ALLOWED_DOMAINS - local_domains)
    if refused:
        raise ValidationFailed(
            "the model uses operator domains outside ai.onnx and ai.onnx.ml: " + ", ".join(refused),
            {"field": "file", "domains": refused},
        )


def _nodes(model: ModelProto) -> Iterator[NodeProto]:
    """Every node of the graph, its subgraphs (If, Loop, Scan) and its local functions."""
    graphs: list[GraphProto] = [model.graph]
    for function in model.functions:
        yield from function.node
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            yield node
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)


def _check_tensor_sizes(model: ModelProto, max_model_bytes: int) -> None:
    """Refuse a tensor declaring more than ``max_model_bytes`` or holding too little data.

    A graph can declare ``dims`` for which it stores no data; ONNX Runtime would then
    allocate the declared size (or read past the buffer) when it opens the session.
    """
    from onnx.external_data_helper import _get_all_tensors

    for tensor in _get_all_tensors(model):
        n = int(np.prod(np.asarray(tensor.dims, dtype=np.float64))) if tensor.dims else 1
        itemsize = ELEMENT_TYPES.get(tensor.data_type, ("", np.dtype(np.float64)))[1].itemsize
        if n * itemsize > max_model_bytes:
            raise PayloadTooLarge(
                f"tensor {tensor.name!r} declares {n * itemsize} bytes, over "
                f"max_model_bytes={max_model_bytes}",
                {"field": "file", "tensor": tensor.name, "limit": max_model_bytes},
            )
        if tensor.data_type == TensorProto.STRING:
            held = len(tensor.string_data)
        elif tensor.raw_data:
            held = len(tensor.raw_data) // itemsize
        else:
            held = _typed_count(tensor)
        if held != n:
            raise ValidationFailed(
                f"tensor {tensor.name!r} declares {n} elements and holds {held}",
                {"field": "file", "tensor": tensor.name},
            )


def _typed_count(tensor: TensorProto) -> int:
    fields = ("float_data", "double_data", "int32_data", "int64_data", "uint64_data")
    return max(len(getattr(tensor, name)) for name in fields)


def tensor_signature(model: ModelProto) -> TensorSignature:
    """The graph's inputs (initializers excluded) and outputs as OIP tensor specs.

    Raises
    ------
    ValidationFailed
        An input or output that is not a tensor of a supported element type
        (outputs that are sequences of maps, as skl2onnx's ZipMap makes, are listed
        with datatype ``BYTES`` and shape ``[-1]``; they are answered as JSON text).
    """
    initializers = {t.name for t in model.graph.initializer}
    inputs = [_spec(v, "input") for v in model.graph.input if v.name not in initializers]
    outputs = [_spec(v, "output") for v in model.graph.output]
    return {"inputs": inputs, "outputs": outputs}


def _spec(value: ValueInfoProto, role: str) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        if role == "output":
            return {"name": value.name, "datatype": "BYTES", "shape": [-1]}
        raise ValidationFailed(
            f"graph input {value.name!r} is not a tensor", {"field": "file", "input": value.name}
        )
    element = value.type.tensor_type.elem_type
    if element not in ELEMENT_TYPES:
        raise ValidationFailed(
            f"graph {role} {value.name!r} has an unsupported element type {element}",
            {"field": "file", role: value.name},
        )
    dims = value.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    return {"name": value.name, "datatype": ELEMENT_TYPES[element][0], "shape": shape}


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of an OIP datatype (``BYTES``: object holding ``str``).

    Raises
    ------
    KeyError
        An unknown datatype.
    """
    return DATATYPES[datatype]


def oip_datatype(dtype: np.dtype) -> str:
    """The OIP datatype of a numpy dtype (its name if OIP has none)."""
    for name, known in ELEMENT_TYPES.values():
        if known == dtype:
            return name
    return str(dtype)


def open_session(data: bytes) -> ort.InferenceSession:
    """An ONNX Runtime session of a checked graph, on the CPU provider with
    :func:`session_options`.

    Raises
    ------
    ValidationFailed
        ONNX Runtime cannot load the graph.
    """
    try:
        return ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ValidationFailed(
            f"ONNX Runtime cannot load the model: {message}", {"field": "file"}
        ) from exc
