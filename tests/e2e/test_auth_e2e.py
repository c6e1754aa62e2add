"""Authentication of the real ``mlserve serve`` process: the bootstrap admin key printed once,
and the refusal to serve without keys on a public address."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlserve.security.keys import KEY_PATTERN
from tests.e2e.service import Service, free_port

pytestmark = pytest.mark.e2e
# No embedded worker (nothing is trained here): readiness then needs immediate jobs.
FAST = {"MLSERVE_JOBS_IMMEDIATE": "true"}


def printed_keys(log: Path) -> list[str]:
    return [match.group(0) for match in KEY_PATTERN.finditer(log.read_text(errors="replace"))]


def test_first_start_prints_one_admin_key_and_restart_prints_none(tmp_path: Path) -> None:
    service = Service(tmp_path / "home", env=FAST, args=("--no-worker",))
    service.start(with_key=False)
    try:
        [key] = printed_keys(service.log)
        assert (service.home / "secret_key").is_file()
        assert stat.S_IMODE((service.home / "secret_key").stat().st_mode) == 0o600
        with httpx.Client(base_url=service.url, timeout=30) as http:
            anonymous = http.get("/api/v1/models")
            assert anonymous.status_code == 401
            assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="mlserve"'
            assert anonymous.json()["error"]["code"] == "unauthorized"
            assert http.get("/health").status_code == 200
            for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
                assert http.get("/api/v1/models", headers=headers).json() == {"models": []}
            keys = http.get("/api/v1/keys", headers={"X-API-Key": key}).json()["keys"]
            assert [(k["prefix"], k["role"], k["name"]) for k in keys] == [
                (key[4:12], "admin", "bootstrap")
            ]

        service.stop()
        service.start(with_key=False)
        assert printed_keys(service.log) == [key]  # the log holds both runs: no new key
        with httpx.Client(base_url=service.url, timeout=30) as http:
            # the secret survived the restart: the key still verifies
            keys = http.get("/api/v1/keys", headers={"X-API-Key": key}).json()["keys"]
            assert [k["prefix"] for k in keys] == [key[4:12]]
    finally:
        service.stop()


def test_auth_off_is_refused_on_a_public_address(tmp_path: Path) -> None:
    """One host here; tests/api/test_security.py checks the address table in-process."""
    host = "0.0.0.0"
    home = tmp_path / "home"
    env = {**os.environ, "MLSERVE_HOME": str(home), "MLSERVE_AUTH": "off"}
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "mlserve", "serve", "--host", host, "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        f"refusing to serve without authentication on {host}: "
        "MLSERVE_AUTH=off is for loopback (127.0.0.1) only"
    ) in done.stderr
    assert not KEY_PATTERN.search(done.stdout + done.stderr)
    assert not (home / "mlserve.db").exists()  # it stopped before migrating or making a key
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
