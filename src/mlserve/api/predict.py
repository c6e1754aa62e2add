"""Prediction endpoints: mlserve's own and the TF Serving / KServe V1 convention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from flask import Response, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import quote_header_value

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response, read_json_body
from mlserve.api.schemas import PredictCsvIn
from mlserve.api.security import requires
from mlserve.errors import ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.serving.predict import PredictionResult, model_status, predict

if TYPE_CHECKING:
    from mlserve.serving import csvio
else:
    csvio = lazy_module("mlserve.serving.csvio")

bp = APIBlueprint("predict", __name__, tag="predict")

KSERVE_PATH = "/v1/models/{name}:predict"
MANGLED_KSERVE_PATH = "/v1/models/{predict"
PREDICT_BODY = {
    "type": "object",
    "description": "rows as instances, or the same data by column as inputs (one of the two)",
    "properties": {
        "instances": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [{"type": "object"}, {"type": "array"}]},
            "description": "one {feature: value} object per row, or one list of values "
            "in signature order per row (KServe V1's list form)",
        },
        "inputs": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "items": {}},
            "description": "columnar: {feature: [value per row]}, all lists of one length",
        },
        "routing_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "sticky routing under a traffic policy (else header X-Routing-Key): "
            "the same key is answered by the same version (docs/traffic.md)",
        },
        "extra": {
            "type": "string",
            "enum": ["refuse", "ignore"],
            "default": "refuse",
            "description": "keys that are not features of the version: a 422 naming the "
            "first, or ignored",
        },
    },
    "minProperties": 1,
    "maxProperties": 3,
}
PREDICT_RESPONSE = {
    "type": "object",
    "required": ["predictions"],
    "properties": {
        "predictions": {"type": "array", "items": {}},
        "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "classes": {"type": "array", "items": {}},
        "model_name": {"type": "string"},
        "model_version": {"type": "integer"},
        "prediction_id": {
            "type": "string",
            "description": "id for POST /api/v1/predictions/{id}/feedback",
        },
        "warnings": {
            "type": "array",
            "items": {"type": "object"},
            "description": "present when not empty: per row, {row, field, warning: "
            "null_imputed} and {row, field, warning: unseen_category, value}",
        },
    },
}

BODY_FIELDS = frozenset({"instances", "inputs"})
ROUTING_KEY_FIELD = "routing_key"
ROUTING_KEY_HEADER = "X-Routing-Key"
MAX_ROUTING_KEY = 256
OPTIONS = frozenset({"extra"})
QUERY_PARAMETERS = [
    {
        "name": "alias",
        "in": "query",
        "required": False,
        "description": "alias to predict with (default: production, else the latest version)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "version number to predict with",
        "schema": {"type": "integer", "minimum": 1},
    },
]


def request_data() -> dict[str, Any]:
    """``{"instances": ...}`` or ``{"inputs": ...}`` from the body, and the routing key
    (body field ``routing_key``, else header ``X-Routing-Key``), as keyword arguments."""
    body = read_json_body()
    if not isinstance(body, dict) or len(set(body) & BODY_FIELDS) != 1:
        raise ValidationFailed(
            'body must be {"instances": [...]} or {"inputs": {...}}', {"field": "instances"}
        )
    unknown = sorted(set(body) - BODY_FIELDS - OPTIONS - {ROUTING_KEY_FIELD})
    if unknown:
        raise ValidationFailed(f"unknown field {unknown[0]!r}", {"field": unknown[0]})
    data = dict(body)
    data[ROUTING_KEY_FIELD] = routing_key(
        data.pop(ROUTING_KEY_FIELD, None), request.headers.get(ROUTING_KEY_HEADER)
    )
    return data


def routing_key(field: Any, header: str | None) -> str | None:
    """The request's routing key: the body field, else the header, else ``None``.

    Raises
    ------
    ValidationFailed
        A key that is not a string of 1-256 characters.
    """
    key = field if field is not None else header
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_ROUTING_KEY:
        name = ROUTING_KEY_FIELD if field is not None else ROUTING_KEY_HEADER
        raise ValidationFailed(
            f"routing key must be a string of 1-{MAX_ROUTING_KEY} characters", {"field": name}
        )
    return key


def selector() -> tuple[str | None, int | None]:
    """The ``alias`` and ``version`` query parameters, checked by hand (no schema
    library on the hot path; documented in :func:`document_request_bodies`)."""
    args = request.args
    if not args:
        return None, None
    return parse_selector(args.get("alias"), args.get("version"))


def parse_selector(alias: str | None, raw_version: str | None) -> tuple[str | None, int | None]:
    """Check the ``alias`` and ``version`` query values; return them parsed.

    Raises
    ------
    ValidationFailed
        An alias outside 1-64 characters, or a version that is not a positive integer.
    """
    if alias is not None and not 1 <= len(alias) <= 64:
        raise ValidationFailed("alias must be 1-64 characters", {"field": "alias"})
    if raw_version is None:
        return alias, None
    version = positive_int(raw_version)
    if version is None:
        raise ValidationFailed("version must be a positive integer", {"field": "version"})
    return alias, version


def positive_int(raw: str) -> int | None:
    """``raw`` as an integer from 1 to 999,999,999 (ASCII digits only), else ``None``."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        return None
    return int(raw)


