"""Shared fixtures: settings on a temporary home, the app, its test client, real data."""

from __future__ import annotations

import io
import os
import uuid

# One OpenMP/BLAS thread per process: on a 2-core machine the test processes and
# workers otherwise oversubscribe the cores and gradient boosting slows 10-50x.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Keras 3 on the torch backend (tests/serving/test_import_frameworks.py): set before any import.
os.environ.setdefault("KERAS_BACKEND", "torch")
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.settings import Settings
from tests import pg

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/datasets beside the repository; MLSERVE_TEST_CALIFORNIA_CSV points elsewhere (a
# git worktree, whose parent folder holds no shared/).
CALIFORNIA_CSV = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or REPO_ROOT.parent / "shared" / "datasets" / "california_housing.csv"
)
CALIFORNIA_TARGET = "median_house_value"
TEST_DATABASE_URL = os.environ.get("MLSERVE_TEST_DATABASE_URL")
# A run fails if a test leaves an mlserve process alive (issue 13, item 9).
pytest_plugins = ["tests.leaks"]


# --------------------------------------------------------------------------- database backend
# `make test` runs the suite on SQLite, then again with MLSERVE_TEST_BACKEND=postgresql on
# the server at MLSERVE_TEST_DATABASE_URL: see tests/pg.py.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test is about SQLite; skipped in the PostgreSQL pass"
    )
    config.addinivalue_line(
        "markers",
        "once(reason): framework-heavy, its subject not the database: runs in one pass only, "
        "the PostgreSQL pass when MLSERVE_TEST_DATABASE_URL is set, else the SQLite pass",
    )
    pg.backend()  # a bad MLSERVE_TEST_BACKEND stops the run here
    pg.separate_pass_resources(os.environ, REPO_ROOT)  # before test modules read them
    # A test's app would otherwise load its production versions in a background thread,
    # racing what the test checks of the caches: tests/serving/test_preload.py, the lean
    # worker test and the real services of tests/e2e turn preloading on.
    os.environ["MLSERVE_PRELOAD_ALIAS"] = ""


def pytest_report_header(config: pytest.Config) -> str:
    if pg.backend() == "postgresql":
        from sqlalchemy.engine import make_url

        assert pg.SERVER_URL
        server = make_url(pg.SERVER_URL).render_as_string(hide_password=True)
        return f"mlserve database: PostgreSQL, schemas of this run in {server}"
    return "mlserve database: SQLite in each test's home (MLSERVE_TEST_BACKEND=postgresql: PG)"


def _reason(marker: pytest.Mark) -> str:
    return str(marker.kwargs.get("reason") or (marker.args[0] if marker.args else ""))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if pg.backend() != "postgresql":
        if pg.SERVER_URL:  # the PostgreSQL pass runs the tests marked `once`
            for item in items:
                if (marker := item.get_closest_marker("once")) is not None:
                    reason = f"runs once, in the PostgreSQL pass: {_reason(marker)}"
                    item.add_marker(pytest.mark.skip(reason=reason))
        return
    for item in items:
        test_id = pg.node_id(item)
        module = test_id.split("::", 1)[0]
        marker = item.get_closest_marker("sqlite_only")
        if item.get_closest_marker("once") is not None:
            continue
        if marker is not None:
            reason = f"SQLite only: {_reason(marker)}"
        elif test_id in pg.SQLITE_ONLY:
            reason = f"SQLite only: {pg.SQLITE_ONLY[test_id]}"
        elif module in pg.OWN_DATABASES:
            reason = f"not in the PostgreSQL pass: {pg.OWN_DATABASES[module]}"
        elif pg.opens_no_database(item):
            reason = "not in the PostgreSQL pass: opens no database (tests.pg.NO_DATABASE)"
        else:
            continue
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _postgres() -> Iterator[pg.PostgresSchemas | None]:
    """This pass's database for every ``Settings()``: see ``tests/pg.py``.

    SQLite pass: ``MLSERVE_DATABASE_URL`` unset, so each home holds its SQLite file.
    PostgreSQL pass: the session's module schema, replaced by its test schema while
    a test runs (``_database_backend``).
    """
    saved = os.environ.pop("MLSERVE_DATABASE_URL", None)
    schemas: pg.PostgresSchemas | None = None
    try:
        if pg.backend() == "postgresql":
            from sqlalchemy.exc import OperationalError

            assert pg.SERVER_URL
            try:
                schemas = pg.PostgresSchemas(pg.SERVER_URL)
                schemas.create()
            except OperationalError as exc:
                pytest.exit(f"PostgreSQL pass: cannot prepare its schemas: {exc}", returncode=3)
            os.environ["MLSERVE_DATABASE_URL"] = schemas.module_url
        yield schemas
    finally:
        os.environ.pop("MLSERVE_DATABASE_URL", None)
        if saved is not None:
            os.environ["MLSERVE_DATABASE_URL"] = saved
        if schemas is not None:
            schemas.drop()


@pytest.fixture(scope="module", autouse=True)
def _module_database(_postgres: pg.PostgresSchemas | None) -> Iterator[None]:
    """Empty the module schema once the module's fixtures are torn down (PostgreSQL)."""
    yield
    if _postgres is not None:
        _postgres.end_module()


