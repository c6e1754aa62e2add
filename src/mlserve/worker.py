"""The job worker process: Huey consumer, heartbeat, recovery of jobs whose worker died.

A worker records a heartbeat row every ``worker_heartbeat_interval_s``. A job
left ``running`` by a worker whose heartbeat is older than
``worker_heartbeat_timeout_s`` (the process was killed) is marked ``failed`` and
its partial artifact removed; the version row is never written for it, because
registration and the job's success are one transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import delete, select

from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.jobs import artifact_key, onnx_artifact_key
from mlserve.models import TrainingJob, WorkerHeartbeat, as_utc, utcnow
from mlserve.online import schedule_due

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
    """Check what serving and training need: the database (schema included) and a worker.

    Returns
    -------
    dict
        ``{"database": ..., "worker": ...}``, each ``"ok"`` or the problem.
    """
    if not ctx.db.ping():
        return {"database": "unreachable", "worker": "unknown"}
    try:
        workers = live_workers(ctx)  # also proves the schema is there
        alive = ctx.settings.jobs_immediate or bool(workers)
    except MlserveError as exc:
        return {"database": exc.message, "worker": "unknown"}
    return {"database": "ok", "worker": "ok" if alive else "no live worker"}


def recover_stale_jobs(ctx: Context) -> list[str]:
    """Fail ``running`` jobs whose worker stopped sending heartbeats; return their ids."""
    alive = {row.worker_id for row in live_workers(ctx)}
    failed: list[str] = []
    with ctx.db.session() as session:
        running = session.scalars(select(TrainingJob).where(TrainingJob.status == "running"))
        for job in running:
            if job.worker_id in alive:
                continue
            job.status, job.stage, job.finished_at = "failed", "failed", utcnow()
            job.error = "the worker running this job stopped before it finished"
            failed.append(job.id)
    for job_id in failed:
        ctx.store.delete(artifact_key(job_id))
        ctx.store.delete(onnx_artifact_key(job_id))
        log.warning("training job %s failed: its worker stopped", job_id)
    return failed


def _prune_heartbeats(ctx: Context) -> None:
    cutoff = utcnow() - timedelta(days=1)
    with ctx.db.session() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < cutoff))


def _housekeeping(
    ctx: Context, worker_id: str, stop: threading.Event, parent_pid: int | None
) -> None:
    online_checked = time.monotonic()
    while not stop.wait(ctx.settings.worker_heartbeat_interval_s):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.error("the service that started this worker is gone; exiting")
            os._exit(1)
        try:
            beat(ctx, worker_id)
            recover_stale_jobs(ctx)
            every_s = ctx.settings.online_update_every_s
            if every_s > 0 and time.monotonic() - online_checked >= min(every_s, 60.0):
                online_checked = time.monotonic()
                schedule_due(ctx)
        except Exception:  # keep beating through a database outage
            log.exception("worker housekeeping failed")


def run_worker(ctx: Context, threads: int = 1, parent_pid: int | None = None) -> None:
    """Consume training jobs until interrupted (SIGINT/SIGTERM).

    Parameters
    ----------
    ctx : Context
        Built from the same settings as the service.
    threads : int
        Jobs run concurrently by this process.
    parent_pid : int, optional
        Exit when this process is no longer our parent (an embedded worker
        must not outlive a killed service).
    """
    worker_id = new_worker_id()
    ctx.queue.worker_id = worker_id
    if ctx.settings.is_sqlite:
        ctx.db.upgrade()
    ctx.store.sweep_temporaries()
    beat(ctx, worker_id)
    _prune_heartbeats(ctx)
    recover_stale_jobs(ctx)
    stop = threading.Event()
    keeper = threading.Thread(
        target=_housekeeping,
        args=(ctx, worker_id, stop, parent_pid),
        name="mlserve-heartbeat",
        daemon=True,
    )
    keeper.start()
    consumer = ctx.queue.huey.create_consumer(
        workers=threads,
        worker_type="thread",
        periodic=False,
        max_delay=ctx.settings.job_poll_interval_s,
        check_worker_health=True,
    )
    log.info("worker %s consuming jobs from %s", worker_id, ctx.settings.resolved_queue_url)
    try:
        consumer.run()
    finally:
        stop.set()
