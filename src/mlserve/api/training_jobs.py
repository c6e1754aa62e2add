"""/api/v1/training-jobs"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint

from mlserve.api.current import current_context
from mlserve.api.schemas import JobListOut, JobOut, PageIn
from mlserve.api.security import key_prefix, requires
from mlserve.jobs import cancel
from mlserve.lazy import lazy_module
from mlserve.training.spec import TrainSpec

if TYPE_CHECKING:
    from mlserve.jobs import service as jobs
else:
    jobs = lazy_module("mlserve.jobs.service")

bp = APIBlueprint(
    "training_jobs", __name__, url_prefix="/api/v1/training-jobs", tag="training jobs"
)


@bp.post("")
@requires("train")
@bp.input(TrainSpec, location="json")
@bp.output(JobOut, status_code=202)
@bp.doc(
    summary="Start a training job",
    responses={404: "unknown dataset", 422: "invalid spec or hyper-parameter"},
)
def create_job(json_data: TrainSpec) -> dict[str, Any]:
    ctx = current_context()
    return jobs.job_view(jobs.submit_training_job(ctx, json_data, key_prefix=key_prefix()))


@bp.get("")
@requires("read")
@bp.input(PageIn, location="query")
@bp.output(JobListOut)
@bp.doc(summary="List training jobs, newest first")
def list_jobs(query_data: dict[str, int]) -> dict[str, Any]:
    ctx = current_context()
    rows = jobs.list_jobs(ctx, query_data["limit"], query_data["offset"])
    return {"jobs": [jobs.job_view(job) for job in rows]}


@bp.get("/<job_id>")
@requires("read")
@bp.output(JobOut)
@bp.doc(
    summary="A job's status, progress, stage, error and resulting version",
    responses={404: "not found"},
)
def get_job(job_id: str) -> dict[str, Any]:
    return jobs.job_view(jobs.get_job(current_context(), job_id))


@bp.post("/<job_id>/cancel")
@requires("train")
@bp.output(JobOut)
@bp.doc(
    summary="Cancel a queued or running job (it stops at its next stage or fold)",
    responses={404: "not found", 409: "the job already succeeded or failed"},
)
def cancel_job(job_id: str) -> dict[str, Any]:
    return jobs.job_view(cancel.cancel_job(current_context(), job_id))
