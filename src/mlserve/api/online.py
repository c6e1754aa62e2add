"""Online learning, feedback, live metrics and drift over REST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from flask import Response, request

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response, read_json_body
from mlserve.api.security import key_prefix, requires
from mlserve.errors import ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.monitoring.prediction_log import MAX_WINDOW

if TYPE_CHECKING:
    from mlserve.jobs import service as jobs
    from mlserve.monitoring import live as monitoring
    from mlserve.online import policy as online
    from mlserve.online import samples
else:
    jobs = lazy_module("mlserve.jobs.service")
    monitoring = lazy_module("mlserve.monitoring.live")
    online = lazy_module("mlserve.online.policy")
    samples = lazy_module("mlserve.online.samples")

bp = APIBlueprint("online", __name__, tag="online learning")


def _ctx() -> Any:
    return current_context()


@bp.post("/api/v1/models/<name>/samples")
@requires("train")
@bp.doc(
    summary="Store labelled samples; incremental models learn from them (online updates)",
    responses={
        201: "stored",
        404: "unknown model",
        413: "too many samples",
        422: "invalid instance or target",
    },
)
def post_samples(name: str) -> Response:
    body = read_json_body()
    if not isinstance(body, dict) or set(body) != {"instances", "targets"}:
        raise ValidationFailed(
            'body must be {"instances": [...], "targets": [...]}', {"field": "instances"}
        )
    result = samples.store_samples(
        _ctx(), name, body["instances"], body["targets"], key_prefix=key_prefix()
    )
    return json_response(result, 201)


@bp.get("/api/v1/models/<name>/online")
@requires("read")
@bp.doc(
    summary="Online learning state: head version, cursor, waiting samples, and the "
    "prequential error of the stream per version and per update"
)
def get_online(name: str) -> Response:
    return json_response(online.state_view(_ctx(), name))


@bp.post("/api/v1/models/<name>/online-update")
@requires("train")
@bp.doc(
    summary="Queue an online update now (applies waiting samples with partial_fit)",
    responses={202: "queued", 404: "unknown model", 409: "not incremental (use retrain)"},
)
def post_online_update(name: str) -> Response:
    return json_response(online.request_update(_ctx(), name), 202)


@bp.post("/api/v1/models/<name>/retrain")
@requires("train")
@bp.doc(
    summary="Train a new version on the dataset plus the stored samples (a training job)",
    responses={202: "job queued", 404: "unknown model", 409: "no training job to repeat"},
)
def post_retrain(name: str) -> Response:
    job = online.retrain(_ctx(), name, key_prefix=key_prefix())
    return json_response(jobs.job_view(job), 202)


@bp.post("/api/v1/predictions/<prediction_id>/feedback")
@requires("predict")
@bp.doc(
    summary="Attach the true value(s) to a logged prediction",
    responses={
        200: "recorded",
        404: "no logged prediction",
        409: "already given",
        422: "invalid targets",
    },
)
def post_feedback(prediction_id: str) -> Response:
    return json_response(monitoring.record_feedback(_ctx(), prediction_id, read_json_body()))


@bp.get("/api/v1/models/<name>/versions/<int:version>/live-metrics")
@requires("read")
@bp.doc(
    summary="Metrics of a version on its most recent feedback (sliding window of rows)",
    responses={200: "live metrics", 404: "not found", 422: "invalid window"},
)
def get_live_metrics(name: str, version: int) -> Response:
    ctx = _ctx()
    window = monitoring.check_window(request.args.get("window"), ctx.settings.live_metrics_window)
    return json_response(monitoring.live_metrics(ctx, name, version, window))


@bp.get("/api/v1/models/<name>/versions/<int:version>/drift")
@requires("read")
@bp.doc(
    summary="Input drift: PSI per feature and KS for numeric features, against the reference",
    responses={
        200: "drift per feature",
        404: "not found",
        409: "no reference statistics",
        422: "invalid query",
    },
)
def get_drift(name: str, version: int) -> Response:
    ctx = _ctx()
    window = monitoring.check_window(request.args.get("window"), ctx.settings.live_metrics_window)
    source = request.args.get("source", "predictions")
    return json_response(monitoring.drift(ctx, name, version, window, source))


SAMPLES_BODY = {
    "type": "object",
    "required": ["instances", "targets"],
    "additionalProperties": False,
    "properties": {
        "instances": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "additionalProperties": True},
            "description": "one {feature: value} object per sample, as for predictions",
        },
        "targets": {
            "type": "array",
            "minItems": 1,
            "items": {},
            "description": "the true target of each instance: a number, or one of the classes",
        },
    },
}
FEEDBACK_BODY = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": {
        "targets": {"type": "array", "minItems": 1, "items": {}},
        "target": {"description": "for a one-row prediction"},
    },
}
WINDOW = {
    "name": "window",
    "in": "query",
    "required": False,
    "description": "the most recent rows to use (default: live_metrics_window)",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
}
SOURCE = {
    "name": "source",
    "in": "query",
    "required": False,
    "description": "inputs to compare: logged predictions (default) or stored samples",
    "schema": {"type": "string", "enum": ["predictions", "samples"]},
}


def document_online(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Describe what the views of this module parse by hand: bodies, query parameters,
    and the text answer of ``/metrics``."""
    if isinstance(spec, str):  # only with SPEC_PROCESSOR_PASS_OBJECT, which mlserve leaves off
        return spec
    paths = spec.get("paths", {})
    bodies = {
        "/api/v1/models/{name}/samples": SAMPLES_BODY,
        "/api/v1/predictions/{prediction_id}/feedback": FEEDBACK_BODY,
    }
    for path, schema in bodies.items():
        if path in paths:
            paths[path]["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
    for path, parameters in (
        ("/api/v1/models/{name}/versions/{version}/live-metrics", [WINDOW]),
        ("/api/v1/models/{name}/versions/{version}/drift", [WINDOW, SOURCE]),
    ):
        if path in paths:
            operation = paths[path]["get"]
            operation["parameters"] = [*operation.get("parameters", []), *parameters]
    if "/metrics" in paths:
        paths["/metrics"]["get"]["responses"]["200"] = {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    return spec
