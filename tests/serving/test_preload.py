"""Versions behind the ``production`` aliases loaded as an HTTP worker starts, and
``/ready`` waiting for them (issue 18, item 6)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve.api.current import context_of
from mlserve.app import create_app
from mlserve.serving.preload import Preloader
from tests.conftest import keyed_client, make_settings


@pytest.fixture
def two_in_production(
    app: Flask, client: FlaskClient, two_models: dict[str, Any]
) -> dict[str, Any]:
    """``diabetes`` and ``other`` each with a ``production`` alias on version 1."""
    for name in ("diabetes", "other"):
        answer = client.put(f"/api/v1/models/{name}/aliases/production", json={"version": 1})
        assert answer.status_code == 200, answer.get_json()
    context_of(app).db.dispose()
    return two_models


def _counting_loads(app: Flask) -> list[tuple[str, int]]:
    ctx = context_of(app)
    loads: list[tuple[str, int]] = []
    original = ctx.models._load  # type: ignore[attr-defined]

    def load(row: Any) -> Any:
        loads.append((row.model_name, row.version))
        return original(row)

    ctx.models._load = load  # type: ignore[attr-defined]
    return loads


def test_a_new_worker_loads_the_production_versions_before_any_request(
    tmp_path: Path, two_in_production: dict[str, Any]
) -> None:
    worker = create_app(make_settings(tmp_path))  # the same home, preloading off
    loads = _counting_loads(worker)
    ctx = context_of(worker)
    preloader = Preloader(db=ctx.db, resolver=ctx.resolver, models=ctx.models, alias="production")
    assert preloader.status() == "loading (0 of ?)"
    preloader.run()
    assert sorted(loads) == [("diabetes", 1), ("other", 1)]
    assert (preloader.total, preloader.loaded, preloader.failed) == (2, 2, 0)
    assert preloader.status() == "ok"
    client = keyed_client(worker)
    features = {f["name"]: 0.0 for f in two_in_production["version"]["signature"]["inputs"]}
    answer = client.post("/api/v1/models/diabetes/predict", json={"instances": [features]})
    assert answer.status_code == 200, answer.get_json()
    assert len(loads) == 2  # the request found its version loaded


def test_a_version_that_cannot_load_is_counted_and_the_rest_load(
    tmp_path: Path, app: Flask, two_in_production: dict[str, Any]
) -> None:
    ctx = context_of(app)
    version = ctx.resolver.resolve("other", "production")
    for key in (version.artifact_key, version.onnx_artifact_key):
        if key is not None:
            ctx.store.delete(key)
    worker = create_app(make_settings(tmp_path))
    loads = _counting_loads(worker)
    wctx = context_of(worker)
    preloader = Preloader(
        db=wctx.db, resolver=wctx.resolver, models=wctx.models, alias="production"
    )
    preloader.run()
    assert (preloader.total, preloader.loaded, preloader.failed) == (2, 1, 1)
    assert sorted(loads) == [("diabetes", 1), ("other", 1)]
    assert preloader.status() == "ok"


def test_ready_is_503_while_versions_load_then_200(
    tmp_path: Path, two_in_production: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()
    original = Preloader._load

    def slow_load(self: Preloader, name: str) -> None:
        started.set()
        assert release.wait(30)
        original(self, name)

    monkeypatch.setattr(Preloader, "_load", slow_load)
    worker = create_app(make_settings(tmp_path, preload_alias="production"))
    client = keyed_client(worker)
    assert started.wait(30)
    loading = client.get("/ready")
    assert loading.status_code == 503
    assert loading.get_json()["error"]["details"]["models"] == "loading (0 of 2)"
    release.set()
    preload = context_of(worker).preload
    assert isinstance(preload, Preloader)
    assert preload.wait(60)
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "worker": "ok", "models": "ok"}
    assert preload.loaded == 2


def test_preloading_is_off_with_an_empty_alias(tmp_path: Path) -> None:
    worker = create_app(make_settings(tmp_path, preload_alias=""))
    assert context_of(worker).preload is None
    assert keyed_client(worker).get("/ready").get_json()["checks"] == {
        "database": "ok",
        "worker": "ok",
    }
