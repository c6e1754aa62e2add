"""The newer peers' CVE classes (2025-2026) that no other test shows (docs/security.md).

- Triton CVE-2025-23310 (chunked-encoding length overflow): a chunked body, with no
  ``Content-Length``, past the limits is a 413 on every kind of route, never a 500;
- MLflow CVE-2026-4137 (world-writable temporary folders): no file or folder the server
  writes under its home is writable by others, and no temporary file is left.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from flask import Flask
from sklearn.datasets import load_diabetes
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, make_settings, train, upload

LIMIT = 4096


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_content_length_bytes=LIMIT, max_json_body_bytes=LIMIT // 2)


def _chunked(app: Flask, url: str, data: bytes, content_type: str) -> TestResponse:
    environ = EnvironBuilder(
        url,
        method="POST",
        data=data,
        content_type=content_type,
        headers={
            "Transfer-Encoding": "chunked",
            "Authorization": str(keyed_client(app).environ_base["HTTP_AUTHORIZATION"]),
        },
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    return TestResponse(app_iter, status, headers, request=None)  # type: ignore[arg-type]


def _multipart(data: bytes) -> tuple[bytes, str]:
    builder = EnvironBuilder(method="POST", data={"file": (io.BytesIO(data), "x.csv")})
    body = builder.get_environ()["wsgi.input"].read()
    return body, str(builder.content_type)


@pytest.mark.parametrize(
    "url",
    ["/api/v1/models/x/predict", "/v1/models/x:predict", "/api/v1/keys", "/api/v1/datasets"],
)
def test_chunked_body_past_the_limit_is_413(app: Flask, url: str) -> None:
    if url.endswith("datasets"):
        data, content_type = _multipart(b"a,b\n" + b"1,2\n" * LIMIT)
    else:
        data, content_type = b'{"instances": [' + b"1," * LIMIT + b"1]}", "application/json"
    response = _chunked(app, url, data, content_type)
    assert_error(response, 413, "payload_too_large")


def _modes(home: Path) -> dict[str, int]:
    return {str(p.relative_to(home)): p.stat().st_mode for p in [home, *home.rglob("*")]}


def test_nothing_the_server_writes_is_writable_by_others(tmp_path: Path) -> None:
    home = tmp_path / "modes" / "home"
    app = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    try:
        client = keyed_client(app)
        frame = load_diabetes(as_frame=True).frame.head(60)
        dataset = upload(client, frame_csv(frame), "d.csv").get_json()
        job = train(
            client, dataset["id"], target="target", algorithm="ridge", model_name="m", cv_folds=0
        )
        assert job.get_json()["status"] == "succeeded", job.get_json()
    finally:
        context_of(app).db.dispose()
    modes = _modes(home)
    assert any(name.endswith(".parquet") for name in modes)
    writable = {name: oct(mode) for name, mode in modes.items() if mode & stat.S_IWOTH}
    assert writable == {}
    assert [name for name in modes if ".tmp" in name or name.startswith("tmp")] == []
