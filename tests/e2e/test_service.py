"""End to end: the real service process, driven over HTTP, on california_housing.csv."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.serving.loader import load_pipeline
from mlserve.store.artifacts import LocalStore
from mlserve.training.signature import model_frame
from tests.conftest import CALIFORNIA_TARGET
from tests.e2e.service import Service, train_diabetes, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BATCH_ROWS = 10_000


def _instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame.drop(columns=[CALIFORNIA_TARGET])
    rows = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    return rows


def _predict_all(http: Any, model: str, rows: list[dict[str, Any]]) -> np.ndarray:
    out: list[float] = []
    for start in range(0, len(rows), BATCH_ROWS):
        response = http.post(
            f"/api/v1/models/{model}/predict", json={"instances": rows[start : start + BATCH_ROWS]}
        )
        assert response.status_code == 200, response.text
        out.extend(response.json()["predictions"])
    return np.asarray(out, dtype=float)


def _train(http: Any, dataset_id: str, algorithm: str, **extra: Any) -> dict[str, Any]:
    response = http.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset_id,
            "target": CALIFORNIA_TARGET,
            "algorithm": algorithm,
            "model_name": "housing",
            "test_size": 0.2,
            "random_state": 0,
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return wait_for_job(http, response.json()["id"])


def test_service_trains_serves_and_survives_restart(
    tmp_path: Path, california_bytes: bytes, california_frame: pd.DataFrame
) -> None:
    service = Service(tmp_path / "home").start()
    try:
        with service.client() as http:
            upload = http.post(
                "/api/v1/datasets",
                data={"name": "california"},
                files={"file": ("california_housing.csv", io.BytesIO(california_bytes))},
            )
            assert upload.status_code == 201, upload.text
            dataset = upload.json()
            assert dataset["n_rows"] == 20_640
            bedrooms = next(c for c in dataset["columns"] if c["name"] == "total_bedrooms")
            assert bedrooms["missing"] == 207

            linear = _train(http, dataset["id"], "linear_regression")
            boosted = _train(http, dataset["id"], "gradient_boosting")
            for job in (linear, boosted):
                assert job["status"] == "succeeded", job
                assert job["statuses_seen"][-1] == "succeeded"
                assert job["progress"] == 1.0
            v1 = http.get("/api/v1/models/housing/versions/1").json()
            v2 = http.get("/api/v1/models/housing/versions/2").json()
            assert v1["algorithm"] == "linear_regression" and v1["metrics"]["rmse"] < 70_000
            assert v2["algorithm"] == "gradient_boosting" and v2["metrics"]["rmse"] < 50_000
            assert v2["job_id"] == boosted["id"] and v2["dataset_id"] == dataset["id"]

            alias = http.put("/api/v1/models/housing/aliases/production", json={"version": 2})
            assert alias.status_code == 200
            rows = _instances(california_frame)
            served = _predict_all(http, "housing", rows)

        store = LocalStore(tmp_path / "home" / "artifacts")
        pipeline = load_pipeline(
            store.get_bytes(f"models/{boosted['id']}.skops", expected_sha256=v2["artifact_sha256"])
        )
        features = model_frame(california_frame.drop(columns=[CALIFORNIA_TARGET]), v2["signature"])
        np.testing.assert_allclose(served, pipeline.predict(features), rtol=0, atol=1e-9)

        service.stop()
        service.start()
        with service.client() as http:
            assert http.get("/api/v1/models/housing").json()["aliases"] == {"production": 2}
            again = _predict_all(http, "housing", rows[:BATCH_ROWS])
        np.testing.assert_array_equal(again, served[:BATCH_ROWS])
    finally:
        service.stop()


def test_service_killed_mid_training_leaves_no_version(
    tmp_path: Path, california_bytes: bytes
) -> None:
    service = Service(tmp_path / "home").start()
    try:
        with service.client() as http:
            dataset = http.post(
                "/api/v1/datasets",
                files={"file": ("california_housing.csv", io.BytesIO(california_bytes))},
            ).json()
            job = http.post(
                "/api/v1/training-jobs",
                json={
                    "dataset_id": dataset["id"],
                    "target": CALIFORNIA_TARGET,
                    "algorithm": "random_forest",
                    "model_name": "slow",
                    "params": {"n_estimators": 400},
                    "cv_folds": 10,
                },
            ).json()
            deadline = time.monotonic() + 60
            while http.get(f"/api/v1/training-jobs/{job['id']}").json()["status"] != "running":
                assert time.monotonic() < deadline, "job never started"
                time.sleep(0.1)
        service.kill()
        time.sleep(1)
        service.start()
        with service.client() as http:
            ended = wait_for_job(http, job["id"], timeout_s=60)
            assert ended["status"] == "failed"
            assert "worker" in ended["error"]
            assert http.get("/api/v1/models/slow").status_code == 404
        models = tmp_path / "home" / "artifacts" / "models"
        assert not models.exists() or not list(models.iterdir())
    finally:
        service.stop()


def _live_worker_pids(home: Path, within_s: float = 2.0) -> set[int]:
    import sqlite3
    from datetime import UTC, datetime, timedelta

    cutoff = datetime.now(UTC) - timedelta(seconds=within_s)
    with sqlite3.connect(home / "mlserve.db") as conn:
        rows = conn.execute("SELECT pid, last_seen_at FROM worker_heartbeat").fetchall()
    return {pid for pid, seen in rows if datetime.fromisoformat(seen).replace(tzinfo=UTC) >= cutoff}


def test_service_restarts_its_worker_after_kill_9(
    tmp_path: Path, diabetes_frame: pd.DataFrame
) -> None:
    import os
    import signal

    service = Service(tmp_path / "home").start()
    try:
        (first,) = _live_worker_pids(service.home)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (_live_worker_pids(service.home) - {first}):
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.2)
        with service.client() as http:
            service.wait_ready(30)
            train_diabetes(http, diabetes_frame)
    finally:
        service.stop()


def test_service_answers_bad_input_over_http_with_json_4xx(
    tmp_path: Path, diabetes_frame: pd.DataFrame
) -> None:
    service = Service(
        tmp_path / "home",
        env={"MLSERVE_MAX_CONTENT_LENGTH_BYTES": "1000000", "MLSERVE_MAX_BATCH_ROWS": "100"},
    ).start()
    try:
        with service.client() as http:
            job = train_diabetes(http, diabetes_frame)
            row = diabetes_frame.drop(columns=["target"]).iloc[0].to_dict()
            cases = [
                (
                    http.post(
                        "/api/v1/datasets", files={"file": ("big.csv", b"a,b\n1,2\n" * 200_000)}
                    ),
                    413,
                    "payload_too_large",
                ),
                (
                    http.post("/api/v1/datasets", files={"file": ("r.csv", b"a,b\n1,2\n1,2,3\n")}),
                    422,
                    "validation_error",
                ),
                (
                    http.post(
                        "/api/v1/models/diabetes/predict",
                        content=b"{nope",
                        headers={"content-type": "application/json"},
                    ),
                    400,
                    "malformed_json",
                ),
                (
                    http.post(
                        "/api/v1/models/diabetes/predict",
                        json={"instances": [{k: v for k, v in row.items() if k != "bmi"}]},
                    ),
                    422,
                    "validation_error",
                ),
                (
                    http.post("/api/v1/models/diabetes/predict", json={"instances": [row] * 101}),
                    413,
                    "payload_too_large",
                ),
                (
                    http.post("/api/v1/models/nope/predict", json={"instances": [row]}),
                    404,
                    "not_found",
                ),
            ]
            for response, status, code in cases:
                assert response.status_code == status, response.text
                assert response.json()["error"]["code"] == code
            good = http.post("/api/v1/models/diabetes/predict", json={"instances": [row]})
            assert good.status_code == 200 and len(good.json()["predictions"]) == 1
            assert http.get("/ready").status_code == 200
            listed = http.get("/api/v1/datasets").json()["datasets"]
            assert [d["id"] for d in listed] == [job["dataset_id"]]
    finally:
        service.stop()
