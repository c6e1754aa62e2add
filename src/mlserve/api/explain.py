"""POST /api/v1/models/{name}/explain: SHAP contributions per row (docs/explain.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apiflask import APIBlueprint
from flask import Response

from mlserve.api.current import current_context
from mlserve.api.jsonio import json_response
from mlserve.api.predict import request_data, selector
from mlserve.api.security import requires
from mlserve.lazy import lazy_module

if TYPE_CHECKING:
    from mlserve.serving import explain as serving_explain
else:
    serving_explain = lazy_module("mlserve.serving.explain")

bp = APIBlueprint("explain", __name__, tag="predict")


@bp.post("/api/v1/models/<name>/explain")
@requires("predict")
@bp.doc(
    summary="Explain predictions: per row, the base value and one contribution per input "
    "feature adding up to the model's output (SHAP)",
    responses={
        200: "model_version, method, output_space, features, explanations (one per row)",
        404: "unknown model, alias or version",
        409: "artifact corrupt",
        413: "more rows than explain_max_rows",
        422: "invalid instances, no background sample, or over explain_budget_s",
    },
)
def explain_v1(name: str) -> Response:
    alias, version = selector()
    result = serving_explain.explain(
        current_context(), name, alias=alias, version=version, **request_data()
    )
    return json_response(result)
