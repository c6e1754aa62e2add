"""Cached model lookups: no query per prediction, registry changes picked up, hot swaps."""

from __future__ import annotations

import gc
import logging
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.bootstrap import build_context
from mlserve.context import Context
from mlserve.errors import NotFound, ServiceUnavailable
from mlserve.registry import lookup
from mlserve.registry import service as registry
from mlserve.serving.resolver import Resolver
from mlserve.settings import Settings
from mlserve.store.database import Database
from mlserve.store.orm import ModelVersion
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, train, upload

WAIT_S = 10.0  # bound on every wait for a background thread
PREDICT = "/api/v1/models/diabetes/predict"


def _settings(home: Path) -> Settings:
    """No watcher thread: tests call ``refresh`` or install a watcher themselves."""
    return Settings(
        home=home, jobs_immediate=True, log_level="WARNING", model_refresh_interval_ms=0
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with ``diabetes`` v1 (ridge) and v2 (lasso), ``production`` and
    ``staging`` on v1; trained once and copied for each test."""
    from sklearn.datasets import load_diabetes

    home = tmp_path_factory.mktemp("resolver") / "home"
    application = create_app(_settings(home))
    client = keyed_client(application)
    frame = load_diabetes(as_frame=True).frame
    dataset = upload(client, frame_csv(frame), "diabetes.csv").get_json()
    for algorithm in ("ridge", "lasso"):
        job = train(
            client, dataset["id"], target="target", algorithm=algorithm,
            model_name="diabetes", cv_folds=0,
        ).get_json()  # fmt: skip
        assert job["status"] == "succeeded", job
    for alias in ("production", "staging"):
        response = client.put(f"/api/v1/models/diabetes/aliases/{alias}", json={"version": 1})
        assert response.status_code == 200
    context_of(application).db.dispose()
    return {"home": home, "dataset_id": dataset["id"]}


@pytest.fixture
def settings(tmp_path: Path, template: dict[str, Any]) -> Settings:
    home = tmp_path / "home"
    shutil.copytree(template["home"], home)
    return _settings(home)


@pytest.fixture
def rows(diabetes_frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = diabetes_frame.drop(columns="target").head(2).to_dict("records")
    return records


@pytest.fixture
def other(settings: Settings, ctx: Context) -> Iterator[Context]:
    """Another process's context on the same database and artifact store."""
    context = build_context(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def watching(ctx: Context) -> Iterator[None]:
    """Replace the app's resolver by one whose watcher polls every 20 ms."""
    original = ctx.resolver
    ctx.resolver = Resolver(db=ctx.db, models=ctx.models, refresh_interval_s=0.02)
    yield
    thread = ctx.resolver._watcher
    ctx.resolver = original
    gc.collect()
    if thread is not None:  # ends once collected; not waited for long (logs may hold it)
        thread.join(0.3)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def _served(client: FlaskClient, rows: list[dict[str, Any]], query: str = "") -> Any:
    """The version that answers a prediction (or the error response)."""
    response = client.post(PREDICT + query, json={"instances": rows})
    if response.status_code != 200:
        return response
    body = response.get_json()
    assert len(body["predictions"]) == len(rows)
    return body["model_version"]


class Statements:
    """SQL statements executed on ``ctx``'s engine, with the thread that ran each."""

    def __init__(self, ctx: Context) -> None:
        self.engine = ctx.db.engine
        self.seen: list[tuple[int, str]] = []
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append((threading.get_ident(), statement))

    def on_this_thread(self) -> int:
        me = threading.get_ident()
        return sum(ident == me for ident, _ in self.seen)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(ctx: Context) -> Iterator[Statements]:
    recorder = Statements(ctx)
    yield recorder
    recorder.close()


# --------------------------------------------------------------------------- no query per request

PREDICT_URLS = [
    PREDICT,
    PREDICT + "?alias=production",
    PREDICT + "?alias=staging",
    PREDICT + "?version=2",
    "/v1/models/diabetes:predict",
]


def _predict_all(client: FlaskClient, rows: list[dict[str, Any]]) -> None:
    for url in PREDICT_URLS:
        response = client.post(url, json={"instances": rows})
        assert response.status_code == 200, response.get_json()


def test_steady_predictions_make_no_query_after_the_first(
    client: FlaskClient, statements: Statements, rows: Any
) -> None:
    _predict_all(client, rows)
    first = statements.on_this_thread()  # not the prediction log's writer thread
    assert first >= len(PREDICT_URLS)  # each lookup was resolved once
    for _ in range(25):
        _predict_all(client, rows)
    assert statements.on_this_thread() == first


def test_requests_make_no_query_while_the_watcher_polls(
    client: FlaskClient,
    ctx: Context,
    watching: None,
    statements: Statements,
    rows: Any,
) -> None:
    _predict_all(client, rows)
    first = statements.on_this_thread()
    assert first > 0
    refreshes = ctx.resolver.refreshes
    polled = len(statements.seen) - first
    _until(lambda: len(statements.seen) - statements.on_this_thread() > polled + 3)
    for _ in range(25):
        _predict_all(client, rows)
    assert statements.on_this_thread() == first
    assert ctx.resolver.refreshes == refreshes  # nothing changed: polls only read the generation


# --------------------------------------------------------------------------- changes


@pytest.mark.parametrize(
    ("change", "query", "expected"),
    [
        (lambda c: registry.set_alias(c, "diabetes", "production", 2), "", 2),
        (lambda c: registry.delete_alias(c, "diabetes", "production"), "", 2),  # latest
        (lambda c: registry.set_alias(c, "diabetes", "staging", 2), "?alias=staging", 2),
        (lambda c: registry.delete_alias(c, "diabetes", "staging"), "?alias=staging", 404),
        (lambda c: registry.set_alias(c, "diabetes", "staging", 2), "", 1),  # unrelated
    ],
    ids=["move-production", "delete-production", "move-staging", "delete-staging", "unrelated"],
)
def test_change_by_another_process_is_picked_up_by_refresh(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    rows: Any,
    change: Callable[[Context], Any],
    query: str,
    expected: int,
) -> None:
    assert _served(client, rows, query) == 1
    assert ctx.resolver.refresh() is False  # nothing changed yet
    change(other)
    assert _served(client, rows, query) == 1  # this process has not looked yet
    assert ctx.resolver.refresh() is True
    served = _served(client, rows, query)
    if expected == 404:
        details = assert_error(served, 404, "not_found")
        assert details["alias"] == "staging"
    else:
        assert served == expected
    assert ctx.resolver.refresh() is False
    assert ctx.resolver.refreshes == 1


def test_watcher_picks_up_change_by_another_process(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    watching: None,
    rows: Any,
) -> None:
    assert _served(client, rows) == 1
    thread = ctx.resolver._watcher
    assert thread is not None and thread.is_alive() and thread.daemon
    assert thread.name == "mlserve-registry-watcher"
    registry.set_alias(other, "diabetes", "production", 2)
    _until(lambda: _served(client, rows) == 2)
    registry.set_alias(other, "diabetes", "production", 1)
    _until(lambda: _served(client, rows) == 1)
    assert ctx.resolver.refreshes >= 2
    assert ctx.resolver._watcher is thread  # one watcher per resolver


@pytest.mark.parametrize(
    ("request_change", "expected"),
    [
        (lambda c: c.put("/api/v1/models/diabetes/aliases/production", json={"version": 2}), 2),
        (lambda c: c.delete("/api/v1/models/diabetes/aliases/production"), 2),
    ],
    ids=["set-alias", "delete-alias"],
)
def test_change_in_this_process_applies_at_once_without_watcher(
    client: FlaskClient,
    ctx: Context,
    rows: Any,
    request_change: Callable[[FlaskClient], Any],
    expected: int,
) -> None:
    assert ctx.resolver._interval_s == 0
    assert _served(client, rows) == 1
    assert request_change(client).status_code in (200, 204)
    assert _served(client, rows) == expected
    assert ctx.resolver._watcher is None


def test_new_version_trained_in_this_process_applies_at_once(
    client: FlaskClient, template: dict[str, Any], other: Context, rows: Any
) -> None:
    assert _served(client, rows) == 1
    registry.delete_alias(other, "diabetes", "production")
    assert _served(client, rows) == 1  # still cached: nothing told this process
    job = train(
        client, template["dataset_id"], target="target", algorithm="ridge",
        model_name="diabetes", cv_folds=0, params={"alpha": 0.5},
    ).get_json()  # fmt: skip
    assert job["model_version"] == 3
    assert _served(client, rows) == 3  # no production alias: the latest version serves


def test_every_registry_change_bumps_the_generation(ctx: Context, other: Context) -> None:
    start = registry.generation(ctx)
    assert start == 4  # two versions, two aliases
    registry.set_alias(ctx, "diabetes", "production", 2)
    registry.set_alias(other, "diabetes", "production", 2)  # a no-op move still counts
    registry.delete_alias(ctx, "diabetes", "staging")
    assert registry.generation(ctx) == registry.generation(other) == start + 3
    with pytest.raises(NotFound):
        registry.delete_alias(ctx, "diabetes", "staging")
    with pytest.raises(NotFound):
        registry.set_alias(ctx, "diabetes", "staging", 9)
    assert registry.generation(ctx) == start + 3


def test_refresh_loads_the_new_version_before_swapping(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx.models.clear()
    assert _served(client, rows) == 1
    assert len(ctx.models) == 1
    registry.set_alias(other, "diabetes", "production", 2)
    loads: list[tuple[int, int]] = []
    load = ctx.models._load

    def spy(row: ModelVersion) -> Any:
        # While the new version loads, lookups still answer with the old one.
        loads.append((row.version, ctx.resolver.resolve("diabetes").version))
        return load(row)

    monkeypatch.setattr(ctx.models, "_load", spy)
    assert ctx.resolver.refresh() is True
    assert loads == [(2, 1)]
    assert len(ctx.models) == 2
    assert _served(client, rows) == 2
    assert loads == [(2, 1)]  # the first request on v2 found it loaded


def test_refresh_drops_a_lookup_whose_new_version_cannot_load(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    rows: Any,
) -> None:
    assert _served(client, rows) == 1
    row = registry.get_version(ctx, "diabetes", 2)
    (Path(ctx.store.root) / str(row.onnx_artifact_key)).unlink()
    registry.set_alias(other, "diabetes", "production", 2)
    assert ctx.resolver.refresh() is True
    # The alias now means v2, whose artifact is gone: the request says so.
    assert "missing" in assert_error(_served(client, rows), 409, "conflict")["message"]
    registry.set_alias(other, "diabetes", "production", 1)
    assert ctx.resolver.refresh() is True
    assert _served(client, rows) == 1


# --------------------------------------------------------------------------- database down


def _database_files(settings: Settings) -> list[Path]:
    db = settings.home / "mlserve.db"
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def test_cached_lookups_keep_serving_while_the_database_is_unreachable(
    client: FlaskClient,
    ctx: Context,
    settings: Settings,
    rows: Any,
    tmp_path: Path,
) -> None:
    assert _served(client, rows) == 1
    assert _served(client, rows, "?version=2") == 2
    ctx.db.dispose()
    backup = tmp_path / "backup"
    backup.mkdir()
    moved = _database_files(settings)
    for path in moved:
        path.rename(backup / path.name)
    (settings.home / "mlserve.db").mkdir()  # SQLite cannot open a folder
    try:
        with pytest.raises(ServiceUnavailable, match="database unavailable"):
            registry.generation(ctx)
        for _ in range(3):
            assert _served(client, rows) == 1
            assert _served(client, rows, "?version=2") == 2
        with pytest.raises(ServiceUnavailable):
            ctx.resolver.refresh()
        assert _served(client, rows) == 1  # the failed refresh kept the cache
        # A lookup that is not cached reports the outage.
        assert_error(_served(client, rows, "?alias=staging"), 503, "service_unavailable")
    finally:
        ctx.db.dispose()
        (settings.home / "mlserve.db").rmdir()
        for path in moved:
            (backup / path.name).rename(path)
    assert ctx.resolver.refresh() is False
    assert _served(client, rows, "?alias=staging") == 1


def test_a_change_here_forgets_only_its_models_lookups_so_others_ride_out_an_outage(
    client: FlaskClient,
    ctx: Context,
    rows: Any,
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``serve --demo`` registers its second model while the first is served: if the
    database is lost right after, the first model's lookups are still cached."""
    assert _served(client, rows) == 1
    assert _served(client, rows, "?alias=staging") == 1
    other = "/api/v1/models/other/predict"
    job = train(
        client, template["dataset_id"], target="target", algorithm="lasso",
        model_name="other", cv_folds=0,
    ).get_json()  # fmt: skip
    assert job["status"] == "succeeded", job  # a change made in this process
    assert client.post(other, json={"instances": rows}).status_code == 200
    registry.set_alias(ctx, "other", "production", 1)  # forgets "other" only

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise ServiceUnavailable("database unavailable")

    monkeypatch.setattr(lookup, "generation", down)
    monkeypatch.setattr(lookup, "resolve", down)
    for _ in range(3):
        assert _served(client, rows) == 1
        assert _served(client, rows, "?alias=staging") == 1
    assert_error(client.post(other, json={"instances": rows}), 503, "service_unavailable")
    monkeypatch.undo()
    assert client.post(other, json={"instances": rows}).status_code == 200
    registry.set_alias(ctx, "diabetes", "production", 2)
    assert _served(client, rows) == 2  # a change to diabetes applies at once
    assert _served(client, rows, "?alias=staging") == 1


def test_a_change_here_leaves_other_models_to_the_watchers_next_poll(
    client: FlaskClient, ctx: Context, other: Context, rows: Any
) -> None:
    """Another process moves diabetes' alias; a change here to another model keeps
    diabetes' cached lookup, and the next poll still picks the move up (a lookup made
    in between must not mark the cache as up to date)."""
    assert _served(client, rows) == 1
    registry.set_alias(other, "diabetes", "production", 2)
    ctx.resolver.invalidate("elsewhere")  # as a change to model "elsewhere" made here
    assert _served(client, rows) == 1  # cached: not this process's change to diabetes
    assert _served(client, rows, "?version=2") == 2  # a new lookup meanwhile
    assert ctx.resolver.refresh() is True
    assert _served(client, rows) == 2


def test_database_failing_during_refresh_keeps_cached_lookups(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _served(client, rows) == 1
    registry.set_alias(other, "diabetes", "production", 2)
    resolve = lookup.resolve

    def down(*_args: Any, **_kwargs: Any) -> ModelVersion:
        raise ServiceUnavailable("database unavailable")

    # The generation is read, then the database goes away before the lookups are redone.
    monkeypatch.setattr(lookup, "resolve", down)
    with pytest.raises(ServiceUnavailable):  # as documented: cached lookups are kept
        ctx.resolver.refresh()
    assert _served(client, rows) == 1  # still answered from the cache
    monkeypatch.setattr(lookup, "resolve", resolve)
    assert ctx.resolver.refresh() is True
    assert _served(client, rows) == 2


@pytest.mark.parametrize(
    ("error", "level", "message"),
    [
        (
            lambda: ServiceUnavailable("database unavailable"),
            logging.WARNING,
            "registry refresh failed, serving cached models: database unavailable",
        ),
        (lambda: RuntimeError("boom"), logging.ERROR, "registry refresh failed"),
    ],
    ids=["database-down", "unexpected"],
)
def test_watcher_survives_failed_refreshes(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    watching: None,
    rows: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Callable[[], Exception],
    level: int,
    message: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="mlserve.serving.resolver")
    assert _served(client, rows) == 1
    generation = lookup.generation
    failures: list[int] = []

    def failing(_db: Database) -> int:
        failures.append(1)
        raise error()  # a fresh one: a kept traceback would keep the resolver alive

    monkeypatch.setattr(lookup, "generation", failing)
    _until(lambda: len(failures) >= 3)
    assert _served(client, rows) == 1
    records = [r for r in caplog.records if r.name == "mlserve.serving.resolver"]
    assert records and {(r.levelno, r.getMessage()) for r in records} == {(level, message)}
    monkeypatch.setattr(lookup, "generation", generation)
    registry.set_alias(other, "diabetes", "production", 2)
    _until(lambda: _served(client, rows) == 2)  # the watcher kept going


# --------------------------------------------------------------------------- what is cached


def test_failed_lookups_are_not_cached(
    client: FlaskClient,
    ctx: Context,
    other: Context,
    statements: Statements,
    rows: Any,
) -> None:
    assert_error(_served(client, rows, "?alias=canary"), 404, "not_found")
    assert_error(_served(client, rows, "?version=3"), 404, "not_found")
    # Another process adds the alias; this one was neither told nor refreshed.
    registry.set_alias(other, "diabetes", "canary", 2)
    assert _served(client, rows, "?alias=canary") == 2
    before = len(statements.seen)
    for _ in range(2):
        with pytest.raises(NotFound, match="model 'nope' not found"):
            ctx.resolver.resolve("nope")
    assert len(statements.seen) > before + 1  # each attempt asked the database


def _racing_resolve(
    monkeypatch: pytest.MonkeyPatch, during: Callable[[], Any]
) -> list[ModelVersion]:
    """Make the next ``lookup.resolve`` run ``during`` after reading its answer."""
    original = lookup.resolve
    answers: list[ModelVersion] = []

    def racing(*args: Any, **kwargs: Any) -> ModelVersion:
        row = original(*args, **kwargs)
        if not answers:
            answers.append(row)
            during()
        return row

    monkeypatch.setattr(lookup, "resolve", racing)
    return answers


def test_lookup_racing_a_refresh_is_not_stored(
    ctx: Context, other: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = ctx.resolver
    assert resolver.resolve("diabetes").version == 1

    def change_then_tick() -> None:
        registry.set_alias(other, "diabetes", "production", 2)
        assert resolver.refresh() is True  # the watcher's poll lands meanwhile

    answers = _racing_resolve(monkeypatch, change_then_tick)
    assert resolver.resolve("diabetes", alias="production").version == 1  # read before
    assert [a.version for a in answers] == [1]
    assert resolver.resolve("diabetes", alias="production").version == 2
    assert resolver.resolve("diabetes").version == 2


def test_lookup_racing_another_process_is_corrected_by_the_next_refresh(
    ctx: Context, other: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = ctx.resolver
    assert resolver.resolve("diabetes").version == 1
    _racing_resolve(monkeypatch, lambda: registry.set_alias(other, "diabetes", "production", 2))
    assert resolver.resolve("diabetes", alias="production").version == 1
    assert resolver.refresh() is True  # the generation it was stored under is behind
    assert resolver.resolve("diabetes", alias="production").version == 2
    assert resolver.resolve("diabetes").version == 2


@pytest.mark.parametrize("known", [True, False], ids=["generation-known", "after-invalidate"])
def test_lookup_racing_a_change_in_this_process_is_not_cached_stale(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    resolver = ctx.resolver
    assert resolver._interval_s == 0  # no watcher to correct it later
    if known:
        assert resolver.resolve("diabetes").version == 1
    _racing_resolve(monkeypatch, lambda: registry.set_alias(ctx, "diabetes", "production", 2))
    assert resolver.resolve("diabetes", alias="production").version == 1  # read before
    assert resolver.resolve("diabetes", alias="production").version == 2


# --------------------------------------------------------------------------- watcher lifetime


def test_no_watcher_thread_when_interval_is_zero(ctx: Context) -> None:
    resolver = Resolver(db=ctx.db, models=ctx.models, refresh_interval_s=0)
    assert resolver.resolve("diabetes").version == 1
    assert resolver._watcher is None


def test_watcher_thread_ends_once_resolver_is_collected(ctx: Context) -> None:
    resolver = Resolver(db=ctx.db, models=ctx.models, refresh_interval_s=0.01)
    assert resolver.resolve("diabetes").version == 1
    thread = resolver._watcher
    assert thread is not None and thread.is_alive()
    ref = weakref.ref(resolver)
    del resolver
    gc.collect()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert ref() is None


def test_resolver_collected_while_database_is_down_still_ends_its_watcher(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = Resolver(db=ctx.db, models=ctx.models, refresh_interval_s=0.01)
    resolver.resolve("diabetes")
    thread = resolver._watcher
    assert thread is not None
    calls: list[int] = []

    def down(_db: Database) -> int:
        calls.append(1)
        raise ServiceUnavailable("database unavailable")

    monkeypatch.setattr(lookup, "generation", down)
    _until(lambda: len(calls) >= 2)
    del resolver
    gc.collect()
    thread.join(WAIT_S)
    assert not thread.is_alive()
