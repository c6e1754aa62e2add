"""Cancelling a training job.

``POST /api/v1/training-jobs/{id}/cancel`` marks a queued or running job ``cancelled``
at once. A queued job is then never claimed (:func:`mlserve.jobs.service.execute_job`
claims only ``queued`` jobs). A running job stops at its next progress report, that is
at the next stage or cross-validation fold (and every epoch report of ``torch_mlp``):
the report finds the job cancelled and raises :class:`JobCancelled`, the worker deletes
what it wrote, and the registration, which checks the status in its own transaction,
never registers a cancelled job. So a cancelled job has no version and leaves no file.

The time limit (``max_job_seconds``) stops a job at the same points: the progress
report finds the job past its :class:`Deadline` and raises :class:`JobTooLong`, and the
job fails with an error naming the limit, again with no version and no file.
"""

from __future__ import annotations

import time

from mlserve.context import Context
from mlserve.errors import Conflict, MlserveError, NotFound
from mlserve.store.database import update_where
from mlserve.store.orm import TrainingJob, utcnow

CANCELLABLE = frozenset({"queued", "running"})


class JobCancelled(Exception):
    """The job was cancelled while it ran; the worker stops and cleans up."""


class JobTooLong(MlserveError):
    """The job ran past ``max_job_seconds``; it fails and the worker cleans up."""


class Deadline:
    """The time limit of one running job.

    Parameters
    ----------
    limit_s : float
        ``max_job_seconds``, counted from construction (the job's start), in seconds.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.started = time.monotonic()

    def check(self, stage: str) -> None:
        """Raise if the job has run longer than the limit.

        Raises
        ------
        JobTooLong
            Message naming ``max_job_seconds``, the time run and ``stage``, the step
            the job stopped before.
        """
        elapsed = time.monotonic() - self.started
        if elapsed > self.limit_s:
            raise JobTooLong(
                f"the job ran longer than max_job_seconds={self.limit_s:g} "
                f"(MLSERVE_MAX_JOB_SECONDS): stopped after {elapsed:.1f} s, before "
                f"{stage!r}; train on fewer rows or folds, or raise the limit",
                {"max_job_seconds": self.limit_s, "elapsed_s": round(elapsed, 3), "stage": stage},
            )


def cancel_job(ctx: Context, job_id: str) -> TrainingJob:
    """Mark a queued or running job ``cancelled``; return it.

    Cancelling a job already ``cancelled`` returns it unchanged. One conditional
    ``UPDATE ... WHERE status IN ('queued', 'running')``: a job that succeeds or fails
    while the cancel is on its way keeps its outcome (and the cancel is refused), on
    SQLite too, where ``SELECT ... FOR UPDATE`` locks nothing.

    Raises
    ------
    NotFound
        Unknown job.
    Conflict
        The job already succeeded or failed.
    """
    with ctx.db.session() as session:
        cancelled = update_where(
            session,
            TrainingJob,
            TrainingJob.id == job_id,
            TrainingJob.status.in_(sorted(CANCELLABLE)),
            status="cancelled",
            stage="cancelled",
            finished_at=utcnow(),
        )
        job = session.get(TrainingJob, job_id)  # read after the write: what it left
        if job is None:
            raise NotFound.of("training job", job_id)
        if cancelled == 0 and job.status != "cancelled":
            raise Conflict(
                f"training job {job_id!r} has already {job.status}; only queued or running "
                "jobs can be cancelled",
                {"status": job.status},
            )
        return job
