"""Worker heartbeats, readiness and recovery of jobs whose worker died."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import select
from threadpoolctl import threadpool_limits

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.jobs import service as jobs
from mlserve.jobs.cancel import cancel_job
from mlserve.jobs.heartbeat import beat, live_workers, recover_stale_jobs
from mlserve.jobs.service import artifact_key, get_job
from mlserve.jobs.threads import limit_job_threads, native_thread_counts, native_threads_per_job
from mlserve.jobs.worker import create_consumer
from mlserve.settings import Settings
from mlserve.store.database import Database
from mlserve.store.orm import Dataset, TrainingJob, WorkerHeartbeat, new_id, utcnow
from tests.conftest import just_before_an_update, keyed_client
from tests.jobs.test_jobs import _submit


@pytest.fixture
def queued_ctx(tmp_path: Path) -> Context:
    """A context with a real (SQLite) queue, as the service has."""
    app = create_app(Settings(home=tmp_path, log_level="WARNING", worker_heartbeat_timeout_s=5))
    ctx: Context = context_of(app)
    return ctx


def _running_job(ctx: Context, worker_id: str) -> str:
    with ctx.db.session() as session:
        session.add(
            Dataset(
                id="d" * 32,
                name="d",
                filename="d.csv",
                source_format="csv",
                n_rows=1,
                n_columns=1,
                size_bytes=1,
                artifact_key="datasets/d.parquet",
                sha256="0" * 64,
                columns=[],
            )
        )
    job = TrainingJob(
        id=new_id(),
        dataset_id="d" * 32,
        model_name="m",
        spec={},
        status="running",
        worker_id=worker_id,
        started_at=utcnow(),
    )
    with ctx.db.session() as session:
        session.merge(job)
    ctx.store.put_bytes(artifact_key(job.id), b"half a model")
    return job.id


def _age_heartbeat(ctx: Context, worker_id: str, seconds: float) -> None:
    with ctx.db.session() as session:
        row = session.get(WorkerHeartbeat, worker_id)
        assert row is not None
        row.last_seen_at = utcnow() - timedelta(seconds=seconds)


def test_recover_stale_jobs_fails_job_of_dead_worker_and_removes_artifact(
    queued_ctx: Context,
) -> None:
    beat(queued_ctx, "dead-worker")
    _age_heartbeat(queued_ctx, "dead-worker", 60)
    job_id = _running_job(queued_ctx, "dead-worker")
    assert recover_stale_jobs(queued_ctx) == [job_id]
    job = get_job(queued_ctx, job_id)
    assert job.status == "failed"
    assert job.error is not None and "worker" in job.error
    assert not queued_ctx.store.exists(artifact_key(job_id))


def test_recover_stale_jobs_leaves_a_job_cancelled_meanwhile_cancelled(
    queued_ctx: Context,
) -> None:
    """The job is cancelled just before the recovery's write reaches the database."""
    job_id = _running_job(queued_ctx, "dead-worker")
    with just_before_an_update(
        queued_ctx, "training_job", lambda: cancel_job(queued_ctx, job_id).status
    ) as raced:
        assert recover_stale_jobs(queued_ctx) == []
    assert raced == ["cancelled"]
    job = get_job(queued_ctx, job_id)
    assert (job.status, job.stage, job.error) == ("cancelled", "cancelled", None)


def test_recover_stale_jobs_leaves_job_of_live_worker_running(queued_ctx: Context) -> None:
    beat(queued_ctx, "live-worker")
    job_id = _running_job(queued_ctx, "live-worker")
    assert recover_stale_jobs(queued_ctx) == []
    assert get_job(queued_ctx, job_id).status == "running"
    assert queued_ctx.store.exists(artifact_key(job_id))


def test_recover_stale_jobs_fails_job_whose_worker_never_beat(queued_ctx: Context) -> None:
    job_id = _running_job(queued_ctx, "unknown-worker")
    assert recover_stale_jobs(queued_ctx) == [job_id]


def test_live_workers_uses_heartbeat_timeout(queued_ctx: Context) -> None:
    beat(queued_ctx, "a")
    beat(queued_ctx, "b")
    _age_heartbeat(queued_ctx, "b", 6)
    assert [row.worker_id for row in live_workers(queued_ctx)] == ["a"]
    beat(queued_ctx, "b")
    assert sorted(row.worker_id for row in live_workers(queued_ctx)) == ["a", "b"]


