"""/v2: the Open Inference Protocol (KServe V2, Triton) REST routes, for every model version.

Errors on these routes are ``{"error": "<message>"}`` as the protocol says
(:func:`mlserve.api.errors.error_response`); auth, roles and rate limits are those of
the v1 routes (``read`` for metadata, ``predict`` for ``infer``).
"""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response, request

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response
from mlserve.api.security import public, requires
from mlserve.errors import ServiceUnavailable
from mlserve.jobs.heartbeat import readiness
from mlserve.serving import oip
from mlserve.serving.oip_codec import HEADER, decode_request, encode_response

bp = APIBlueprint("v2", __name__, url_prefix="/v2", tag="open inference protocol (v2)")


@bp.get("")
@public
@bp.doc(summary="Server metadata: name, version, extensions (binary_tensor_data)")
def server_metadata() -> Response:
    return json_response(oip.server_metadata())


@bp.get("/health/live")
@public
@bp.doc(summary="Server liveness")
def live() -> Response:
    return json_response({"live": True})


@bp.get("/health/ready")
@public
@bp.doc(summary="Server readiness: the database answers", responses={503: "not ready"})
def ready() -> Response:
    if readiness(current_context()).get("database") != "ok":
        raise ServiceUnavailable("the database cannot be reached")
    return json_response({"ready": True})


@bp.get("/models/<name>")
@requires("read")
@bp.doc(summary="Model metadata of the default version (production, else latest)")
def model_metadata(name: str) -> Response:
    return json_response(oip.model_metadata(current_context(), name, None))


@bp.get("/models/<name>/versions/<int:version>")
@requires("read")
@bp.doc(summary="Model metadata of one version", responses={404: "unknown model or version"})
def version_metadata(name: str, version: int) -> Response:
    return json_response(oip.model_metadata(current_context(), name, str(version)))


@bp.get("/models/<name>/ready")
@requires("read")
@bp.doc(summary="Whether the default version loads", responses={503: "it does not"})
def model_ready(name: str) -> Response:
    return _ready(name, None)


@bp.get("/models/<name>/versions/<int:version>/ready")
@requires("read")
@bp.doc(summary="Whether a version loads", responses={503: "it does not"})
def version_ready(name: str, version: int) -> Response:
    return _ready(name, str(version))


def _ready(name: str, version: str | None) -> Response:
    if not oip.model_ready(current_context(), name, version):
        raise ServiceUnavailable(f"model {name!r} cannot be loaded")
    return json_response({"name": name, "ready": True})


INFER_DOC: dict[str, Any] = {
    "description": "JSON tensors, or the binary tensor data extension: the JSON header "
    "(its length in the Inference-Header-Content-Length header) followed by the raw "
    "tensors. Tabular versions take one 1-D tensor per feature and give predict (and "
    "predict_proba); imported tensor models take and give their graph's tensors. "
    "parameters.prediction_id identifies the answer for feedback.",
    "responses": {
        400: "malformed body or lying binary sizes",
        404: "unknown model or version",
        413: "too many rows, or a body over max_content_length_bytes",
        422: "missing, unknown or ill-typed input, unknown output",
    },
}


@bp.post("/models/<name>/infer")
@requires("predict")
@bp.doc(summary="Inference with the default version (production, else latest)", **INFER_DOC)
def infer(name: str) -> Response:
    return _infer(name, None)


@bp.post("/models/<name>/versions/<int:version>/infer")
@requires("predict")
@bp.doc(summary="Inference with one version", **INFER_DOC)
def infer_version(name: str, version: int) -> Response:
    return _infer(name, str(version))


def _infer(name: str, version: str | None) -> Response:
    decoded = decode_request(request.get_data(cache=False), request.headers.get(HEADER))
    response, binary = oip.infer(current_context(), name, version, decoded)
    body, header_length = encode_response(response, binary)
    if header_length is None:
        return Response(body, mimetype="application/json")
    result = Response(body, mimetype="application/octet-stream")
    result.headers[HEADER] = str(header_length)
    return result


V2_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "description": "the Open Inference Protocol's error body",
}
TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {
            "type": "string",
            "description": "BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BYTES",
        },
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        "data": {"type": "array", "description": "flat or nested values (absent with binary data)"},
        "parameters": {"type": "object", "description": "binary_data_size: bytes after the JSON"},
    },
}
INFER_BODY = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "description": "binary_data_output: every output binary"},
        "inputs": {"type": "array", "items": TENSOR},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "parameters": {"type": "object", "description": "binary_data: bool"},
                },
            },
        },
    },
}
INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object", "description": "prediction_id: for feedback"},
        "outputs": {"type": "array", "items": TENSOR},
    },
}


def document_v2(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Describe the V2 bodies and give every /v2 error answer the ``{"error": str}`` schema."""
    if isinstance(spec, str):
        return spec
    for path, item in spec.get("paths", {}).items():
        if not path.startswith("/v2"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("200", {"description": "the answer"}).setdefault(
                "content", {"application/json": {"schema": {"type": "object"}}}
            )
            if path.endswith("/infer") and method == "post":
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": INFER_BODY},
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"},
                        },
                    },
                }
                responses.setdefault("200", {})["content"] = {
                    "application/json": {"schema": INFER_RESPONSE},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                }
            for status, answer in responses.items():
                if status.startswith(("4", "5")) and isinstance(answer, dict):
                    answer["content"] = {"application/json": {"schema": V2_ERROR}}
    return spec
