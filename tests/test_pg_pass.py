"""Tests of tests/pg.py's split of shared resources between the two passes of `make pytest`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pg

ROOT = Path("/repo")


@pytest.mark.parametrize(
    ("backend", "redis", "artifacts", "want_redis", "want_artifacts"),
    [
        ("sqlite", "redis://127.0.0.1:6379/15", None, "redis://127.0.0.1:6379/15", None),
        (
            "postgresql",
            "redis://127.0.0.1:6379/15",
            None,
            "redis://127.0.0.1:6379/14",
            "/repo/test-artifacts/screenshots/postgresql",
        ),
        (
            "postgresql",
            "redis://:secret@cache:6380",
            "/ci/shots",
            "redis://:secret@cache:6380/1",
            "/ci/shots/postgresql",
        ),
        ("postgresql", "redis://h/0", None, "redis://h/1", None),
        ("postgresql", None, None, None, None),
    ],
)
def test_the_postgresql_pass_gets_its_own_redis_database_and_screenshots(
    backend: str,
    redis: str | None,
    artifacts: str | None,
    want_redis: str | None,
    want_artifacts: str | None,
) -> None:
    environ = {}
    if redis:
        environ["MLSERVE_TEST_REDIS_URL"] = redis
    if artifacts:
        environ["MLSERVE_TEST_ARTIFACTS"] = artifacts
    pg.separate_pass_resources(environ, ROOT, backend=backend)
    assert environ.get("MLSERVE_TEST_REDIS_URL") == want_redis
    if backend == "postgresql":
        default = str(ROOT / "test-artifacts" / "screenshots" / "postgresql")
        assert environ["MLSERVE_TEST_ARTIFACTS"] == (want_artifacts or default)
    else:
        assert "MLSERVE_TEST_ARTIFACTS" not in environ
