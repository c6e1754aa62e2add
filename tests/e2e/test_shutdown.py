"""A graceful stop that cannot finish still ends: ``mlserve serve`` kills an HTTP worker
that has not stopped ``MLSERVE_GRACEFUL_TIMEOUT_S`` after ``SIGTERM`` (granian alone
waits for ever; CI once saw a replica still running 60 s after ``SIGTERM``)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.service import Service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def http_workers(pid: int) -> list[int]:
    """Direct children of ``pid`` but the job worker, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            command = (entry / "cmdline").read_bytes().split(b"\0")
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"--parent-pid" not in command:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_kills_an_http_worker_that_does_not_stop(tmp_path: Path) -> None:
    service = Service(tmp_path / "home", env={"MLSERVE_GRACEFUL_TIMEOUT_S": "2"})
    try:
        service.start()  # inside the try: a start that fails is stopped too
        assert service.process is not None
        workers = http_workers(service.process.pid)
        assert len(workers) == 1, workers  # one granian HTTP worker process
        os.kill(workers[0], signal.SIGSTOP)  # it can no longer finish anything
        service.process.send_signal(signal.SIGTERM)
        try:
            status = service.process.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("mlserve serve still running 30 s after SIGTERM")
        assert status == 0
        assert not alive(workers[0]), "the stopped HTTP worker outlived its server"
        assert "refused to gracefully stop" in service.log.read_text()
    finally:
        service.stop()
