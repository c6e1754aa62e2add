"""The Open Inference Protocol (V2) service: metadata, readiness and inference for every version.

A version answers V2 in one of two ways (docs/api.md, "Open Inference Protocol"):

- tabular (every trained version, and imported ones with a tabular signature): one
  1-D tensor per feature, named after it, as MLServer's pandas codec takes a
  DataFrame (``BYTES`` for text, NaN for missing values in floating tensors); outputs
  ``predict`` and, for classifiers, ``predict_proba`` (columns in class order). The
  rows go through the version's validator, so checks and answers are those of
  ``/api/v1/.../predict``;
- tensor (imported ONNX graphs): the graph's own inputs and outputs. A tabular import
  also takes its graph's inputs when a request names exactly those.

Without a version the model's default applies (alias ``production``, else the latest),
as everywhere. Each answer carries a ``prediction_id`` in its ``parameters`` and is
logged as v1 predictions are (:mod:`mlserve.monitoring.prediction_log`).
"""

from __future__ import annotations

import json
from importlib.metadata import version as package_version
from typing import Any

import numpy as np
from sqlalchemy import select

from mlserve.context import Context, ServableVersion
from mlserve.errors import NotFound, PayloadTooLarge, ValidationFailed
from mlserve.serving.import_meta import label_datatype, tabular_tensors
from mlserve.serving.oip_codec import InferRequest, InferResponse
from mlserve.serving.predict import new_prediction_id
from mlserve.store.documents import FeatureSpec, TensorSignature
from mlserve.store.orm import ModelVersion

EXTENSIONS = ["binary_tensor_data"]


def server_metadata() -> dict[str, Any]:
    """``GET /v2``: name, version and the protocol extensions supported."""
    return {"name": "mlserve", "version": package_version("mlserve"), "extensions": EXTENSIONS}


def resolve(
    ctx: Context, name: str, version: str | None, routing_key: str | None = None
) -> ModelVersion:
    """The version row a V2 path names (``None``: ``production``, else the latest, and
    under a traffic policy on ``production`` the version the split chooses, sticky
    for a ``routing_key``: :mod:`mlserve.registry.traffic`).

    Raises
    ------
    NotFound
        Unknown model or version, or a version that is not a positive integer.
    """
    if version is None:
        return ctx.resolver.route(name).choose(routing_key)
    if not version.isdigit() or int(version) < 1:
        raise NotFound.of("version", version)
    return ctx.resolver.resolve(name, version=int(version))


def tensors_of(row: ModelVersion) -> TensorSignature:
    """The V2 inputs and outputs of a version (tensor models: the graph's own)."""
    if row.imported is not None and row.imported["layout"] == "tensor":
        return row.imported["tensors"]
    return tabular_tensors(row.signature)


