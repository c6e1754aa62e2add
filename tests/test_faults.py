"""Fault injection in-process: database outage, damaged artifacts, a full disk.

Each test breaks one thing a real deployment loses now and then, checks the exact
answers the service gives while it is broken (status, error envelope, what keeps
working, what is left on disk and in the registry), then repairs it and checks
that the service recovers without a restart.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.jobs.heartbeat import recover_stale_jobs
from mlserve.jobs.service import artifact_key
from mlserve.registry import service as registry
from mlserve.security import keys as auth
from mlserve.settings import Settings
from mlserve.store import artifacts as storage
from mlserve.store.artifacts import TEMP_PREFIX, LocalStore
from mlserve.store.orm import Dataset, ModelVersion, TrainingJob, new_id, utcnow
from tests.conftest import frame_csv, keyed_client, train, upload

DATABASE_DOWN = "database unavailable"
ENOSPC_ERROR = "OSError: [Errno 28] No space left on device"


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    """The status and the ``{"error": {"code", "message", "details"}}`` envelope."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


def _rows(frame: pd.DataFrame, n: int = 3) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.drop(columns="target").head(n).to_dict(orient="records")
    return records


def _predict(client: FlaskClient, name: str, rows: list[dict[str, Any]], query: str = "") -> Any:
    return client.post(f"/api/v1/models/{name}/predict{query}", json={"instances": rows})


def _model_files(ctx: Context) -> list[str]:
    folder = Path(ctx.store.root) / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _count(ctx: Context, model: type[Any]) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --------------------------------------------------------------------------- database outage


@pytest.fixture
def outage_app(tmp_path: Path) -> Iterator[Flask]:
    """An app whose key checks stay cached for the whole test (``auth_cache_ttl_s``)."""
    settings = Settings(
        home=tmp_path / "home", jobs_immediate=True, log_level="CRITICAL", auth_cache_ttl_s=3600
    )
    application = create_app(settings)
    yield application
    context_of(application).db.dispose()


