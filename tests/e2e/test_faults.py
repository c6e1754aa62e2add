"""Fault injection over real processes: a job worker killed with SIGKILL mid-training.

Four cases: the worker ``mlserve serve`` embeds (its supervisor restarts it), once in a
random forest's cross-validation and once in an epoch of a ``torch_mlp`` network; a
separate ``mlserve worker`` beside ``mlserve serve --no-worker``, killed, and a new
one started (by the operator, or systemd); two separate workers, the one running
the job killed and the idle one noticing. Each time the job the dead worker was
running must read ``running`` until the worker's heartbeat times out, then
``failed``, never stay ``running``; no version and no artifact may remain, and
the next job must run normally.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from mlserve.settings import Settings
from mlserve.store.artifacts import TEMP_PREFIX
from mlserve.store.database import Database
from mlserve.store.orm import TrainingJob, WorkerHeartbeat, as_utc
from tests.conftest import CALIFORNIA_TARGET
from tests.e2e.service import Service, train_diabetes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HEARTBEAT_TIMEOUT_S = 3.0  # tests/e2e/service.py: MLSERVE_WORKER_HEARTBEAT_TIMEOUT_S
WORKER_START_S = 20.0  # at least: a fresh interpreter importing scikit-learn, busy machine


@functools.cache
def worker_start_s() -> float:
    """How long a new worker may take to start here: three times what this machine
    takes now to start an interpreter that imports what ``mlserve worker`` imports
    (measured once per run), and at least :data:`WORKER_START_S`."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import mlserve.cli.main, mlserve.bootstrap, sklearn.ensemble"],
        check=True,
        timeout=600,
    )
    return max(WORKER_START_S, 3 * (time.monotonic() - started))


STALE_ERROR = "the worker running this job stopped before it finished"


class WorkerProcess:
    """A separate ``mlserve worker`` with the service's settings (same home, same env)."""

    def __init__(self, service: Service, name: str) -> None:
        self.log = service.home.parent / f"{name}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlserve", "worker"],
                env=service.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _worker_pid_of(home: Path, job_id: str) -> int:
    """The pid of the worker running ``job_id`` (its id reads ``host:pid:random``)."""
    settings = Settings(home=home)  # MLSERVE_DATABASE_URL too, in the PostgreSQL pass
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            job = session.get(TrainingJob, job_id)
            assert job is not None and job.worker_id is not None
            return int(job.worker_id.rsplit(":", 2)[1])
    finally:
        database.dispose()


def _children(service: Service) -> set[int]:
    """Pids of the service process's children (HTTP workers, the job worker)."""
    assert service.process is not None
    tasks = Path(f"/proc/{service.process.pid}/task")
    return {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}


def _heartbeat_pids(home: Path) -> set[int]:
    """Pids of every worker that has recorded a heartbeat."""
    database = Database(Settings(home=home).resolved_database_url)
    try:
        with database.session() as session:
            return set(session.scalars(select(WorkerHeartbeat.pid)))
    finally:
        database.dispose()


def _last_beat(home: Path, pid: int) -> datetime:
    """When the worker process ``pid`` last recorded a heartbeat (UTC)."""
    database = Database(Settings(home=home).resolved_database_url)
    try:
        with database.session() as session:
            seen = session.scalars(
                select(WorkerHeartbeat.last_seen_at).where(WorkerHeartbeat.pid == pid)
            )
            return max(as_utc(value) for value in seen)
    finally:
        database.dispose()


def _wait_for_heartbeat(home: Path, pid: int, timeout_s: float | None = None) -> None:
    deadline = time.monotonic() + (timeout_s or worker_start_s())
    while pid not in _heartbeat_pids(home):
        assert time.monotonic() < deadline, f"worker {pid} never beat"
        time.sleep(0.2)


def _upload_california(http: httpx.Client, california_bytes: bytes) -> str:
    dataset = http.post(
        "/api/v1/datasets",
        files={"file": ("california_housing.csv", io.BytesIO(california_bytes))},
    )
    assert dataset.status_code == 201, dataset.text
    return str(dataset.json()["id"])


