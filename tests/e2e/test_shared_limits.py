"""Rate limits with Redis storage are shared by two ``mlserve serve`` processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.service import Service

REDIS_URL = os.environ.get("MLSERVE_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not REDIS_URL, reason="MLSERVE_TEST_REDIS_URL is not set (no Redis server)"),
]


def test_two_services_share_one_count(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    env = {
        "MLSERVE_RATE_LIMIT_STORAGE_URL": REDIS_URL,
        "MLSERVE_RATE_LIMIT_PER_KEY": "6/minute",
        "MLSERVE_RATE_LIMIT_PER_IP": "off",
    }
    first = Service(tmp_path / "home", env=env).start()
    second = Service(tmp_path / "home", env=env, args=("--no-worker",))
    second.key = first.key  # the same key, sent to another process
    second.start(with_key=False)
    try:
        with first.client() as a, second.client() as b:
            statuses = [http.get("/api/v1/models").status_code for http in (a, b) * 4]
            blocked = b.get("/api/v1/models")
    finally:
        second.stop()
        first.stop()
    assert statuses.count(200) == 6 and statuses.count(429) == 2, statuses
    assert statuses[:6] == [200] * 6
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