class SqliteOutage:
    """Make the app's SQLite database unreachable, and bring it back.

    Pooled connections are closed first (they would keep the moved file open),
    the file and its WAL/SHM companions are moved away and a folder takes the
    database's place: every new connection then fails to open it. Restoring
    does not touch the engine: the app has to recover by itself.
    """

    def __init__(self, ctx: Context, backup: Path) -> None:
        self.ctx = ctx
        self.db = ctx.settings.home / "mlserve.db"
        self.backup = backup
        self.moved: list[Path] = []

    def start(self) -> None:
        self.ctx.db.dispose()
        self.backup.mkdir()
        for path in (self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-shm")):
            if path.exists():
                path.rename(self.backup / path.name)
                self.moved.append(path)
        self.db.mkdir()

    def end(self) -> None:
        if self.db.is_dir():
            self.db.rmdir()
        for path in self.moved:
            (self.backup / path.name).rename(path)
        self.moved = []


@pytest.fixture
def outage(outage_app: Flask, tmp_path: Path) -> Iterator[SqliteOutage]:
    down = SqliteOutage(context_of(outage_app), tmp_path / "backup")
    yield down
    down.end()


@pytest.fixture
def served(
    outage_app: Flask, diabetes_frame: pd.DataFrame, iris_frame: pd.DataFrame
) -> dict[str, Any]:
    """``diabetes`` (ridge) loaded by one prediction; ``iris`` registered but never loaded."""
    client = keyed_client(outage_app)
    diabetes = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    iris = upload(client, frame_csv(iris_frame), "iris.csv").get_json()
    for dataset, algorithm, name in (
        (diabetes, "ridge", "diabetes"),
        (iris, "logistic_regression", "iris"),
    ):
        job = train(
            client, dataset["id"], target="target", algorithm=algorithm, model_name=name, cv_folds=0
        ).get_json()
        assert job["status"] == "succeeded", job
    rows = _rows(diabetes_frame)
    first = _predict(client, "diabetes", rows)
    assert first.status_code == 200
    return {
        "client": client,
        "dataset": diabetes,
        "rows": rows,
        "iris_rows": _rows(iris_frame, 2),
        "predictions": first.get_json()["predictions"],
    }


@pytest.mark.sqlite_only(reason="makes the database unreachable by moving the SQLite file away")
def test_database_outage_503s_what_needs_it_while_loaded_models_keep_serving(
    outage_app: Flask,
    outage: SqliteOutage,
    served: dict[str, Any],
    diabetes_frame: pd.DataFrame,
) -> None:
    ctx: Context = context_of(outage_app)
    client: FlaskClient = served["client"]
    rows = served["rows"]
    viewer = auth.create_key(ctx, "viewer", name="never used before the outage").secret
    datasets_before = sorted((Path(ctx.store.root) / "datasets").iterdir())
    models_before = _model_files(ctx)

    outage.start()

    ready = client.get("/ready")
    error = assert_envelope(ready, 503, "service_unavailable")
    assert error["details"] == {"database": "unreachable", "worker": "unknown"}
    assert client.get("/health").get_json() == {"status": "ok"}
    needs_database = [
        client.get("/api/v1/models"),
        client.get("/api/v1/models/diabetes"),
        client.get("/api/v1/datasets"),
        client.get("/api/v1/training-jobs"),
        upload(client, frame_csv(diabetes_frame), "again.csv"),
        train(client, served["dataset"]["id"], target="target", algorithm="ridge", model_name="x"),
        client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1}),
        _predict(client, "iris", served["iris_rows"]),  # registered, never loaded
        _predict(client, "diabetes", rows, "?version=1"),  # loaded, but not this lookup
    ]
    for response in needs_database:
        assert assert_envelope(response, 503, "service_unavailable")["message"] == DATABASE_DOWN
    # A key this process has not checked yet cannot be checked: 503, not 401.
    other = outage_app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {viewer}"
    assert assert_envelope(other.get("/api/v1/models"), 503, "service_unavailable")
    # The loaded model answers, on both prediction routes, again and again.
    for _ in range(5):
        response = _predict(client, "diabetes", rows)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["predictions"] == served["predictions"]
        assert response.get_json()["model_version"] == 1
    kserve = client.post("/v1/models/diabetes:predict", json={"instances": rows})
    assert kserve.status_code == 200
    assert kserve.get_json()["predictions"] == served["predictions"]
    # Nothing was half-done: the refused upload left no file, the refused job no artifact.
    assert sorted((Path(ctx.store.root) / "datasets").iterdir()) == datasets_before
    assert _model_files(ctx) == models_before

    outage.end()  # the engine is not reset: the app must reconnect by itself

    assert client.get("/ready").status_code == 200
    listed = client.get("/api/v1/models")
    assert listed.status_code == 200
    assert {m["name"] for m in listed.get_json()["models"]} == {"diabetes", "iris"}
    assert other.get("/api/v1/models").status_code == 200
    assert _predict(client, "iris", served["iris_rows"]).status_code == 200
    assert _predict(client, "diabetes", rows, "?version=1").status_code == 200
    dataset = upload(client, frame_csv(diabetes_frame), "again.csv")
    assert dataset.status_code == 201
    job = train(
        client, dataset.get_json()["id"], target="target", algorithm="ridge", model_name="diabetes"
    ).get_json()
    assert job["status"] == "succeeded" and job["model_version"] == 2
    moved = client.put("/api/v1/models/diabetes/aliases/production", json={"version": 2})
    assert moved.status_code == 200
    assert _predict(client, "diabetes", rows).get_json()["model_version"] == 2
    # Exactly the requests answered while it was up were recorded.
    assert _count(ctx, Dataset) == 3 and _count(ctx, TrainingJob) == 3
    assert _count(ctx, ModelVersion) == 3


