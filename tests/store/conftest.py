"""Fixtures of the store tests: an S3 endpoint (moto_server) and a bucket on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.s3server import CREDENTIALS, create_bucket, moto_server, moto_server_path


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto_server for the whole session (skips if ``moto[server]`` is not installed)."""
    if moto_server_path() is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]'; `make dev` does)")
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket, with the standard AWS variables pointing at the endpoint."""
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    bucket = f"mlserve-{uuid.uuid4().hex[:12]}"
    create_bucket(s3_endpoint, bucket)
    return bucket
