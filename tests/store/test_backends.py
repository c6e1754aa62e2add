"""The same code on real services: PostgreSQL for metadata, Redis for the job queue.

``MLSERVE_TEST_DATABASE_URL`` (a PostgreSQL server) and ``MLSERVE_TEST_REDIS_URL``
are set by ``.ci/run``; elsewhere these tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.settings import Settings
from mlserve.store.database import MIGRATION_LOCK_ID
from tests.conftest import frame_csv, keyed_client, train, upload

DATABASE_URL = os.environ.get("MLSERVE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("MLSERVE_TEST_REDIS_URL")
needs_postgres = pytest.mark.skipif(
    not DATABASE_URL, reason="MLSERVE_TEST_DATABASE_URL is not set (no PostgreSQL server)"
)
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="MLSERVE_TEST_REDIS_URL is not set (no Redis server)"
)


@needs_postgres
def test_postgres_migrations_apply_to_empty_database(postgres_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlserve", "db", "upgrade"],
        env={**os.environ, "MLSERVE_DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(postgres_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {
        "dataset",
        "training_job",
        "registered_model",
        "model_version",
        "model_alias",
        "worker_heartbeat",
        "alembic_version",
    } <= tables


@needs_postgres
def test_postgres_unmigrated_database_is_503(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url=postgres_url,
        jobs_immediate=True,
        log_level="WARNING",
        auth=False,  # no schema, so no key table: nothing but the 503 to check
    )
    client = create_app(settings).test_client()
    for path in ("/ready", "/api/v1/models", "/api/v1/datasets"):
        response = client.get(path)
        assert response.status_code == 503, (path, response.get_json())


@needs_postgres
def test_postgres_train_register_predict_and_restart(
    postgres_url: str, tmp_path: Path, diabetes_frame: pd.DataFrame
) -> None:
    from mlserve.store.database import Database

    Database(postgres_url).upgrade()
    settings = Settings(
        home=tmp_path, database_url=postgres_url, jobs_immediate=True, log_level="WARNING"
    )
    client = keyed_client(create_app(settings))
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    for _ in range(2):
        job = train(
            client,
            dataset["id"],
            target="target",
            algorithm="ridge",
            model_name="diabetes",
            cv_folds=3,
        ).get_json()
        assert job["status"] == "succeeded", job
    assert (
        client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1}).status_code
        == 200
    )
    rows = diabetes_frame.drop(columns=["target"]).head(50).to_dict(orient="records")
    first = client.post("/api/v1/models/diabetes/predict", json={"instances": rows}).get_json()
    assert first["model_version"] == 1
    restarted = keyed_client(create_app(settings))
    model = restarted.get("/api/v1/models/diabetes").get_json()
    assert [v["version"] for v in model["versions"]] == [2, 1]
    again = restarted.post("/api/v1/models/diabetes/predict", json={"instances": rows}).get_json()
    assert again["predictions"] == first["predictions"]


def _flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


@needs_redis
def test_redis_queue_with_two_worker_processes(
    tmp_path: Path, diabetes_frame: pd.DataFrame
) -> None:
    assert REDIS_URL
    _flush(REDIS_URL)
    env = {
        **os.environ,
        "MLSERVE_HOME": str(tmp_path),
        "MLSERVE_QUEUE_URL": REDIS_URL,
        "MLSERVE_LOG_LEVEL": "WARNING",
        "MLSERVE_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
    }
    if DATABASE_URL:
        env.pop("MLSERVE_DATABASE_URL", None)
    settings = Settings(
        home=tmp_path, queue_url=REDIS_URL, log_level="WARNING", max_jobs_in_flight_per_key=6
    )
    client = keyed_client(create_app(settings))
    workers = [
        subprocess.Popen([sys.executable, "-m", "mlserve", "worker"], env=env) for _ in range(2)
    ]
    try:
        _wait(lambda: client.get("/ready").status_code == 200, 60)
        dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
        job_ids = [
            train(
                client,
                dataset["id"],
                target="target",
                algorithm="gradient_boosting",
                model_name="diabetes",
                cv_folds=3,
            ).get_json()["id"]
            for _ in range(6)
        ]
        jobs = [_wait_job(client, job_id) for job_id in job_ids]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        _flush(REDIS_URL)
    assert [job["status"] for job in jobs] == ["succeeded"] * 6
    assert sorted(job["model_version"] for job in jobs) == [1, 2, 3, 4, 5, 6]
    from mlserve.jobs.service import get_job

    ctx = context_of(client.application)
    assert len({get_job(ctx, job_id).worker_id for job_id in job_ids}) == 2


def _wait(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _wait_job(client: Any, job_id: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def done() -> bool:
        result.update(client.get(f"/api/v1/training-jobs/{job_id}").get_json())
        return result["status"] in ("succeeded", "failed")

    _wait(done, 120)
    return result


@needs_postgres
def test_concurrent_upgrades_of_an_empty_database_both_succeed(postgres_url: str) -> None:
    """Two `mlserve db upgrade` at once: the advisory lock runs them one after the other."""
    engine = create_engine(postgres_url)
    env = {**os.environ, "MLSERVE_DATABASE_URL": postgres_url}
    command = [sys.executable, "-m", "mlserve", "db", "upgrade"]
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with engine.connect() as holder:  # hold the lock until both upgrades wait for it
        holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(2)]
        deadline = time.monotonic() + 120
        while holder.execute(waiting).scalar_one() < 2:
            assert time.monotonic() < deadline, "the upgrades never waited for the lock"
            assert all(run.poll() is None for run in runs), "an upgrade ended without the lock"
            time.sleep(0.05)
        holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        holder.commit()
    results = [(run.wait(120), run.stderr.read().decode() if run.stderr else "") for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