def model_metadata(ctx: Context, name: str, version: str | None) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{version}]``.

    Returns
    -------
    dict
        ``name``, ``versions`` (every version number, as strings), ``platform``
        (``onnxruntime_onnx`` or ``sklearn``), ``inputs`` and ``outputs``
        (``name``, ``datatype``, ``shape`` with -1 for dynamic axes) of the version.

    Raises
    ------
    NotFound
    """
    row = resolve(ctx, name, version)
    tensors = tensors_of(row)
    with ctx.db.session() as session:
        query = select(ModelVersion.version).where(ModelVersion.model_name == name)
        numbers = session.scalars(query.order_by(ModelVersion.version)).all()
    return {
        "name": name,
        "versions": [str(v) for v in numbers],
        "platform": "onnxruntime_onnx" if row.runtime == "onnx" else "sklearn",
        "inputs": tensors["inputs"],
        "outputs": tensors["outputs"],
        "parameters": {"version": str(row.version), "source": row.source, "task": row.task},
    }


def model_ready(ctx: Context, name: str, version: str | None) -> bool:
    """Whether the version loads (its artifact passes the sha256 and format checks).

    Raises
    ------
    NotFound
    """
    row = resolve(ctx, name, version)
    try:
        ctx.models.get(row)
    except NotFound:
        raise
    except Exception:
        return False
    return True


def infer(
    ctx: Context, name: str, version: str | None, request: InferRequest
) -> tuple[InferResponse, dict[str, bool]]:
    """Run an inference request.

    Returns
    -------
    response : InferResponse
    binary : dict of str to bool
        Output name -> whether it goes back as binary data.

    Raises
    ------
    NotFound
        Unknown model or version.
    PayloadTooLarge
        More rows than ``max_batch_rows``.
    ValidationFailed
        A missing, unknown or ill-typed input, or an unknown output; the message
        names it.
    Conflict
        The artifact cannot be loaded.
    """
    key = request.parameters.get("routing_key")
    row = resolve(ctx, name, version, key if isinstance(key, str) and key else None)
    if not request.inputs:
        raise ValidationFailed("the request has no inputs", {"field": "inputs"})
    n_rows = request.inputs[0].shape[0] if request.inputs[0].shape else 1
    limit = ctx.settings.max_batch_rows
    if n_rows > limit:
        raise PayloadTooLarge(f"{n_rows} rows exceed max_batch_rows={limit}", {"limit": limit})
    model = ctx.models.get(row)
    prediction_id = new_prediction_id()
    features = row.signature["inputs"]
    if not features or (model.tensor is not None and _names_graph_inputs(model, request, features)):
        outputs, datatypes = _run_tensor(ctx, model, request, prediction_id)
    else:
        outputs, datatypes = _run_tabular(ctx, model, request, prediction_id)
    binary = {
        n: (request.outputs[n] if request.outputs is not None else request.binary_default)
        for n in outputs
    }
    response = InferResponse(
        model_name=name,
        model_version=str(row.version),
        id=request.id,
        parameters={"prediction_id": prediction_id},
        outputs=outputs,
        datatypes=datatypes,
    )
    return response, binary


def _names_graph_inputs(
    model: ServableVersion, request: InferRequest, features: list[FeatureSpec]
) -> bool:
    """Whether ``request`` names the inputs of the version's graph, and they are not its
    ``features`` (then it runs tensor to tensor)."""
    assert model.tensor is not None
    names = {t.name for t in request.inputs}
    return names == set(model.tensor.inputs) and names != {f["name"] for f in features}


def _run_tabular(
    ctx: Context, model: ServableVersion, request: InferRequest, prediction_id: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays = _arrays(request)
    columns = None if arrays is None else model.validator.columns_from_arrays(arrays)
    instances: list[dict[str, Any]] | None = None
    inputs: dict[str, Any] | None = arrays
    if columns is None:
        instances, inputs = _rows(request)
        columns = (  # JSON lists: validated row by row as v1's instances are
            model.validator.columns(instances)
            if instances is not None
            else model.validator.columns_from_inputs(inputs)
        )
    predictions, probabilities = model.predict(columns, len(next(iter(columns.values()))))
    ctx.prediction_log.submit(
        prediction_id,
        model.model_name,
        model.version,
        instances=instances,
        inputs=None if instances is not None else inputs,
        predictions=predictions,
    )
    outputs = {"predict": np.asarray(predictions)}
    datatypes = {"predict": label_datatype(model.classes)}
    if probabilities is not None:
        outputs["predict_proba"] = np.asarray(probabilities, dtype=np.float64)
        datatypes["predict_proba"] = "FP64"
    return _select(outputs, datatypes, request)


def _arrays(request: InferRequest) -> dict[str, np.ndarray] | None:
    """``{feature: 1-D array}`` when every tensor came as an array (binary data, or JSON
    data that is not a flat list), else ``None``; an ``(n, 1)`` tensor counts as 1-D."""
    arrays: dict[str, np.ndarray] = {}
    for tensor in request.inputs:
        if tensor.values is not None:
            return None
        arrays[tensor.name] = _column(tensor.data)
    return arrays


def _column(data: np.ndarray) -> np.ndarray:
    """An ``(n, 1)`` tensor as its ``(n,)`` column; any other shape as it is."""
    return data[:, 0] if data.ndim == 2 and data.shape[1] == 1 else data


def _rows(request: InferRequest) -> tuple[list[dict[str, Any]] | None, dict[str, list[Any]]]:
    """Records when every tensor came as a 1-D JSON list, else ``{feature: values}``
    (missing values of floating tensors, NaN, as None)."""
    inputs: dict[str, list[Any]] = {}
    for tensor in request.inputs:
        if tensor.values is not None:
            inputs[tensor.name] = tensor.values
            continue
        data = _column(tensor.data)
        if data.ndim != 1:
            raise ValidationFailed(
                f"input {tensor.name!r}: a tabular model takes one 1-D tensor per feature, "
                f"not shape {tensor.shape}",
                {"input": tensor.name},
            )
        values = data.tolist()
        if data.dtype.kind == "f":
            values = [None if v != v else v for v in values]
        inputs[tensor.name] = values
    if all(t.values is not None for t in request.inputs):
        lengths = {len(v) for v in inputs.values()}
        if len(lengths) == 1:
            names = list(inputs)
            rows = zip(*inputs.values(), strict=True)
            return [dict(zip(names, row, strict=True)) for row in rows], inputs
    return None, inputs


def _run_tensor(
    ctx: Context, model: ServableVersion, request: InferRequest, prediction_id: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    assert model.tensor is not None
    wanted = None if request.outputs is None else list(request.outputs)
    out = model.tensor.run({t.name: t.data for t in request.inputs}, wanted)
    outputs: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    for name, value in out.items():
        if isinstance(value, list):  # a sequence of maps (ZipMap): JSON text per row
            value = np.array([json.dumps(v) for v in value], dtype=object)
        outputs[name] = np.asarray(value)
        datatypes[name] = model.tensor.outputs[name]["datatype"]
    first = next(iter(outputs.values()))
    ctx.prediction_log.submit(
        prediction_id,
        model.model_name,
        model.version,
        instances=None,
        inputs={},
        predictions=first.reshape(len(first), -1) if first.ndim else first.reshape(1),
    )
    return outputs, datatypes


def _select(
    outputs: dict[str, np.ndarray], datatypes: dict[str, str], request: InferRequest
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if request.outputs is None:
        return outputs, datatypes
    for name in request.outputs:
        if name not in outputs:
            raise ValidationFailed(
                f"unknown output {name!r} (this version gives {sorted(outputs)})",
                {"output": name},
            )
    return {n: outputs[n] for n in request.outputs}, {n: datatypes[n] for n in request.outputs}
