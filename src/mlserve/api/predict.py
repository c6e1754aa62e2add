"""Prediction endpoints: mlserve's own and the TF Serving / KServe V1 convention."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app

from mlserve.api.jsonio import json_response, read_json_body
from mlserve.api.schemas import PredictQuery
from mlserve.errors import ValidationFailed
from mlserve.serving import PredictionResult, predict

bp = APIBlueprint("predict", __name__, tag="predict")

KSERVE_PATH = "/v1/models/{name}:predict"
MANGLED_KSERVE_PATH = "/v1/models/{predict"
PREDICT_BODY = {
    "type": "object",
    "required": ["instances"],
    "properties": {
        "instances": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "additionalProperties": True},
            "description": "one {feature: value} object per row",
        }
    },
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
    },
}


def _instances() -> Any:
    body = read_json_body()
    if not isinstance(body, dict) or "instances" not in body:
        raise ValidationFailed('body must be {"instances": [...]}', {"field": "instances"})
    extra = sorted(set(body) - {"instances"})
    if extra:
        raise ValidationFailed(f"unknown field {extra[0]!r}", {"field": extra[0]})
    return body["instances"]


def _payload(result: PredictionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "predictions": result.predictions,
        "model_name": result.model_name,
        "model_version": result.model_version,
    }
    if result.probabilities is not None:
        payload["probabilities"] = result.probabilities
        payload["classes"] = result.classes
    return payload


@bp.post("/api/v1/models/<name>/predict")
@bp.input(PredictQuery, location="query")
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
def predict_v1(name: str, query_data: dict[str, Any]) -> Response:
    ctx = current_app.extensions["mlserve"]
    result = predict(ctx, name, _instances(), query_data.get("alias"), query_data.get("version"))
    return json_response(_payload(result))


@bp.post("/v1/models/<name>:predict")
@bp.doc(
    summary="Predict (TF Serving / KServe V1 REST convention)",
    responses={200: "predictions", 404: "unknown model", 422: "invalid instances"},
)
def predict_kserve(name: str) -> Response:
    ctx = current_app.extensions["mlserve"]
    result = predict(ctx, name, _instances())
    return json_response({"predictions": result.predictions})


def document_request_bodies(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Add the predict request and response bodies to the OpenAPI document.

    The views parse their bodies with orjson directly (no schema library on
    the hot path), so the bodies are described here instead of by a schema.
    """
    if isinstance(spec, str):  # only with SPEC_PROCESSOR_PASS_OBJECT, which mlserve leaves off
        return spec
    paths = spec.get("paths", {})
    # apiflask turns the rule "/v1/models/<name>:predict" into "/v1/models/{predict".
    if MANGLED_KSERVE_PATH in paths:
        paths[KSERVE_PATH] = paths.pop(MANGLED_KSERVE_PATH)
    for path, item in paths.items():
        if path.endswith("/predict") or path.endswith(":predict"):
            operation = item.get("post", {})
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": PREDICT_BODY}},
            }
            operation.setdefault("responses", {}).setdefault("200", {})["content"] = {
                "application/json": {"schema": PREDICT_RESPONSE}
            }
    return spec
