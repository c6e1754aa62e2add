"""Worker heartbeats: which job workers are alive, readiness, and recovery of jobs whose
worker died.

A worker records a heartbeat row every ``worker_heartbeat_interval_s``. A job
left ``running`` by a worker whose heartbeat is older than
``worker_heartbeat_timeout_s`` (the process was killed) is marked ``failed`` and
its partial artifact removed; the version row is never written for it, because
registration and the job's success are one transaction. An online update left running by
such a worker becomes the model's online ``last_error``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.lazy import lazy_module
from mlserve.store.database import update_where
from mlserve.store.orm import (
    OnlineState,
    OnlineUpdateRun,
    TrainingJob,
    WorkerHeartbeat,
    as_utc,
    utcnow,
)

if TYPE_CHECKING:
    from mlserve.jobs import service
else:
    service = lazy_module("mlserve.jobs.service")

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """``host:pid:random`` identifier of this worker process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def beat(ctx: Context, worker_id: str) -> None:
    """Record that ``worker_id`` is alive now."""
    with ctx.db.session() as session:
        row = session.get(WorkerHeartbeat, worker_id)
        if row is None:
            session.add(
                WorkerHeartbeat(
                    worker_id=worker_id, hostname=socket.gethostname()[:255], pid=os.getpid()
                )
            )
        else:
            row.last_seen_at = utcnow()


def live_workers(ctx: Context) -> list[WorkerHeartbeat]:
    """Workers whose last heartbeat is within ``worker_heartbeat_timeout_s``."""
    cutoff = utcnow() - timedelta(seconds=ctx.settings.worker_heartbeat_timeout_s)
    with ctx.db.session() as session:
        rows = session.scalars(select(WorkerHeartbeat))
        return [row for row in rows if as_utc(row.last_seen_at) >= cutoff]


def readiness(ctx: Context) -> dict[str, str]:
    """Check what serving and training need: the database (schema included), a worker and
    the preloaded versions.

    Returns
    -------
    dict
        ``{"database": ..., "worker": ...}``, each ``"ok"`` or the problem, and
        ``"models"`` in an HTTP worker that preloads versions (``"ok"`` once they
        are loaded: :mod:`mlserve.serving.preload`).
    """
    checks = _store_checks(ctx)
    if ctx.preload is not None:
        checks["models"] = ctx.preload.status()
    return checks


def _store_checks(ctx: Context) -> dict[str, str]:
    if not ctx.db.ping():
        return {"database": "unreachable", "worker": "unknown"}
    try:
        workers = live_workers(ctx)  # also proves the schema is there
        alive = ctx.settings.jobs_immediate or bool(workers)
    except MlserveError as exc:
        return {"database": exc.message, "worker": "unknown"}
    return {"database": "ok", "worker": "ok" if alive else "no live worker"}


def recover_stale_jobs(ctx: Context) -> list[str]:
    """Fail ``running`` jobs whose worker stopped sending heartbeats; return their ids.

    Online updates such a worker was running are recorded as failed too (the model's
    online ``last_error``).
    """
    alive = {row.worker_id for row in live_workers(ctx)}
    failed: list[str] = []
    with ctx.db.session() as session:
        running = session.execute(
            select(TrainingJob.id, TrainingJob.worker_id).where(TrainingJob.status == "running")
        ).all()
        for job_id, worker_id in running:
            if worker_id in alive:
                continue
            stopped = update_where(  # conditional: a job cancelled meanwhile stays so
                session,
                TrainingJob,
                TrainingJob.id == job_id,
                TrainingJob.status == "running",
                status="failed",
                stage="failed",
                finished_at=utcnow(),
                error="the worker running this job stopped before it finished",
            )
            if stopped == 1:
                failed.append(job_id)
    for job_id in failed:
        ctx.store.delete(service.artifact_key(job_id))
        ctx.store.delete(service.onnx_artifact_key(job_id))
        log.warning("training job %s failed: its worker stopped", job_id)
    _recover_online_updates(ctx, alive)
    return failed


def _recover_online_updates(ctx: Context, alive: set[str]) -> list[str]:
    """Record, as the model's online ``last_error``, an online update whose worker
    stopped sending heartbeats in the middle of it; return the models concerned.

    Nothing else needs undoing: an update commits in one transaction, so the cursor,
    versions and aliases are as before it, and the next update applies the same samples.
    """
    stopped: list[str] = []
    with ctx.db.session() as session:
        for run in session.scalars(select(OnlineUpdateRun)):
            if run.worker_id in alive:
                continue
            state = session.get(OnlineState, run.model_name, with_for_update=True)
            if state is not None:  # the worker created it before starting
                state.last_error = (
                    f"the worker running the online update started "
                    f"{as_utc(run.started_at):%Y-%m-%d %H:%M:%S} UTC stopped before it "
                    f"finished (worker {run.worker_id}); its samples are still pending"
                )
                state.updated_at = utcnow()
            session.delete(run)
            stopped.append(run.model_name)
    for name in stopped:
        log.warning("online update of %s failed: its worker stopped", name)
    return stopped


def prune_heartbeats(ctx: Context) -> None:
    cutoff = utcnow() - timedelta(days=1)
    with ctx.db.session() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < cutoff))