@pytest.fixture(autouse=True)
def _database_backend(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    _postgres: pg.PostgresSchemas | None,
) -> Iterator[None]:
    """PostgreSQL pass: the test (and its function-scoped fixtures) use the test schema.

    It starts empty, or with a copy of the module schema's rows for the tests that
    copy a module fixture's home (``tests.pg.COPIES_MODULE_DATA``), or is a new schema
    without tables for ``tests.pg.UNMIGRATED``; it is emptied afterwards.
    """
    if _postgres is None:
        if pg.opens_no_database(request.node):
            with pg.no_database_guard(request.node):
                yield
        else:
            yield
        return
    test_id = pg.node_id(request.node)
    fixture = pg.COPIES_MODULE_DATA.get(test_id.split("::", 1)[0])
    if test_id in pg.UNMIGRATED:
        url = _postgres.empty_schema_url()
    else:
        url = _postgres.test_url
        if fixture is not None and fixture in request.fixturenames:
            _postgres.copy_module_data()
    monkeypatch.setenv("MLSERVE_DATABASE_URL", url)
    try:
        yield
    finally:
        monkeypatch.setenv("MLSERVE_DATABASE_URL", _postgres.module_url)
        _postgres.end_test()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with every file under ``tmp_path``, jobs run synchronously, and ``overrides``
    (no preloading unless asked for: see ``pytest_configure``)."""
    base: dict[str, Any] = {"jobs_immediate": True, "log_level": "WARNING"}
    return Settings(home=tmp_path / "home", **{**base, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with every file under ``tmp_path`` and jobs run synchronously."""
    return make_settings(tmp_path, max_batch_rows=10_000)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    context_of(application).db.dispose()


@pytest.fixture
def ctx(app: Flask) -> Context:
    context: Context = context_of(app)
    return context


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return keyed_client(app)


def keyed_client(app: Flask, role: str = "admin") -> FlaskClient:
    """A test client that sends an API key of ``role`` (one key per app and role)."""
    from mlserve.security import keys as auth

    secrets: dict[str, str] = app.extensions.setdefault("test_keys", {})
    if role not in secrets:
        created = auth.create_key(context_of(app), role, name=f"tests-{role}")
        secrets[role] = created.secret
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secrets[role]}"
    return client


@pytest.fixture(scope="session")
def california_bytes() -> bytes:
    if not CALIFORNIA_CSV.is_file():
        pytest.skip(f"{CALIFORNIA_CSV} is missing (it lives in ../shared/datasets)")
    return CALIFORNIA_CSV.read_bytes()


@pytest.fixture(scope="session")
def california_frame(california_bytes: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(california_bytes))


def upload(
    client: FlaskClient, data: bytes, filename: str = "data.csv", name: str | None = None
) -> Any:
    """POST a file to /api/v1/datasets and return the response."""
    form: dict[str, Any] = {"file": (io.BytesIO(data), filename)}
    if name is not None:
        form["name"] = name
    return client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")


def frame_csv(frame: pd.DataFrame) -> bytes:
    """A DataFrame as CSV bytes."""
    return frame.to_csv(index=False).encode()


def train(client: FlaskClient, dataset_id: str, **spec: Any) -> Any:
    """POST a training job (immediate mode: it has finished when this returns)."""
    body = {"dataset_id": dataset_id, **spec}
    return client.post("/api/v1/training-jobs", json=body)


@pytest.fixture
def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    return frame


@pytest.fixture
def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]
    return frame


@pytest.fixture
def diabetes_model(client: FlaskClient, diabetes_frame: pd.DataFrame) -> dict[str, Any]:
    """A registered ridge model on the diabetes data: ``{"dataset", "job", "version"}``."""
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=3
    ).get_json()
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/diabetes/versions/1").get_json()
    return {"dataset": dataset, "job": job, "version": version}


@pytest.fixture
def iris_model(client: FlaskClient, iris_frame: pd.DataFrame) -> dict[str, Any]:
    """A registered logistic regression on iris with string labels."""
    dataset = upload(client, frame_csv(iris_frame), "iris.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="target",
        algorithm="logistic_regression",
        model_name="iris",
        cv_folds=3,
    ).get_json()
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/iris/versions/1").get_json()
    return {"dataset": dataset, "job": job, "version": version}


@pytest.fixture
def two_models(client: FlaskClient, diabetes_model: dict[str, Any]) -> dict[str, Any]:
    """``diabetes`` (ridge, version 1) and ``other`` (lasso), both on the diabetes dataset."""
    job = train(
        client,
        diabetes_model["dataset"]["id"],
        target="target",
        algorithm="lasso",
        model_name="other",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job
    return diabetes_model


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    assert TEST_DATABASE_URL, "MLSERVE_TEST_DATABASE_URL is not set"
    server = make_url(TEST_DATABASE_URL)
    name = f"mlserve_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def just_before_an_update(
    ctx: Context,
    table: str,
    action: Callable[[], Any],
    when: Callable[[list[Any]], bool] = bool,
) -> Iterator[list[Any]]:
    """Run ``action`` once, just before the first ``UPDATE <table>`` statement whose
    bound values satisfy ``when`` reaches the database: another request's or process's
    write landing between a read and a write. Yields the list that receives ``action``'s
    result."""
    results: list[Any] = []

    def hook(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = list(params.values()) if isinstance(params, dict) else list(params or ())
        if statement.startswith(f"UPDATE {table} ") and not results and when(values):
            results.append(None)  # first: the action's own UPDATE comes here too
            results[0] = action()

    event.listen(ctx.db.engine, "before_cursor_execute", hook)
    try:
        yield results
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", hook)
