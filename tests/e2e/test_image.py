"""Build the container image with podman and start it: ``/health`` answers, as user 10001.

First a probe of a few seconds: podman runs a one-file image (the static ``ldconfig`` of
the host, imported with ``podman import``). Where podman is missing or cannot run a
container (inside an unprivileged container: crun may not set rlimits or cgroups), the
test skips with podman's own error. Where it can, building installs every dependency into
the image (minutes on a 2-core machine), so the build runs only with
``MLSERVE_TEST_IMAGE=1``. No image registry is reachable here, so the base is made
locally: ``debootstrap`` a minimal Debian with ``python3`` and ``python3-venv``, ``podman
import`` it, and build with ``--build-arg PYTHON_IMAGE=`` that base (or set
``MLSERVE_TEST_PYTHON_IMAGE`` to a Python image podman already has).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_BASE = "localhost/mlserve-test-python:bookworm"
PROBE_IMAGE = "localhost/mlserve-test-probe:static"
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run(*command: str, timeout_s: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)


def podman_usable() -> str | None:
    """Why podman cannot run containers here, or ``None`` when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman)"
    info = run("podman", "info", timeout_s=120)
    if info.returncode != 0:
        return f"podman info failed: {info.stderr.strip().splitlines()[-1:]}"
    static = Path("/sbin/ldconfig")  # statically linked on Debian: runs in an empty image
    if run("podman", "image", "exists", PROBE_IMAGE).returncode != 0 and static.exists():
        tar = subprocess.run(
            ["tar", "-C", str(static.parent), "-c", static.name], capture_output=True, check=True
        )
        imported = subprocess.run(
            ["podman", "import", "-", PROBE_IMAGE], input=tar.stdout, capture_output=True
        )
        if imported.returncode != 0:
            return f"podman import failed: {imported.stderr.decode().strip()[-300:]}"
    probe = run("podman", "run", "--rm", PROBE_IMAGE, "/ldconfig", "--version", timeout_s=120)
    if probe.returncode != 0:
        return f"podman cannot run a container here: {probe.stderr.strip()[-300:]}"
    return None


def local_python_base(tmp_path: Path) -> str:
    """A Debian base with python3 made by debootstrap and imported into podman."""
    if run("podman", "image", "exists", LOCAL_BASE).returncode == 0:
        return LOCAL_BASE
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    root = tmp_path / "rootfs"
    made = run(
        "debootstrap",
        "--variant=minbase",
        "--include=python3,python3-venv,ca-certificates",
        "bookworm",
        str(root),
    )
    if made.returncode != 0:
        pytest.skip(f"debootstrap failed: {made.stderr.strip()[-300:]}")
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["podman", "import", "--change", "CMD=/bin/bash", "-", LOCAL_BASE],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tar.wait()
    assert imported.returncode == 0, imported.stderr
    return LOCAL_BASE


def test_image_builds_and_serves_health_as_non_root(tmp_path: Path) -> None:
    reason = podman_usable()
    if reason:
        pytest.skip(reason)
    if os.environ.get("MLSERVE_TEST_IMAGE") != "1":
        pytest.skip("building the image takes minutes: opt in with MLSERVE_TEST_IMAGE=1")
    base = os.environ.get("MLSERVE_TEST_PYTHON_IMAGE") or local_python_base(tmp_path)
    probe = run("podman", "run", "--rm", base, "python3", "-c", "pass", timeout_s=300)
    if probe.returncode != 0:  # e.g. inside a container without cgroup or rlimit rights
        pytest.skip(f"podman cannot run a container here: {probe.stderr.strip()[-300:]}")
    tag = f"localhost/mlserve-test:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    built = run("podman", "build", "--build-arg", f"PYTHON_IMAGE={base}", "-t", tag, str(REPO_ROOT))
    assert built.returncode == 0, built.stderr[-3000:]
    print(f"\nimage built in {time.monotonic() - started:.0f} s")
    port = free_port()
    name = f"mlserve-test-{uuid.uuid4().hex[:8]}"
    started_run = run(
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:8000",
        "-e",
        "MLSERVE_SECRET_KEY=image-test",
        tag,
    )
    assert started_run.returncode == 0, started_run.stderr
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, run("podman", "logs", name).stderr[-3000:]
            time.sleep(0.5)
        assert run("podman", "exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        run("podman", "rm", "-f", name)
        run("podman", "rmi", "-f", tag)
