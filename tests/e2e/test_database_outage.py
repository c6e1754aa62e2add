"""``mlserve serve`` with a database that is down, then unmigrated, then lost and back.

The service starts anyway, answers 503 on ``/ready`` (and on what needs the
database) until the database is there and migrated, then serves without a restart;
during an outage a key it verified keeps predicting (``auth_outage_grace_s``). The
database is reached through a TCP relay the test cuts and restores; the service is
configured the Heroku way (``DATABASE_URL`` with a ``postgres://`` scheme, ``PORT``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.relay import TcpRelay
from tests.e2e.service import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("MLSERVE_TEST_DATABASE_URL"),
        reason="MLSERVE_TEST_DATABASE_URL is not set (no PostgreSQL server)",
    ),
]
KEY = re.compile(r"mls_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}")
ROW = {"age": 0.03, "sex": 0.05, "bmi": 0.06, "bp": 0.02, "s1": -0.04}
ROW |= {"s2": -0.03, "s3": -0.04, "s4": 0.0, "s5": 0.02, "s6": -0.02}


def until(check: Callable[[], Any], what: str, timeout_s: float = 120) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise TimeoutError(f"never happened: {what}")


@pytest.fixture
def relay(postgres_url: str) -> Iterator[TcpRelay]:
    url = make_url(postgres_url)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    yield relay
    relay.cut()


@pytest.fixture
def serve(tmp_path: Path, postgres_url: str, relay: TcpRelay) -> Iterator[dict[str, Any]]:
    """``mlserve serve --no-worker --demo`` on the relayed database, started cut."""
    url = make_url(postgres_url).set(drivername="postgres", host="127.0.0.1", port=relay.port)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLSERVE_")},
        "MLSERVE_HOME": str(tmp_path / "home"),
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "PORT": str(port),
        "MLSERVE_JOBS_IMMEDIATE": "true",
        "MLSERVE_AUTH_CACHE_TTL_S": "0",  # so every key check during the outage is the grace's
        "MLSERVE_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlserve", "serve", "--no-worker", "--demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield {"url": f"http://127.0.0.1:{port}", "log": log, "process": process}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ready(base: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{base}/ready", timeout=5)
    return response.status_code, response.json()


def test_serve_rides_out_a_database_down_unmigrated_lost_and_back(
    serve: dict[str, Any], relay: TcpRelay, postgres_url: str
) -> None:
    base, process = serve["url"], serve["process"]
    until(lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200, "serving")
    status, body = ready(base)
    assert status == 503 and body["error"]["details"]["database"] == "unreachable"

    relay.restore()  # the server is back, without the schema
    until(lambda: "schema is missing" in ready(base)[1]["error"]["details"]["database"], "up")

    upgrade = subprocess.run(
        [sys.executable, "-m", "mlserve", "db", "upgrade"],
        env={**os.environ, "MLSERVE_DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    until(lambda: ready(base)[0] == 200, "ready once migrated")
    key = until(lambda: KEY.search(serve["log"].read_text()), "the admin key printed").group()
    # Both demo models registered (an alias set after the first is served would forget
    # its cached lookup, and the outage below would find nothing cached).
    until(lambda: "database ready: serving" in serve["log"].read_text(), "setup finished")
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    predict = "/api/v1/models/diabetes/predict"
    until(lambda: http.post(predict, json={"instances": [ROW]}).status_code == 200, "demo model")

    relay.cut()  # the database is lost at runtime
    assert ready(base)[0] == 503
    assert http.get("/api/v1/models").status_code == 503
    answers = [http.post(predict, json={"instances": [ROW]}) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert answers[0].json()["predictions"] == answers[-1].json()["predictions"]

    relay.restore()
    until(lambda: ready(base)[0] == 200, "ready again")
    assert http.get("/api/v1/models").status_code == 200
    assert process.poll() is None  # never restarted