def test_ready_is_503_without_a_live_worker_and_200_with_one(
    queued_ctx: Context, tmp_path: Path
) -> None:
    app = create_app(queued_ctx.settings)
    client = keyed_client(app)
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["error"]["details"] == {"database": "ok", "worker": "no live worker"}
    beat(context_of(app), "w1")
    assert client.get("/ready").get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "worker": "ok"},
    }


def test_ready_is_503_when_database_unreachable(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, jobs_immediate=True, log_level="WARNING"))
    ctx: Context = context_of(app)
    client = keyed_client(app)
    ctx.db.dispose()
    ctx.db = Database(f"sqlite:///{tmp_path}/missing-dir/never.db")
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["error"]["details"]["database"] == "unreachable"
    assert client.get("/health").status_code == 200
    listing = client.get("/api/v1/datasets")
    assert listing.status_code == 503
    assert listing.get_json()["error"]["code"] == "service_unavailable"


def test_unmigrated_database_is_503_naming_the_fix(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            home=tmp_path,
            jobs_immediate=True,
            log_level="WARNING",
            migrate_on_start=False,
            auth=False,  # no schema, so no key table: nothing but the 503 to check
        )
    )
    client = app.test_client()
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "mlserve db upgrade" in ready.get_json()["error"]["details"]["database"]
    models = client.get("/api/v1/models")
    assert models.status_code == 503
    assert "mlserve db upgrade" in models.get_json()["error"]["message"]


@pytest.fixture
def restore_native_threads() -> Iterator[None]:
    """Job threads limit BLAS for the whole process and keep it: put it back after."""
    before = native_thread_counts()
    yield
    threadpool_limits(limits=before)


@pytest.mark.usefixtures("restore_native_threads")
def test_worker_runs_jobs_concurrency_jobs_at_once_with_native_threads_divided(
    queued_app: Flask, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs meet at a barrier inside their first fold: both must be running at once
    on the consumer's two thread workers, each under the per-job native thread limit."""
    ctx: Context = context_of(queued_app)
    ctx.settings.jobs_concurrency = 2
    seen: dict[str, Any] = {"statuses": [], "threads": []}

    def both_running() -> None:
        with ctx.db.session() as session:
            seen["statuses"] = sorted(job.status for job in session.scalars(select(TrainingJob)))

    barrier = threading.Barrier(2, action=both_running, timeout=60)
    original = jobs._progress

    def meet(context: Context, job_id: str, fraction: float, stage: str) -> None:
        original(context, job_id, fraction, stage)
        if stage == "cross-validation 1/2":
            seen["threads"].append(native_thread_counts())
            barrier.wait()

    monkeypatch.setattr(jobs, "_progress", meet)
    submitted = [_submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=2)["id"]]
    submitted.append(_submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=2)["id"])
    consumer = create_consumer(ctx)
    consumer.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
            get_job(ctx, job_id).status in ("queued", "running") for job_id in submitted
        ):
            time.sleep(0.1)
    finally:
        consumer.stop(graceful=True)
    assert [get_job(ctx, job_id).status for job_id in submitted] == ["succeeded"] * 2
    assert seen["statuses"] == ["running", "running"]
    per_job = native_threads_per_job(2)
    assert len(seen["threads"]) == 2
    for counts in seen["threads"]:
        assert counts and all(n <= per_job for n in counts.values()), counts


@pytest.mark.parametrize(
    ("concurrency", "cores", "threads"),
    [(1, 8, 8), (2, 8, 4), (3, 8, 2), (8, 8, 1), (16, 8, 1), (2, 1, 1), (0, 4, 4)],
)
def test_native_threads_per_job_divides_the_cores(
    concurrency: int, cores: int, threads: int
) -> None:
    assert native_threads_per_job(concurrency, cores) == threads


@pytest.mark.usefixtures("restore_native_threads")
def test_limit_job_threads_applies_in_the_calling_thread() -> None:
    counts: list[dict[str, int]] = []

    def job() -> None:
        limit_job_threads(1)
        counts.append(native_thread_counts())

    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    assert counts[0] and set(counts[0].values()) == {1}