@pytest.mark.sqlite_only(reason="makes the database unreachable by moving the SQLite file away")
def test_last_used_write_during_outage_does_not_fail_a_cached_prediction(
    outage_app: Flask,
    outage: SqliteOutage,
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client: FlaskClient = served["client"]
    outage.start()
    assert _predict(client, "diabetes", served["rows"]).status_code == 200
    # One minute later the key's last_used_at is due again (the interval, not the clock).
    monkeypatch.setattr(auth, "LAST_USED_WRITE_INTERVAL_S", 0.0)
    response = _predict(client, "diabetes", served["rows"])
    assert response.status_code == 200, response.get_data(as_text=True)


# --------------------------------------------------------------------------- damaged artifacts


def _served_file(ctx: Context, kind: str) -> Path:
    """The file ``diabetes`` version 1 is served from; ``skops`` switches it to scikit-learn."""
    row = registry.get_version(ctx, "diabetes", 1)
    assert row.runtime == "onnx" and row.onnx_artifact_key is not None
    if kind == "onnx":
        return Path(ctx.store.root) / row.onnx_artifact_key
    with ctx.db.session() as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.id == row.id).values(runtime="sklearn")
        )
    ctx.resolver.invalidate()
    return Path(ctx.store.root) / row.artifact_key


FAULTS = {
    "deleted": "model artifact is missing from the store",
    "truncated": "artifact failed its sha256 check (corrupt or modified)",
    "emptied": "artifact failed its sha256 check (corrupt or modified)",
}


