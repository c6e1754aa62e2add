"""Liveness and readiness."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response
from mlserve.api.schemas import HealthOut
from mlserve.api.security import public
from mlserve.jobs.heartbeat import readiness

bp = APIBlueprint("health", __name__, tag="health")
HEALTH_BODY = b'{"status":"ok"}'


@bp.get("/health")
@public
@bp.output(HealthOut)
@bp.doc(summary="Liveness: the process answers")
def health() -> Response:
    return Response(HEALTH_BODY, mimetype="application/json")


@bp.get("/ready")
@public
@bp.output(HealthOut)
@bp.doc(
    summary="Readiness: database reachable and a job worker alive", responses={503: "not ready"}
)
def ready() -> Response:
    checks = readiness(current_context())
    if set(checks.values()) == {"ok"}:
        return json_response({"status": "ready", "checks": checks})
    return json_response(
        {"error": {"code": "service_unavailable", "message": "not ready", "details": checks}}, 503
    )