def prediction_payload(result: PredictionResult) -> dict[str, Any]:
    """The JSON body of a prediction (numpy arrays left for orjson to write)."""
    payload: dict[str, Any] = {
        "predictions": result.predictions,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "prediction_id": result.prediction_id,
    }
    if result.probabilities is not None:
        payload["probabilities"] = result.probabilities
        payload["classes"] = result.classes
    if result.warnings:
        payload["warnings"] = result.warnings
    return payload


def kserve_payload(result: PredictionResult) -> dict[str, Any]:
    """The JSON body of a KServe V1 prediction (``warnings`` as in :func:`prediction_payload`)."""
    payload: dict[str, Any] = {
        "predictions": result.predictions,
        "prediction_id": result.prediction_id,
    }
    if result.warnings:
        payload["warnings"] = result.warnings
    return payload


@bp.post("/api/v1/models/<name>/predict")
@requires("predict")
@bp.doc(
    summary="Predict with a model (default: alias production, else latest version)",
    responses={
        200: "predictions",
        404: "unknown model, alias or version",
        409: "artifact corrupt",
        413: "too many rows",
        422: "invalid instances",
    },
)
def predict_v1(name: str) -> Response:
    alias, version = selector()
    data = request_data()
    result = predict(current_context(), name, alias=alias, version=version, **data)
    return json_response(prediction_payload(result))


@bp.post("/api/v1/models/<name>/predict/csv")
@requires("predict")
@bp.input(PredictCsvIn, location="form_and_files", validation=False)
@bp.doc(
    summary="Predict every row of a CSV file; answers the CSV with predictions appended",
    responses={
        200: "the uploaded columns, then prediction and probability_<class> (text/csv)",
        404: "unknown model, alias or version",
        409: "artifact corrupt",
        413: "file too large or too many rows",
        415: "not CSV",
        422: "invalid file or cell (details: row and field)",
    },
)
def predict_csv(name: str, form_and_files_data: Any) -> Response:
    alias, version = selector()
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("send the CSV as multipart field 'file'", {"field": "file"})
    ctx = current_context()
    result = csvio.predict_csv(
        ctx,
        name,
        filename=upload.filename or "upload.csv",
        data=upload.stream.read(),
        alias=alias,
        version=version,
    )
    filename = f"{result.model_name}-v{result.model_version}-predictions.csv"
    response = Response(result.content, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f"attachment; filename={quote_header_value(filename, allow_token=False)}"
    )
    return response


@bp.post("/v1/models/<name>:predict")
@requires("predict")
@bp.doc(
    summary="Predict (TF Serving / KServe V1 REST convention)",
    responses={200: "predictions", 404: "unknown model", 422: "invalid instances"},
)
def predict_kserve(name: str) -> Response:
    ctx = current_context()
    result = predict(ctx, name, **request_data())
    return json_response(kserve_payload(result))


@bp.get("/v1/models/<name>")
@requires("predict")
@bp.doc(
    summary="Model status (KServe V1 / TF Serving convention)",
    responses={200: "name, ready, model_version_status", 404: "unknown model"},
)
def model_status_kserve(name: str) -> Response:
    if name.endswith(":predict"):  # GET on the predict route, which only takes POST
        raise MethodNotAllowed(valid_methods=["POST"])
    return json_response(model_status(current_context(), name))


def document_request_bodies(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Add the predict request and response bodies to the OpenAPI document.

    The views parse their bodies with orjson directly (no schema library on
    the hot path), so the bodies are described here instead of by a schema;
    so are the query parameters (checked by :func:`parse_selector`) and the CSV
    route's ``text/csv`` answer.
    """
    if isinstance(spec, str):  # only with SPEC_PROCESSOR_PASS_OBJECT, which mlserve leaves off
        return spec
    paths = spec.get("paths", {})
    # apiflask turns the rule "/v1/models/<name>:predict" into "/v1/models/{predict".
    if MANGLED_KSERVE_PATH in paths:
        paths[KSERVE_PATH] = paths.pop(MANGLED_KSERVE_PATH)
    for path, item in paths.items():
        if path.endswith("/predict/csv"):
            _document_csv(item.get("post", {}))
        if path.endswith("/explain"):
            item.get("post", {})["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": PREDICT_BODY}},
            }
            item["post"]["parameters"] = [*item["post"].get("parameters", []), *QUERY_PARAMETERS]
        if path.endswith("/predict") or path.endswith(":predict"):
            operation = item.get("post", {})
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": PREDICT_BODY}},
            }
            operation.setdefault("responses", {}).setdefault("200", {})["content"] = {
                "application/json": {"schema": PREDICT_RESPONSE}
            }
            if path.startswith("/api/"):
                operation["parameters"] = [*operation.get("parameters", []), *QUERY_PARAMETERS]
    return spec


def _document_csv(operation: dict[str, Any]) -> None:
    """The CSV route's query parameters and its ``text/csv`` answer."""
    operation["parameters"] = [*operation.get("parameters", []), *QUERY_PARAMETERS]
    answer = operation.setdefault("responses", {}).setdefault("200", {})
    answer["content"] = {"text/csv": {"schema": {"type": "string"}}}
