"""Run the test suite against PostgreSQL instead of a SQLite file per test home.

``make test`` runs the suite twice: on SQLite, then with
``MLSERVE_TEST_BACKEND=postgresql`` on the server at ``MLSERVE_TEST_DATABASE_URL``. In
that second pass :class:`PostgresSchemas` creates two schemas of its own in that
database and applies the Alembic migrations to each, once per session, and
``tests/conftest.py`` points ``MLSERVE_DATABASE_URL`` at them, so that every
``Settings()`` and every ``mlserve`` subprocess of the e2e tests uses PostgreSQL:

- the *test* schema while a test runs: what its function-scoped fixtures and the
  test itself write; emptied after every test;
- the *module* schema while module-, class- or session-scoped fixtures are set up
  (a module's shared app and its data live there while the module runs, as they
  would in the SQLite file of that fixture's home); emptied after every module.

A URL selects its schema with libpq's ``options=-csearch_path=<schema>`` and names
its connections after it (``application_name``). After a test, the engines it
created on the test schema are disposed, connections still open on that schema
(a child process's, a thread's) are ended, and every table is emptied: ``DELETE``
in foreign-key order and identity sequences restarted, a few milliseconds, far
cheaper than ``TRUNCATE`` or a migration per test. Tests of one session never run
concurrently; each session (another run, another engineer's) has schemas of its
own, dropped at its end, and schemas left by a crashed session are dropped by the
next one (each session holds an advisory lock on its schemas' name).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import weakref
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import Pool

BACKENDS = ("sqlite", "postgresql")
BACKEND = os.environ.get("MLSERVE_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"
SERVER_URL = os.environ.get("MLSERVE_TEST_DATABASE_URL")
SCHEMA_PREFIX = "mlserve_t_"
_SESSION_NAME_LENGTH = len(SCHEMA_PREFIX) + 12

# Tests whose subject is SQLite itself, skipped in the PostgreSQL pass (``pytest -rs``
# lists them with these reasons). A test can also say so with
# ``@pytest.mark.sqlite_only(reason=...)``.
SQLITE_ONLY: dict[str, str] = {
    "tests/cli/test_cli.py::test_db_upgrade_creates_schema": (
        "checks the SQLite file `mlserve db upgrade` creates under MLSERVE_HOME (on "
        "PostgreSQL: test_backends.py::test_postgres_migrations_apply_to_empty_database)"
    ),
    "tests/serving/test_resolver.py::"
    "test_cached_lookups_keep_serving_while_the_database_is_unreachable": (
        "makes the database unreachable by replacing the SQLite file with a folder "
        "(test_database_failing_during_refresh_keeps_cached_lookups runs on both)"
    ),
    "tests/e2e/test_service.py::test_service_restarts_its_worker_after_kill_9": (
        "reads the worker heartbeats straight from the SQLite file under MLSERVE_HOME"
    ),
}

# Modules that choose their databases themselves (explicit URLs, a new PostgreSQL
# database per test): they run in the SQLite pass only, where they already use the
# PostgreSQL server; running them again would test nothing new.
OWN_DATABASES: dict[str, str] = {
    "tests/e2e/test_cluster.py": (
        "runs its replicas and workers on a new PostgreSQL database of its own, and runs in "
        "the SQLite pass"
    ),
    "tests/e2e/test_database_outage.py": (
        "creates its own PostgreSQL database behind a relay it cuts, and runs in the SQLite pass"
    ),
    "tests/store/test_backends.py": (
        "chooses its databases itself (a new PostgreSQL database per test, or SQLite "
        "beside Redis workers) and runs in the SQLite pass"
    ),
}

# Tests that need a database without any table (``migrate_on_start=False`` on SQLite):
# in the PostgreSQL pass they get a new, empty schema of their own.
UNMIGRATED: set[str] = {
    "tests/jobs/test_worker.py::test_unmigrated_database_is_503_naming_the_fix",
    "tests/store/test_migrations.py::test_model_version_memory_is_added_and_removed",
    "tests/store/test_migrations.py::test_traffic_policy_columns_are_added_and_removed",
}

# Modules whose tests start from a copy of a module fixture's home (its SQLite file
# included), keyed to that fixture: in the PostgreSQL pass, a test that uses the
# fixture starts with a copy of the module schema's rows in the test schema.
COPIES_MODULE_DATA: dict[str, str] = {
    "tests/serving/test_resolver.py": "template",
}

# Modules that never open a database (estimators, converters, parsers, the layout): the
# PostgreSQL pass would run them again unchanged, so it skips them. The SQLite pass
# proves the claim: ``no_database_guard`` fails any of their tests that opens a
# connection to any database.
NO_DATABASE: tuple[str, ...] = (
    "tests/test_layout.py",
    "tests/test_pg_pass.py",
    "tests/datasets/test_datasets.py",
    "tests/datasets/test_stats.py",
    "tests/serving/test_loader.py",
    "tests/serving/test_onnx.py",
    "tests/serving/test_onnx_torch.py",
    "tests/serving/test_validation.py",
    "tests/training/test_algorithms.py",
    "tests/training/test_catalogue.py",
    "tests/training/test_evaluation.py",
    "tests/training/test_metrics.py",
    "tests/training/test_preprocessing.py",
    "tests/training/test_reservoir.py",
    "tests/training/test_signature.py",
    "tests/training/test_torch_cuda.py",
    "tests/training/test_torch_mlp.py",
    "tests/training/test_training.py",
)


def separate_pass_resources(
    environ: MutableMapping[str, str], repo_root: Path, backend: str = BACKEND
) -> None:
    """Give the PostgreSQL pass Redis and screenshot folders apart from the SQLite pass's.

    ``make pytest`` runs the two passes side by side, and some tests flush their Redis
    database (tests/store/test_backends.py) or count rate limits in it: in the PostgreSQL
    pass, ``MLSERVE_TEST_REDIS_URL`` names the database numbered one below (``/15`` ->
    ``/14``; no number: ``/1``), and ``MLSERVE_TEST_ARTIFACTS`` a ``postgresql`` subfolder.
    The SQLite pass keeps both as they are.
    """
    if backend != "postgresql":
        return
    redis_url = environ.get("MLSERVE_TEST_REDIS_URL")
    if redis_url:
        parts = urlsplit(redis_url)
        number = parts.path.strip("/")
        below = int(number) - 1 if number.isdigit() and int(number) > 0 else 1
        environ["MLSERVE_TEST_REDIS_URL"] = urlunsplit(parts._replace(path=f"/{below}"))
    artifacts = environ.get("MLSERVE_TEST_ARTIFACTS") or str(
        repo_root / "test-artifacts" / "screenshots"
    )
    environ["MLSERVE_TEST_ARTIFACTS"] = str(Path(artifacts) / "postgresql")


def opens_no_database(item: pytest.Item) -> bool:
    """Whether ``item`` is in a module of :data:`NO_DATABASE`."""
    return node_id(item).split("::", 1)[0] in NO_DATABASE


@contextlib.contextmanager
def no_database_guard(item: pytest.Item) -> Iterator[None]:
    """Fail ``item`` if it opens a database connection (pool ``connect`` event)."""
    opened: list[str] = []
    test_thread = threading.get_ident()

    def _connect(dbapi_connection: Any, record: Any) -> None:
        # Threads of other modules' apps (resolver watchers, log writers) may still
        # connect meanwhile: only the test's own thread counts.
        if threading.get_ident() == test_thread:
            opened.append(type(dbapi_connection).__module__)

    event.listen(Pool, "connect", _connect)
    try:
        yield
    finally:
        event.remove(Pool, "connect", _connect)
    if opened:
        pytest.fail(
            f"{node_id(item)} opened a database connection ({opened[0]}) but its module is "
            "in tests.pg.NO_DATABASE, which the PostgreSQL pass skips: remove it from there"
        )


def backend() -> str:
    """The backend of this pass: ``sqlite`` (the default) or ``postgresql``."""
    if BACKEND not in BACKENDS:
        raise pytest.UsageError(
            f"MLSERVE_TEST_BACKEND={BACKEND!r}: expected one of {', '.join(BACKENDS)}"
        )
    if BACKEND == "postgresql" and not SERVER_URL:
        raise pytest.UsageError(
            "MLSERVE_TEST_BACKEND=postgresql needs MLSERVE_TEST_DATABASE_URL (a PostgreSQL "
            "database the tests may create schemas in; `.ci/run` sets it)"
        )
    return BACKEND


def node_id(item: pytest.Item) -> str:
    """``tests/test_x.py::test_name`` of ``item`` (parameters dropped)."""
    return item.nodeid.split("[", 1)[0]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _EngineTracker:
    """The SQLAlchemy engines that connected since the last :meth:`dispose` (weakly)."""

    def __init__(self) -> None:
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        event.listen(Engine, "engine_connect", self._connected)

    def _connected(self, connection: Connection, *_: Any) -> None:
        self.engines.add(connection.engine)

    def dispose(self, application_names: set[str]) -> None:
        """Dispose the engines whose connections are named one of ``application_names``."""
        for engine in list(self.engines):
            if engine.url.query.get("application_name") in application_names:
                engine.dispose()
                self.engines.discard(engine)

    def remove(self) -> None:
        event.remove(Engine, "engine_connect", self._connected)


class PostgresSchemas:
    """This session's schemas in the ``MLSERVE_TEST_DATABASE_URL`` database.

    Parameters
    ----------
    server_url : str
        SQLAlchemy URL of a PostgreSQL database the tests may create schemas in.

    Attributes
    ----------
    test_url, module_url : str
        URLs of the test schema and of the module schema (see the module docstring).
    """

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url)
        self.name = f"{SCHEMA_PREFIX}{secrets.token_hex(6)}"
        self.test_schema = f"{self.name}_test"
        self.module_schema = f"{self.name}_module"
        self.test_url = self.url_for(self.test_schema)
        self.module_url = self.url_for(self.module_schema)
        self.admin = create_engine(
            self.server.update_query_dict({"application_name": "mlserve-tests-admin"}),
            isolation_level="AUTOCOMMIT",
            pool_size=1,
        )
        self._conn = self.admin.connect()
        self._conn.execute(text("SET lock_timeout = '60s'"))
        self._tracker = _EngineTracker()
        self._tables: list[str] = []  # children first
        self._sequences: list[str] = []
        self._empty: list[str] = []

    def url_for(self, schema: str) -> str:
        """The URL of ``schema``, whose connections are named after it."""
        url = self.server.update_query_dict(
            {"options": f"-csearch_path={schema}", "application_name": schema}
        )
        return url.render_as_string(hide_password=False)

    def create(self) -> None:
        """Drop the schemas of dead sessions; create and migrate this session's."""
        from mlserve.store.database import Database

        # While this lock is held (the whole session), no other session drops our schemas.
        self._conn.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": self.name})
        self._drop_abandoned()
        for schema in (self.test_schema, self.module_schema):
            self._conn.execute(text(f"CREATE SCHEMA {_quote(schema)}"))
            database = Database(self.url_for(schema))
            try:
                database.upgrade()
                metadata = MetaData()
                metadata.reflect(database.engine)
            finally:
                database.dispose()
        self._tables = [
            t.name for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"
        ]
        rows = self._conn.execute(
            text(
                "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = :s"
            ),
            {"s": self.test_schema},
        )
        self._sequences = [row[0] for row in rows]

    def empty_schema_url(self) -> str:
        """A new schema without any table, dropped after the test; return its URL."""
        schema = f"{self.name}_empty{len(self._empty)}"
        self._conn.execute(text(f"CREATE SCHEMA {_quote(schema)}"))
        self._empty.append(schema)
        return self.url_for(schema)

    def copy_module_data(self) -> None:
        """Copy every row of the module schema into the (empty) test schema."""
        source, target = _quote(self.module_schema), _quote(self.test_schema)
        for table in reversed(self._tables):  # parents first
            self._conn.execute(
                text(f"INSERT INTO {target}.{_quote(table)} SELECT * FROM {source}.{_quote(table)}")
            )
        for sequence in self._sequences:
            last, called = self._conn.execute(
                text(f"SELECT last_value, is_called FROM {source}.{_quote(sequence)}")
            ).one()
            self._set_sequence(self.test_schema, sequence, last, called)

    def end_test(self) -> None:
        """After a test: close what it left open on the test schema, empty that schema."""
        names = {self.test_schema, *self._empty}
        self._tracker.dispose(names)
        self._terminate(names)
        for schema in self._empty:
            self._conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE"))
        self._empty.clear()
        self._empty_tables(self.test_schema)

    def end_module(self) -> None:
        """After a module: close what is left open on the module schema, empty it."""
        self._tracker.dispose({self.module_schema})
        self._terminate({self.module_schema})
        self._empty_tables(self.module_schema)

    def drop(self) -> None:
        """At the end of the session: close every connection, drop the schemas."""
        self._tracker.remove()
        try:
            self._drop_session(self.name)
        finally:
            self._conn.close()
            self.admin.dispose()

    def _empty_tables(self, schema: str) -> None:
        """Delete every row of ``schema`` and restart its sequences: one round trip."""
        name = _quote(schema)
        statements = [f"DELETE FROM {name}.{_quote(table)};" for table in self._tables]
        statements += [
            f"PERFORM setval('{name}.{_quote(sequence)}', 1, false);"
            for sequence in self._sequences
        ]
        self._conn.exec_driver_sql(f"DO $$ BEGIN {' '.join(statements)} END $$")

    def _set_sequence(self, schema: str, sequence: str, value: int, called: bool) -> None:
        self._conn.execute(
            text("SELECT setval(:seq, :value, :called)"),
            {"seq": f"{_quote(schema)}.{_quote(sequence)}", "value": value, "called": called},
        )

    def _terminate(self, application_names: set[str]) -> None:
        """End the connections named one of ``application_names`` (never our own)."""
        self._conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = ANY(:names) AND pid <> pg_backend_pid()"
            ),
            {"names": sorted(application_names)},
        )

    def _session_schemas(self, session: str) -> list[str]:
        rows = self._conn.execute(
            text("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :p)"),
            {"p": session},
        )
        return [row[0] for row in rows]

    def _drop_session(self, session: str) -> None:
        schemas = self._session_schemas(session)
        self._terminate(set(schemas))
        for schema in schemas:
            self._conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE"))

    def _drop_abandoned(self) -> None:
        """Drop test schemas whose session is gone (its advisory lock was released)."""
        sessions = {name[:_SESSION_NAME_LENGTH] for name in self._session_schemas(SCHEMA_PREFIX)}
        for session in sorted(sessions - {self.name}):
            free = self._conn.execute(
                text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": session}
            ).scalar()
            if free:
                try:
                    self._drop_session(session)
                finally:
                    self._conn.execute(
                        text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": session}
                    )
