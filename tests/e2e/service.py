"""Start the real ``mlserve serve`` process on a free port and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A ``mlserve serve`` child process with its own home folder."""

    def __init__(
        self, home: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MLSERVE_HOME": str(home),
            "MLSERVE_LOG_LEVEL": "WARNING",
            "MLSERVE_PRELOAD_ALIAS": "production",  # as a real service (tests/conftest.py)
            "MLSERVE_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
            "MLSERVE_WORKER_HEARTBEAT_TIMEOUT_S": "3",
            **(env or {}),
        }
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self._groups: list[int] = []  # process groups started, reaped by stop()
        self.key: str | None = None
        self.log = home.parent / f"serve-{self.port}.log"

    def create_key(self, role: str = "admin") -> str:
        """Create a key with the local ``mlserve keys create`` command (same settings)."""
        self.home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "mlserve", "keys", "create", "--role", role, "--name", "e2e"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the service's admin key."""
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def start(self, timeout_s: float = 90, with_key: bool = True) -> Service:
        """Start ``mlserve serve``; first create an admin key unless ``with_key`` is false."""
        if with_key and self.key is None:
            self.key = self.create_key()
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlserve", "serve", "--port", str(self.port), *self.args]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        self._groups.append(self.process.pid)  # its own session: the group id is its pid
        try:
            self.wait_ready(timeout_s)
        except BaseException:  # never ready: nothing it started outlives the failure
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"service not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the server; it stops its worker), then SIGKILL to
        whatever is left in the process groups this service started (an HTTP worker
        orphaned by an earlier ``kill`` must not outlive the test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        for group in self._groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        self._groups.clear()

    def kill(self) -> None:
        """``kill -9`` of the service process only; its children notice and exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, headers=self.headers)


def wait_for_job(http: httpx.Client, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    """Poll a job until it ends; return it with the statuses seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/api/v1/training-jobs/{job_id}").json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("succeeded", "failed"):
            job["statuses_seen"] = seen
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {seen[-1] if seen else '?'}")


def train_diabetes(http: httpx.Client, frame: Any) -> dict[str, Any]:
    """Upload the diabetes frame, train a ridge model ``diabetes`` and wait for it."""
    dataset = http.post(
        "/api/v1/datasets",
        files={"file": ("diabetes.csv", frame.to_csv(index=False).encode())},
    ).json()
    job = http.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset["id"],
            "target": "target",
            "algorithm": "ridge",
            "model_name": "diabetes",
        },
    ).json()
    finished = wait_for_job(http, job["id"], timeout_s=60)
    assert finished["status"] == "succeeded", finished
    return finished
