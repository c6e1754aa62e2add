"""The leak check of tests/leaks.py fails a run that leaves an ``mlserve`` process alive,
and kills it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
LEAKY = """
import subprocess, sys
from pathlib import Path

def test_starts_a_process(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", {label!r}],
        start_new_session=True,
    )
    Path({pid_file!r}).write_text(str(child.pid))
"""


@pytest.mark.parametrize(("label", "status"), [("mlserve serve", 1), ("something else", 0)])
def test_a_run_that_leaves_a_process_alive_fails_and_kills_it(
    tmp_path: Path, label: str, status: int
) -> None:
    pid_file = tmp_path / "pid"
    (tmp_path / "test_leaky.py").write_text(
        textwrap.dedent(LEAKY.format(label=label, pid_file=str(pid_file)))
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.leaks", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTEST_MLSERVE_LEAK_GRACE_S": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    pid = int(pid_file.read_text())
    assert run.returncode == status, run.stdout + run.stderr
    assert f"{pid}: " in run.stdout and "still alive (killed)" in run.stdout
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
