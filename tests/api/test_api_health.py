"""Liveness, readiness, the OpenAPI document, and JSON errors for unknown routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.jobs.heartbeat import beat
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error
from tests.conftest import keyed_client


@pytest.fixture
def queued_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """An app whose jobs go to a queue (not run inline), with no worker started."""
    application = create_app(
        settings.model_copy(update={"home": tmp_path / "queued", "jobs_immediate": False})
    )
    yield application
    context_of(application).db.dispose()


def test_health_returns_ok(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_with_immediate_jobs_returns_200(client: FlaskClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "worker": "ok"}}


def test_ready_without_live_worker_returns_503(queued_app: Flask) -> None:
    response = keyed_client(queued_app).get("/ready")
    details = assert_error(response, 503, "service_unavailable")
    assert details == {"message": "not ready", "database": "ok", "worker": "no live worker"}


def test_ready_with_heartbeat_returns_200(queued_app: Flask) -> None:
    beat(context_of(queued_app), "worker-1")
    response = keyed_client(queued_app).get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "worker": "ok"}


def test_ready_with_unreachable_database_returns_503(
    client: FlaskClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx.db, "ping", lambda: False)
    details = assert_error(client.get("/ready"), 503, "service_unavailable")
    assert details["database"] == "unreachable"
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("DELETE", "/health", 405, "method_not_allowed"),
        ("PUT", "/api/v1/datasets", 405, "method_not_allowed"),
        ("GET", "/docs/assets/secret.txt", 404, "not_found"),
    ],
)
def test_unknown_route_returns_json_error(
    client: FlaskClient, method: str, path: str, status: int, code: str
) -> None:
    assert_error(client.open(path, method=method), status, code)


def test_openapi_lists_every_route(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.get_json()["paths"]
    expected = {
        "/health": {"get"},
        "/ready": {"get"},
        "/api/v1/datasets": {"get", "post"},
        "/api/v1/datasets/{dataset_id}": {"get"},
        "/api/v1/training-jobs": {"get", "post"},
        "/api/v1/training-jobs/{job_id}": {"get"},
        "/api/v1/models": {"get"},
        "/api/v1/models/{name}": {"get"},
        "/api/v1/models/{name}/versions": {"get"},
        "/api/v1/models/{name}/versions/{version}": {"get"},
        "/api/v1/models/{name}/aliases/{alias}": {"put", "delete"},
        "/api/v1/models/{name}/predict": {"post"},
        "/v1/models/{name}:predict": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert not [p for p in paths if p.count("{") != p.count("}")]
    for path in ("/api/v1/models/{name}/predict", "/v1/models/{name}:predict"):
        body = paths[path]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {"instances", "inputs", "extra", "routing_key"}
        # instances or inputs, and the two options
        assert (schema["minProperties"], schema["maxProperties"]) == (1, 3)
    parameters = paths["/api/v1/models/{name}/predict"]["post"]["parameters"]
    assert {p["name"] for p in parameters if p["in"] == "query"} == {"alias", "version"}
