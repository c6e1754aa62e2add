"""Processes the test run started and did not end (issue 13, item 9).

Every process a test starts inherits :data:`RUN_VARIABLE`, set to one id per run when the
run is configured (the cluster test passes the environment on without ``MLSERVE_*``
variables, hence a name outside that prefix). When the run ends, any process still
carrying this run's id is one a test left behind, a pass or a failure alike; the run
fails if one of them is an ``mlserve`` process, and every one is killed.

A pytest plugin: tests/conftest.py loads it (``pytest_plugins``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

RUN_VARIABLE = "PYTEST_MLSERVE_RUN_ID"


def mark_run() -> str:
    """Give this run (and every process it starts) its id; return it."""
    run_id = uuid.uuid4().hex
    os.environ[RUN_VARIABLE] = run_id
    return run_id


def _carries(pid: int, marker: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:  # gone, or not ours to read
        return False
    return state != "Z" and marker in environ.split(b"\0")


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


def left_behind(run_id: str, grace_s: float = 10.0) -> dict[int, str]:
    """Processes but this one still carrying ``run_id``, given ``grace_s`` seconds to exit
    (a stop sent just before the end); pid -> command line."""
    marker = f"{RUN_VARIABLE}={run_id}".encode()
    deadline = time.monotonic() + grace_s
    while True:
        found = {
            int(entry.name): _command(int(entry.name))
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
            and int(entry.name) != os.getpid()
            and _carries(int(entry.name), marker)
        }
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


def kill(pids: list[int]) -> None:
    """SIGKILL each of ``pids`` (those already gone are skipped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


RUN_ID = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if Path("/proc/self/environ").exists():
        config.stash[RUN_ID] = mark_run()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left an ``mlserve`` process alive; kill what is left."""
    run_id = session.config.stash.get(RUN_ID, None)
    if run_id is None:
        return
    found = left_behind(run_id, float(os.environ.get("PYTEST_MLSERVE_LEAK_GRACE_S", "10")))
    if not found:
        return
    kill(list(found))
    listing = "\n".join(f"  {pid}: {command}" for pid, command in sorted(found.items()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"processes started by this run and still alive (killed):\n{listing}")
    if any("mlserve" in command for command in found.values()) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
