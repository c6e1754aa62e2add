"""Prediction endpoints: mlserve's own and the TF Serving / KServe V1 convention."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, request
from werkzeug.http import quote_header_value

from mlserve.api.jsonio import json_response, read_json_body
from mlserve.api.schemas import PredictCsvIn
from mlserve.api.security import requires
from mlserve.errors import ValidationFailed
from mlserve.serving import PredictionResult, csvio, predict

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
            "items": {"type": "object", "additionalProperties": True},
            "description": "one {feature: value} object per row",
        },
        "inputs": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "items": {}},
            "description": "columnar: {feature: [value per row]}, all lists of one length",
        },
    },
    "minProperties": 1,
    "maxProperties": 1,
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
    },
}

BODY_FIELDS = frozenset({"instances", "inputs"})
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


def _data() -> dict[str, Any]:
    """``{"instances": ...}`` or ``{"inputs": ...}`` from the body, as keyword arguments."""
    body = read_json_body()
    if not isinstance(body, dict) or len(set(body) & BODY_FIELDS) != 1:
        raise ValidationFailed(
            'body must be {"instances": [...]} or {"inputs": {...}}', {"field": "instances"}
        )
    extra = sorted(set(body) - BODY_FIELDS)
    if extra:
        raise ValidationFailed(f"unknown field {extra[0]!r}", {"field": extra[0]})
    return body


def _selector() -> tuple[str | None, int | None]:
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
    alias, version = _selector()
    data = _data()
    result = predict(current_app.extensions["mlserve"], name, alias=alias, version=version, **data)
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
    alias, version = _selector()
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("send the CSV as multipart field 'file'", {"field": "file"})
    ctx = current_app.extensions["mlserve"]
    result = csvio.predict_csv(
        ctx, name, upload.filename or "upload.csv", upload.stream.read(), alias, version
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
    ctx = current_app.extensions["mlserve"]
    result = predict(ctx, name, **_data())
    return json_response({"predictions": result.predictions, "prediction_id": result.prediction_id})


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
