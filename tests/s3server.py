"""A real S3 endpoint for the tests: ``moto_server`` (pip ``moto[server]``) on loopback.

moto implements the S3 REST API (PutObject with ``x-amz-checksum-sha256``, GetObject,
HeadObject, DeleteObject, ListObjectsV2) in one local process, so the S3 artifact
store is tested over HTTP with real requests and signatures, without a cloud account
or a container runtime. Tests that need it skip, saying why, when it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.service import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "mlserve-test",
    "AWS_SECRET_ACCESS_KEY": "mlserve-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_server_path() -> str | None:
    """The ``moto_server`` of this interpreter's environment, else of the PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@contextmanager
def moto_server(timeout_s: float = 60) -> Iterator[str]:
    """Run ``moto_server`` on a free loopback port; yield its endpoint URL."""
    binary = moto_server_path()
    assert binary is not None, "moto_server is not installed"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with status {process.returncode}")
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_bucket(endpoint: str, bucket: str) -> None:
    """``CreateBucket`` (moto takes it unsigned)."""
    response = httpx.put(f"{endpoint}/{bucket}", timeout=10)
    response.raise_for_status()
