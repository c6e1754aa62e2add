"""Schema migrations that add columns go up and down on this pass's database."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from mlserve.store.database import Database, alembic_config


def _columns(database: Database, table: str) -> set[str]:
    return {column["name"] for column in inspect(database.engine).get_columns(table)}


def _migrate(database: Database, action: str, revision: str) -> None:
    with database.engine.begin() as connection:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_model_version_memory_is_added_and_removed(tmp_path: Path) -> None:
    """0007: ``model_version.memory`` (what online updates remember). The PostgreSQL pass
    runs it on an empty schema of its own (tests/pg.py ``UNMIGRATED``)."""
    database = Database(os.environ.get("MLSERVE_DATABASE_URL") or f"sqlite:///{tmp_path}/m.db")
    try:
        database.upgrade()
        assert "memory" in _columns(database, "model_version")
        _migrate(database, "downgrade", "0006")
        columns = _columns(database, "model_version")
        assert "memory" not in columns and {"online", "reference", "evaluation"} <= columns
        _migrate(database, "upgrade", "head")
        assert "memory" in _columns(database, "model_version")
    finally:
        database.dispose()


def test_traffic_policy_columns_are_added_and_removed(tmp_path: Path) -> None:
    """0010: ``model_alias.policy`` and ``prediction_log.shadow_of`` (traffic policies). The
    PostgreSQL pass runs it on an empty schema of its own (tests/pg.py ``UNMIGRATED``)."""
    database = Database(os.environ.get("MLSERVE_DATABASE_URL") or f"sqlite:///{tmp_path}/t.db")
    try:
        database.upgrade()
        assert "policy" in _columns(database, "model_alias")
        assert "shadow_of" in _columns(database, "prediction_log")
        _migrate(database, "downgrade", "0009_hardening")
        assert "policy" not in _columns(database, "model_alias")
        assert "shadow_of" not in _columns(database, "prediction_log")
        assert "memory" in _columns(database, "model_version")
        _migrate(database, "upgrade", "head")
        assert "policy" in _columns(database, "model_alias")
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("prediction_log")}
        assert "ix_prediction_log_shadow_of" in indexes
    finally:
        database.dispose()
