"""Protocol details (issue 13, items 5 and 6): the right status, the right headers, at once.

- a version number past what ``?version=`` takes (2^64 and more) in a path is a 404, not a 500;
- ``TRACE`` and other methods a route lacks are 405 with ``Allow`` (RFC 9110 section 15.5.6);
- ``PUT`` on a POST-only multipart route is 405, not "send JSON" (415);
- an unknown route is 404 whatever body it carries;
- an empty multipart ``name`` is refused (the schema says ``minLength: 1``);
- an over-limit ``Content-Length`` with a valid key is answered 413 before any body is read.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from mlserve.api.current import context_of
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import upload

HUGE = "18446744073709551616"  # 2^64
VERSION_ROUTES = ["", "/evaluation", "/drift", "/live-metrics"]


@pytest.mark.parametrize("number", [HUGE, "9" * 40, "1000000000"])
def test_version_number_out_of_range_in_path_is_404(
    client: FlaskClient, diabetes_model: dict[str, Any], number: str
) -> None:
    for suffix in VERSION_ROUTES:
        response = client.get(f"/api/v1/models/diabetes/versions/{number}{suffix}")
        assert_error(response, 404, "not_found")
    assert client.get("/api/v1/models/diabetes/versions/1/evaluation").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("TRACE", "/api/v1/datasets", {"GET", "POST"}),
        ("TRACE", "/api/v1/models", {"GET"}),
        ("DELETE", "/api/v1/models/x/predict/csv", {"POST"}),
    ],
)
def test_method_not_allowed_names_the_allowed_methods(
    client: FlaskClient, method: str, url: str, allowed: set[str]
) -> None:
    response = client.open(url, method=method)
    assert_error(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("url", ["/api/v1/datasets", "/api/v1/models/x/predict/csv"])
def test_put_multipart_on_post_only_route_is_405(client: FlaskClient, url: str) -> None:
    response = client.put(
        url,
        data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "text/csv", "application/x-www-form-urlencoded"]
)
def test_unknown_route_is_404_whatever_the_body(client: FlaskClient, content_type: str) -> None:
    if content_type == "multipart/form-data":
        response = client.post(
            "/api/v1/nope",
            data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
            content_type=content_type,
        )
    else:
        response = client.post("/api/v1/nope", data=b"a=1", content_type=content_type)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_upload_name_is_422_and_stores_nothing(client: FlaskClient, name: str) -> None:
    ctx = context_of(client.application)
    before = stored_state(ctx)
    details = assert_error(
        upload(client, b"a,b\n1,2\n", "x.csv", name=name), 422, "validation_error"
    )
    assert details["field"] == "name"
    assert stored_state(ctx) == before


class _Recorder(io.RawIOBase):
    """A request body that records each read: a client that sends 100 bytes and stops."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        if self.reads > 100:
            return 0
        buffer[0:1] = b"x"
        return 1


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/api/v1/models/x/predict", "application/json"),
        ("/api/v1/keys", "application/json"),
        ("/api/v1/datasets", "multipart/form-data; boundary=b"),
    ],
)
def test_over_limit_content_length_is_413_before_the_body_is_read(
    app: Flask, client: FlaskClient, url: str, content_type: str
) -> None:
    """The answer is complete before the first read; the body is drained on close."""
    body = _Recorder()
    headers = dict(client.environ_base)
    key = headers.pop("HTTP_AUTHORIZATION")
    builder = EnvironBuilder(
        path=url,
        method="POST",
        headers={"Authorization": key, "Content-Type": content_type},
        environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(10 * 1024**3)},
    )
    app_iter, status, response_headers = run_wsgi_app(app, builder.get_environ())
    answer = b"".join(app_iter)
    assert status.startswith("413"), answer
    assert b"payload_too_large" in answer
    assert response_headers["Connection"] == "close"
    assert body.reads == 0
    app_iter.close()  # type: ignore[attr-defined]
    assert body.reads > 0  # the lingering read, after the answer
