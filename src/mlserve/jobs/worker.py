"""The job worker process: the Huey consumer, with heartbeat and housekeeping on a thread.

See :mod:`mlserve.jobs.heartbeat` for heartbeats and the recovery of jobs whose
worker died.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from huey.consumer import Consumer

from mlserve.context import Context
from mlserve.errors import ServiceUnavailable
from mlserve.jobs.heartbeat import beat, new_worker_id, prune_heartbeats, recover_stale_jobs
from mlserve.jobs.threads import limit_job_threads, native_threads_per_job

log = logging.getLogger(__name__)


Housekeeping = Callable[[Context], object]


def _housekeeping(
    ctx: Context,
    worker_id: str,
    stop: threading.Event,
    parent_pid: int | None,
    periodic: Sequence[Housekeeping],
) -> None:
    periodic_checked = time.monotonic()
    while not stop.wait(ctx.settings.worker_heartbeat_interval_s):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.error("the service that started this worker is gone; exiting")
            os._exit(1)
        try:
            beat(ctx, worker_id)
            recover_stale_jobs(ctx)
            every_s = ctx.settings.online_update_every_s
            if every_s > 0 and time.monotonic() - periodic_checked >= min(every_s, 60.0):
                periodic_checked = time.monotonic()
                for task in periodic:
                    task(ctx)
        except Exception:  # keep beating through a database outage
            log.exception("worker housekeeping failed")


def _wait_for_database(ctx: Context, worker_id: str, parent_pid: int | None) -> None:
    """First heartbeat and recovery, retried while the database is down or not migrated
    (exits if ``parent_pid`` is no longer the parent)."""
    while parent_pid is None or os.getppid() == parent_pid:
        try:
            beat(ctx, worker_id)
            prune_heartbeats(ctx)
            recover_stale_jobs(ctx)
            return
        except ServiceUnavailable as exc:
            log.warning("worker waiting for the database: %s", exc.message)
            time.sleep(ctx.settings.job_poll_interval_s)
    raise SystemExit(0)


def run_worker(
    ctx: Context,
    *,
    threads: int | None = None,
    parent_pid: int | None = None,
    housekeeping: Sequence[Housekeeping] = (),
) -> None:
    """Consume queued tasks (training jobs, online updates) until interrupted (SIGINT/SIGTERM).

    Parameters
    ----------
    ctx : Context
        Built from the same settings as the service
        (:func:`mlserve.bootstrap.build_context`, which sets what each task runs).
    threads : int, optional
        Tasks run concurrently by this process (thread workers); default
        ``settings.jobs_concurrency``. Each task's native thread pools get
        :func:`mlserve.jobs.threads.native_threads_per_job` threads.
    parent_pid : int, optional
        Exit when this process is no longer our parent (an embedded worker
        must not outlive a killed service).
    housekeeping : sequence of callable(ctx)
        Also run with the heartbeat, at most every ``min(online_update_every_s, 60)``
        seconds (:func:`mlserve.bootstrap.housekeeping_tasks`: the online update timer).
    """
    worker_id = new_worker_id()
    ctx.queue.worker_id = worker_id
    if ctx.settings.is_sqlite:
        ctx.db.upgrade()
    ctx.store.sweep_temporaries()
    _wait_for_database(ctx, worker_id, parent_pid)
    stop = threading.Event()
    keeper = threading.Thread(
        target=_housekeeping,
        args=(ctx, worker_id, stop, parent_pid, tuple(housekeeping)),
        name="mlserve-heartbeat",
        daemon=True,
    )
    keeper.start()
    consumer = create_consumer(ctx, threads)
    log.info("worker %s consuming jobs from %s", worker_id, ctx.settings.resolved_queue_url)
    try:
        consumer.run()
    finally:
        stop.set()


def create_consumer(ctx: Context, threads: int | None = None) -> Consumer:
    """The Huey consumer of a worker: ``threads`` thread workers, each running its tasks
    under the native thread limit of :func:`mlserve.jobs.threads.native_threads_per_job`.

    Parameters
    ----------
    threads : int, optional
        Tasks run at once; default ``ctx.settings.jobs_concurrency``.
    """
    threads = threads or ctx.settings.jobs_concurrency
    per_job = native_threads_per_job(threads)
    ctx.queue.before_task = lambda: limit_job_threads(per_job)
    log.info("running %d jobs at once, %d native threads each", threads, per_job)
    return ctx.queue.huey.create_consumer(
        workers=threads,
        worker_type="thread",
        periodic=False,
        max_delay=ctx.settings.job_poll_interval_s,
        check_worker_health=True,
    )
