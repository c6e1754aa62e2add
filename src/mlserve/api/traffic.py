"""/api/v1/models/{name}/aliases/{alias}: an alias's traffic policy, comparison, promotion.

Setting the policy is ``PUT .../aliases/{alias}`` (:mod:`mlserve.api.models`); docs/traffic.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from apiflask.fields import Integer
from apiflask.validators import Range
from flask import Response

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response
from mlserve.api.models import alias_view
from mlserve.api.schemas import AliasOut, PromoteIn
from mlserve.api.security import requires
from mlserve.lazy import lazy_module
from mlserve.monitoring.prediction_log import MAX_WINDOW

if TYPE_CHECKING:
    from mlserve.monitoring import comparison
    from mlserve.registry import service as registry
else:
    comparison = lazy_module("mlserve.monitoring.comparison")
    registry = lazy_module("mlserve.registry.service")

bp = APIBlueprint("traffic", __name__, url_prefix="/api/v1/models", tag="models")
WINDOW_QUERY: dict[str, Any] = {
    "window": Integer(
        load_default=None,
        validate=Range(1, MAX_WINDOW),
        metadata={
            "description": "rows: logged requests and feedback (default: live_metrics_window)"
        },
    )
}


@bp.get("/<name>/aliases/<alias>")
@requires("read")
@bp.output(AliasOut)
@bp.doc(summary="An alias: its primary version and traffic policy", responses={404: "not found"})
def get_alias(name: str, alias: str) -> dict[str, Any]:
    return alias_view(registry.get_alias(current_context(), name, alias))


@bp.get("/<name>/aliases/<alias>/comparison")
@requires("read")
@bp.input(WINDOW_QUERY, location="query")
@bp.doc(
    summary="Compare the versions of an alias's traffic policy: requests, errors, latency, "
    "agreement with the primary, live metrics",
    responses={404: "unknown model or alias", 422: "invalid window"},
)
def get_comparison(name: str, alias: str, query_data: dict[str, Any]) -> Response:
    ctx = current_context()
    window = query_data.get("window") or ctx.settings.live_metrics_window
    return json_response(comparison.compare(ctx, name, alias, window))


@bp.post("/<name>/aliases/<alias>/promote")
@requires("train")
@bp.input(PromoteIn, location="json")
@bp.output(AliasOut)
@bp.doc(
    summary="Make a candidate of the alias's policy its primary (the policy ends)",
    responses={
        404: "unknown model or alias",
        409: "the alias has no policy",
        422: "not a candidate, or several",
    },
)
def promote(name: str, alias: str, json_data: PromoteIn) -> dict[str, Any]:
    return alias_view(registry.promote(current_context(), name, alias, json_data.version))