@pytest.mark.parametrize("kind", ["skops", "onnx"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_damaged_artifact_is_409_marked_corrupt_and_recovers_when_restored(
    client: FlaskClient,
    ctx: Context,
    two_models: dict[str, Any],
    diabetes_frame: pd.DataFrame,
    kind: str,
    fault: str,
) -> None:
    rows = _rows(diabetes_frame)
    path = _served_file(ctx, kind)
    ctx.models.clear()
    good = _predict(client, "diabetes", rows)
    assert good.status_code == 200
    other_before = _predict(client, "other", rows).get_json()["predictions"]
    original = path.read_bytes()
    if fault == "deleted":
        path.unlink()
    elif fault == "truncated":
        path.write_bytes(original[: len(original) // 2])
    else:
        path.write_bytes(b"")
    ctx.models.clear()  # as after a restart or an eviction: the file is read again

    key = f"models/{two_models['job']['id']}.{kind}"
    for url in ("/api/v1/models/diabetes/predict", "/v1/models/diabetes:predict"):
        error = assert_envelope(client.post(url, json={"instances": rows}), 409, "conflict")
        assert error["message"] == FAULTS[fault]
        assert error["details"] == {"artifact": key}
    view = client.get("/api/v1/models/diabetes/versions/1")
    assert view.status_code == 200
    assert view.get_json()["corrupt_reason"] == FAULTS[fault]
    # Everything else keeps working.
    other = _predict(client, "other", rows)
    assert other.status_code == 200 and other.get_json()["predictions"] == other_before
    assert client.get("/ready").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    # Putting the file back is enough: no restart, and the mark is cleared.
    path.write_bytes(original)
    again = _predict(client, "diabetes", rows)
    assert again.status_code == 200
    assert again.get_json()["predictions"] == good.get_json()["predictions"]
    assert client.get("/api/v1/models/diabetes/versions/1").get_json()["corrupt_reason"] is None


# --------------------------------------------------------------------------- disk full


class DiskFull:
    """Stands in for ``os`` inside :mod:`mlserve.store.artifacts`: the ``nth`` file written
    under ``models/`` fails with ENOSPC, at ``write`` (half the bytes reach the
    temporary file first) or at ``fsync``; every other call is the real one."""

    def __init__(self, models: Path, nth: int, at: str) -> None:
        self._models = str(models)
        self._nth = nth
        self._at = at
        self._doomed: set[int] = set()
        self.model_writes = 0
        self.temporaries: list[Path] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = os.fdopen(fd, *args, **kwargs)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if str(path.parent) != self._models:
            return handle
        self.model_writes += 1
        if self.model_writes != self._nth:
            return handle
        assert path.name.startswith(TEMP_PREFIX)
        self.temporaries.append(path)
        self._doomed.add(fd)
        return _FullFile(handle) if self._at == "write" else handle

    def fsync(self, fd: int) -> None:
        if fd in self._doomed and self._at == "fsync":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)


class _FullFile:
    """A file whose disk fills up halfway through the first write."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@pytest.mark.parametrize("at", ["write", "fsync"])
@pytest.mark.parametrize(("artifact", "nth"), [("skops", 1), ("onnx", 2)])
def test_disk_full_while_saving_an_artifact_fails_the_job_cleanly(
    client: FlaskClient,
    ctx: Context,
    diabetes_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    artifact: str,
    nth: int,
    at: str,
) -> None:
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    models = Path(ctx.store.root) / "models"
    disk = DiskFull(models, nth, at)
    monkeypatch.setattr(storage, "os", disk)

    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="full", cv_folds=0
    ).get_json()

    assert disk.model_writes == nth  # the skops file is written first, then the ONNX model
    assert disk.temporaries and all(p.name.startswith(TEMP_PREFIX) for p in disk.temporaries)
    assert job["status"] == "failed", job
    assert job["stage"] == "failed" and job["model_version"] is None
    assert job["error"] == ENOSPC_ERROR
    assert client.get(f"/api/v1/training-jobs/{job['id']}").get_json()["error"] == ENOSPC_ERROR
    assert _model_files(ctx) == []  # no temporary, no .skops, no .onnx
    assert _count(ctx, ModelVersion) == 0
    assert assert_envelope(client.get("/api/v1/models/full"), 404, "not_found")

    monkeypatch.setattr(storage, "os", os)  # space freed
    again = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="full", cv_folds=0
    ).get_json()
    assert again["status"] == "succeeded", again
    assert again["model_version"] == 1
    assert _model_files(ctx) == [f"{again['id']}.onnx", f"{again['id']}.skops"]
    rows = _rows(diabetes_frame)
    assert _predict(client, "full", rows).status_code == 200


def test_disk_full_while_storing_an_upload_leaves_no_file_and_no_row(
    client: FlaskClient,
    ctx: Context,
    diabetes_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    datasets = Path(ctx.store.root) / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    disk = DiskFull(datasets, 1, "write")
    monkeypatch.setattr(storage, "os", disk)

    response = upload(client, frame_csv(diabetes_frame), "diabetes.csv")

    # Not a client error: the generic 500 envelope, no detail of the server's disk.
    error = assert_envelope(response, 500, "internal_error")
    assert error["message"] == "internal server error"
    assert disk.temporaries and not any(p.exists() for p in disk.temporaries)
    assert list(datasets.iterdir()) == []
    assert _count(ctx, Dataset) == 0
    monkeypatch.setattr(storage, "os", os)
    assert upload(client, frame_csv(diabetes_frame), "diabetes.csv").status_code == 201


# --------------------------------------------------------------------------- interrupted writes


def test_sweeping_temporaries_spares_a_write_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    writer, starting_worker = LocalStore(root), LocalStore(root)
    in_fsync, release = threading.Event(), threading.Event()

    class SlowDisk:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def fsync(self, fd: int) -> None:
            in_fsync.set()
            assert release.wait(10)
            os.fsync(fd)

    monkeypatch.setattr(storage, "os", SlowDisk())
    data = os.urandom(1 << 20)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            writer.put_bytes("models/big.skops", data)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    assert in_fsync.wait(10)
    swept = starting_worker.sweep_temporaries()
    release.set()
    thread.join(10)
    assert failures == []  # today: FileNotFoundError from os.replace
    assert writer.get_bytes("models/big.skops") == data
    assert swept == 0


def test_recovery_removes_the_temporary_of_a_worker_killed_mid_write(
    client: FlaskClient, ctx: Context, diabetes_frame: pd.DataFrame
) -> None:
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    job = TrainingJob(
        id=new_id(),
        dataset_id=dataset["id"],
        model_name="m",
        spec={},
        status="running",
        worker_id="host:1:dead",
        started_at=utcnow(),
    )
    with ctx.db.session() as session:
        session.add(job)
    models = Path(ctx.store.root) / "models"

    class KilledInFsync:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def fsync(self, fd: int) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

    child = os.fork()
    if child == 0:  # the worker, killed halfway through saving the model
        try:
            setattr(storage, "os", KilledInFsync())  # noqa: B010
            LocalStore(ctx.store.root).put_bytes(artifact_key(job.id), b"model" * 1000)
        finally:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (leftover,) = models.iterdir()
    assert leftover.name.startswith(TEMP_PREFIX)

    assert recover_stale_jobs(ctx) == [job.id]  # what the surviving worker does
    assert list(models.iterdir()) == []
