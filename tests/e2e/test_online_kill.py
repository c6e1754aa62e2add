"""``kill -9`` of a worker in the middle of an online update: nothing lost, nothing twice.

The worker is killed after it applied the samples and wrote the new artifact,
before the transaction that registers the version and moves the cursor. After a
new worker starts, the update is requested again: it applies the same samples
onto the same parent exactly once, and the next update continues from there. The update
the killed worker left running is recorded as the model's ``last_error`` by the next
worker's recovery sweep (issue 13, item 7), and cleared by the update that succeeds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from tests.e2e.service import Service, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ONLINE_ENV = {
    "MLSERVE_ONLINE_UPDATE_EVERY_SAMPLES": "40",
    "MLSERVE_ONLINE_GUARD_WINDOW_SAMPLES": "20",
    "MLSERVE_TEST_COMMIT_PAUSE_S": "120",
}


def _worker(service: Service, name: str, module: str = "mlserve") -> subprocess.Popen[bytes]:
    log = (service.home.parent / f"{name}.log").open("ab")
    command = [sys.executable, "-m", module]
    if module == "mlserve":
        command.append("worker")
    return subprocess.Popen(
        command, env=service.env, stdout=log, stderr=log, start_new_session=True
    )


def _samples(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "instances": frame.drop(columns="target").to_dict(orient="records"),
        "targets": frame["target"].tolist(),
    }


def _wait(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def test_kill_9_during_an_online_update_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path / "home", env=ONLINE_ENV, args=("--no-worker",))
    service.key = service.create_key()  # also migrates the database
    paused = _worker(service, "paused-worker", "tests.e2e.slow_commit_worker")
    fresh: subprocess.Popen[bytes] | None = None
    try:
        service.start()  # ready once the worker beats
        http = service.client()
        frame = load_diabetes(as_frame=True).frame
        dataset = http.post(
            "/api/v1/datasets", files={"file": ("d.csv", frame.iloc[:300].to_csv(index=False))}
        ).json()
        job = http.post(
            "/api/v1/training-jobs",
            json={
                "dataset_id": dataset["id"],
                "target": "target",
                "algorithm": "sgd_regressor",
                "model_name": "stream",
                "cv_folds": 0,
            },
        ).json()
        assert wait_for_job(http, job["id"], 120)["status"] == "succeeded"
        stored = http.post("/api/v1/models/stream/samples", json=_samples(frame.iloc[300:360]))
        assert stored.status_code == 201 and stored.json()["update_queued"] is True
        first_id = stored.json()["first_sample_id"]
        log = service.home.parent / "paused-worker.log"
        _wait(lambda: "ONLINE-COMMIT" in log.read_text(), 60, "the update never reached its commit")
        orphans = sorted((service.home / "artifacts" / "models").glob("online-*.skops"))
        assert len(orphans) == 1  # applied and written, not committed
        paused.send_signal(signal.SIGKILL)
        paused.wait(10)

        killed_at = time.monotonic()
        state = http.get("/api/v1/models/stream/online").json()
        assert (state["head_version"], state["cursor"], state["pending"]) == (1, 0, 60)
        assert len(state["updates_running"]) == 1 and state["last_error"] is None
        assert [
            v["version"] for v in http.get("/api/v1/models/stream/versions").json()["versions"]
        ] == [1]

        # Once its heartbeat is older than the timeout, the killed worker is dead to the
        # others: the next worker's recovery sweep records the update it left running.
        timeout_s = float(service.env["MLSERVE_WORKER_HEARTBEAT_TIMEOUT_S"])
        time.sleep(max(0.0, timeout_s + 0.5 - (time.monotonic() - killed_at)))
        fresh = _worker(service, "fresh-worker")
        state = _wait(
            lambda: (s := http.get("/api/v1/models/stream/online").json())["last_error"] and s,
            120,
            "the killed update was never recorded",
        )
        assert "stopped before it finished" in state["last_error"], state
        assert (state["updates_running"], state["cursor"], state["pending"]) == ([], 0, 60)
        assert http.post("/api/v1/models/stream/online-update").status_code == 202
        state = _wait(
            lambda: (
                (s := http.get("/api/v1/models/stream/online").json())["head_version"] == 2 and s
            ),
            120,  # a fresh interpreter importing scikit-learn on a busy machine, then the update
            "the retried update never committed",
        )
        lineage = http.get("/api/v1/models/stream/versions/2").json()["online"]
        assert (lineage["parent_version"], lineage["n_samples"]) == (1, 40)
        assert lineage["first_sample_id"] == first_id
        assert state["cursor"] == lineage["last_sample_id"] and state["pending"] == 20
        assert state["last_error"] is None  # the update that succeeded clears it

        more = http.post("/api/v1/models/stream/samples", json=_samples(frame.iloc[360:400]))
        assert more.json()["update_queued"] is True
        _wait(
            lambda: http.get("/api/v1/models/stream/online").json()["head_version"] == 3,
            120,
            "the next update never committed",
        )
        third = http.get("/api/v1/models/stream/versions/3").json()["online"]
        assert third["parent_version"] == 2
        assert third["first_sample_id"] == lineage["last_sample_id"] + 1
        assert lineage["n_samples"] + third["n_samples"] == 100 - 20  # all but the guard window
        versions = http.get("/api/v1/models/stream/versions").json()["versions"]
        assert [v["version"] for v in versions] == [3, 2, 1]
    finally:
        for process in (paused, fresh):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        service.stop()
