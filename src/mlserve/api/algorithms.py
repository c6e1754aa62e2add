"""/api/v1/algorithms: the estimator catalogue with each algorithm's hyper-parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint

from mlserve.api.schemas import AlgorithmListOut, AlgorithmsIn
from mlserve.api.security import requires
from mlserve.lazy import lazy_module

if TYPE_CHECKING:
    from mlserve.training import algorithms
else:
    algorithms = lazy_module("mlserve.training.algorithms")

bp = APIBlueprint("algorithms", __name__, url_prefix="/api/v1/algorithms", tag="algorithms")


@bp.get("")
@requires("read")
@bp.input(AlgorithmsIn, location="query")
@bp.output(AlgorithmListOut)
@bp.doc(
    summary="Algorithms of one task (or both) with their hyper-parameters, defaults and ranges",
    responses={422: "unknown task"},
)
def list_algorithms(query_data: dict[str, Any]) -> dict[str, Any]:
    return {"algorithms": algorithms.describe_algorithms(query_data.get("task"))}
