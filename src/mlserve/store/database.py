"""Database engine, sessions and migrations (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mlserve.errors import ServiceUnavailable, ValidationFailed

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_ID = 0x6D6C_7365_7276_6531  # "mlserve1": the advisory lock of migrations


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An engine and a session factory for one database URL.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).

    Notes
    -----
    SQLite connections use WAL journaling and a 30 s busy timeout so that the
    service and a worker process can share the file.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error.

        Raises
        ------
        ServiceUnavailable
            If the database cannot be reached.
        """
        session = self._factory()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            unavailable = _unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc
            if isinstance(exc, DataError):  # a client value the column cannot hold
                raise ValidationFailed(
                    "a value cannot be stored (NUL character, or out of range)", {}
                ) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        """Return whether ``SELECT 1`` succeeds."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def upgrade(self) -> None:
        """Apply every Alembic migration up to ``head``.

        On PostgreSQL the migration holds a transaction-level advisory lock
        (``pg_advisory_xact_lock``, :data:`MIGRATION_LOCK_ID`): concurrent upgrades
        (two release phases, two replicas) run one after the other, and the later
        ones find the schema up to date. SQLite serialises writers itself.
        """
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def update_where(session: Session, entity: type[Any], *where: Any, **values: Any) -> int:
    """``UPDATE <entity's table> SET values WHERE where``: one statement, past the ORM's
    identity map; return how many rows it updated.

    The compare-and-set of a state another request or process may change at the same
    time: the condition is checked by the database as it writes, so a change committed
    after this transaction read the row is never overwritten (a read, then an ORM
    write, overwrites it: PostgreSQL's READ COMMITTED lets the write land, and SQLite
    ignores ``SELECT ... FOR UPDATE``). Zero rows: the condition no longer held.
    """
    statement = update(entity).where(*where).values(**values)
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _unavailable(exc: SQLAlchemyError) -> ServiceUnavailable | None:
    """The 503 that ``exc`` means, if it is not a bad statement of ours."""
    text = str(exc).lower()
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return ServiceUnavailable("database schema is missing: run `mlserve db upgrade`")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return ServiceUnavailable("database unavailable")
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable("database unavailable")
    return None


def alembic_config(url: str) -> Config:
    """Return an Alembic config for the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