def _start_slow_job(http: httpx.Client, dataset_id: str) -> str:
    """A 10-fold, 400-tree random forest on the whole data (minutes on one thread);
    returns its id once its first fold is being fitted."""
    job = http.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset_id,
            "target": CALIFORNIA_TARGET,
            "algorithm": "random_forest",
            "model_name": "slow",
            "params": {"n_estimators": 400},
            "cv_folds": 10,
        },
    )
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 60
    while True:
        seen: dict[str, Any] = http.get(f"/api/v1/training-jobs/{job.json()['id']}").json()
        if seen["status"] == "running" and seen["stage"].startswith("cross-validation"):
            return str(seen["id"])
        assert seen["status"] in ("queued", "running"), seen
        assert time.monotonic() < deadline, f"the job never got to training: {seen}"
        time.sleep(0.1)


def _start_torch_job(http: httpx.Client, dataset_id: str) -> str:
    """A torch_mlp network on the whole data with 10,000 epochs and no early stopping
    (an hour and more); returns its id once it reports an epoch."""
    job = http.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset_id,
            "target": CALIFORNIA_TARGET,
            "algorithm": "torch_mlp",
            "model_name": "slow",
            "params": {"max_epochs": 10_000, "patience": None},
            "cv_folds": 0,
        },
    )
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 90
    while True:
        seen: dict[str, Any] = http.get(f"/api/v1/training-jobs/{job.json()['id']}").json()
        if seen["status"] == "running" and seen["stage"].startswith("epoch "):
            assert seen["stage"].endswith("/10000") and 0.7 <= seen["progress"] < 0.85, seen
            return str(seen["id"])
        assert seen["status"] in ("queued", "running"), seen
        assert time.monotonic() < deadline, f"the job never got to an epoch: {seen}"
        time.sleep(0.1)


def _plant_leftovers(home: Path, job_id: str, temporary: bool) -> list[Path]:
    """What a worker killed while saving leaves: its artifacts, and a temporary named
    after the artifact it was writing (removed with the job's artifacts by recovery)."""
    models = home / "artifacts" / "models"
    models.mkdir(parents=True, exist_ok=True)
    planted = [models / f"{job_id}.skops", models / f"{job_id}.onnx"]
    if temporary:
        planted.append(models / f"{TEMP_PREFIX}{job_id}.onnx.interrupted")
    for path in planted:
        path.write_bytes(b"partial")
    return planted


def _wait_until_not_running(http: httpx.Client, job_id: str, timeout_s: float) -> dict[str, Any]:
    statuses: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = http.get(f"/api/v1/training-jobs/{job_id}").json()
        if not statuses or statuses[-1] != job["status"]:
            statuses.append(job["status"])
        if job["status"] != "running":
            job["statuses_seen"] = statuses
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in running: {job}"
        time.sleep(0.1)


def _kill_and_check_recovery(
    http: httpx.Client,
    home: Path,
    job_id: str,
    victim: int,
    limit_s: float,
    temporary: bool,
    then: Callable[[], None] = lambda: None,
) -> None:
    """SIGKILL ``victim`` (running ``job_id``), call ``then``; the job must read
    ``running`` until its worker's heartbeat times out, then ``failed``, within
    ``limit_s``, with no version and no artifact left."""
    planted = _plant_leftovers(home, job_id, temporary)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    # Nobody can tell the job is dead before its heartbeat times out.
    assert http.get(f"/api/v1/training-jobs/{job_id}").json()["status"] == "running"
    then()
    ended = _wait_until_not_running(http, job_id, timeout_s=limit_s)
    took_s = time.monotonic() - killed_at
    assert ended["statuses_seen"] == ["running", "failed"], ended
    assert ended["error"] == STALE_ERROR
    assert ended["stage"] == "failed" and ended["model_version"] is None
    assert ended["finished_at"] is not None
    assert took_s < limit_s
    # Failed by the heartbeat timeout: not before the dead worker's last beat was that old.
    finished = as_utc(datetime.fromisoformat(ended["finished_at"].replace("Z", "+00:00")))
    silent_s = (finished - _last_beat(home, victim)).total_seconds()
    assert silent_s >= HEARTBEAT_TIMEOUT_S, silent_s
    assert http.get("/api/v1/models/slow").status_code == 404
    assert not any(path.exists() for path in planted)


