"""``GET /metrics``: Prometheus exposition (prometheus_client) of live metrics and drift
(:mod:`mlserve.monitoring.prometheus`). Without ``public_metrics`` it needs ``read``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apiflask import APIBlueprint
from flask import Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from mlserve.api.current import current_context
from mlserve.api.security import METRICS, requires
from mlserve.lazy import lazy_module

if TYPE_CHECKING:
    from mlserve.monitoring import prometheus as collectors
else:
    collectors = lazy_module("mlserve.monitoring.prometheus")

bp = APIBlueprint("metrics", __name__, tag="monitoring")
REGISTRY = "mlserve_prometheus"


def _registry() -> CollectorRegistry:
    """The application's Prometheus registry, made on first use."""
    extensions = current_app.extensions
    if REGISTRY not in extensions:
        extensions[REGISTRY] = collectors.build_registry(current_context())
    found: CollectorRegistry = extensions[REGISTRY]
    return found


@bp.get("/metrics")
@requires(METRICS)
@bp.doc(summary="Prometheus metrics: live metrics, drift, online learning, prediction log")
def prometheus() -> Response:
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)