def _check_next_job_runs(
    service: Service, http: httpx.Client, diabetes_frame: pd.DataFrame, failed: list[str]
) -> None:
    """A live worker takes the next job; the failed ones stay failed, never rerun."""
    train_diabetes(http, diabetes_frame)
    service.wait_ready(30)
    for job_id in failed:
        again = http.get(f"/api/v1/training-jobs/{job_id}").json()
        assert (again["status"], again["error"]) == ("failed", STALE_ERROR)
    assert {m["name"] for m in http.get("/api/v1/models").json()["models"]} == {"diabetes"}
    listed = [p.name for p in (service.home / "artifacts" / "models").iterdir()]
    assert not [name for name in listed if name.startswith((*failed, TEMP_PREFIX))]


def test_embedded_worker_killed_mid_training_is_restarted_and_fails_its_job(
    tmp_path: Path, california_bytes: bytes, diabetes_frame: pd.DataFrame
) -> None:
    """``mlserve serve``'s own worker is killed; its supervisor starts a new one."""
    service = Service(tmp_path / "home").start()
    try:
        with service.client() as http:
            job_id = _start_slow_job(http, _upload_california(http, california_bytes))
            victim = _worker_pid_of(service.home, job_id)
            assert victim in _children(service)
            _kill_and_check_recovery(
                http, service.home, job_id, victim, HEARTBEAT_TIMEOUT_S + worker_start_s(), True
            )
            replacement = _heartbeat_pids(service.home) & _children(service)
            assert replacement and victim not in replacement
            _check_next_job_runs(service, http, diabetes_frame, [job_id])
    finally:
        service.stop()


@pytest.mark.sqlite_only(
    reason="the recovery is the random forest case's, run on both backends; this adds the epoch"
)
def test_embedded_worker_killed_mid_epoch_fails_its_torch_job_and_leaves_nothing(
    tmp_path: Path, california_bytes: bytes, diabetes_frame: pd.DataFrame
) -> None:
    """SIGKILL while a torch_mlp network trains (between two progress writes, so inside
    an epoch): no version, no artifact, and the next job runs."""
    service = Service(tmp_path / "home").start()
    try:
        with service.client() as http:
            job_id = _start_torch_job(http, _upload_california(http, california_bytes))
            victim = _worker_pid_of(service.home, job_id)
            _kill_and_check_recovery(
                http, service.home, job_id, victim, HEARTBEAT_TIMEOUT_S + worker_start_s(), True
            )
            _check_next_job_runs(service, http, diabetes_frame, [job_id])
    finally:
        service.stop()


def test_separate_worker_killed_mid_training_fails_its_job(
    tmp_path: Path, california_bytes: bytes, diabetes_frame: pd.DataFrame
) -> None:
    """``mlserve serve --no-worker`` and ``mlserve worker`` processes.

    First one worker, killed, and a new one started after the kill; then two
    workers, the one running the job is killed and the other one, idle, notices.
    """
    service = Service(tmp_path / "home", args=("--no-worker",))
    service.key = service.create_key()  # also migrates the database
    workers = [WorkerProcess(service, "worker-1")]
    try:
        service.start()  # ready once the worker beats
        with service.client() as http:
            dataset_id = _upload_california(http, california_bytes)
            first = _start_slow_job(http, dataset_id)
            assert _worker_pid_of(service.home, first) == workers[0].pid

            def replace() -> None:
                workers[0].process.wait(10)
                workers.append(WorkerProcess(service, "worker-2"))

            _kill_and_check_recovery(
                http,
                service.home,
                first,
                workers[0].pid,
                HEARTBEAT_TIMEOUT_S + worker_start_s(),
                temporary=True,
                then=replace,
            )

            workers.append(WorkerProcess(service, "worker-3"))
            _wait_for_heartbeat(service.home, workers[2].pid)
            second = _start_slow_job(http, dataset_id)
            victim = _worker_pid_of(service.home, second)
            assert victim in (workers[1].pid, workers[2].pid)
            # The temporary a killed writer leaves is swept when a worker starts, and no
            # worker starts here: tests/test_faults.py covers the survivor's part.
            _kill_and_check_recovery(
                http, service.home, second, victim, HEARTBEAT_TIMEOUT_S + 3, temporary=True
            )
            _check_next_job_runs(service, http, diabetes_frame, [first, second])
    finally:
        service.stop()
        for worker in workers:
            worker.stop()
