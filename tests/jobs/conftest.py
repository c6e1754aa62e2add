"""Fixtures of the job tests: an app whose jobs wait in the queue for a worker; races."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from mlserve import create_app
from mlserve.context import Context
from mlserve.settings import Settings


@contextmanager
def just_before_a_job_update(
    ctx: Context, action: Callable[[], Any], when: Callable[[list[Any]], bool] = bool
) -> Iterator[list[Any]]:
    """Run ``action`` once, just before the first ``UPDATE training_job`` statement whose
    bound values satisfy ``when`` reaches the database: another process's write landing
    between a read and a write. Yields the list that receives ``action``'s result."""
    results: list[Any] = []

    def hook(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = list(params.values()) if isinstance(params, dict) else list(params or ())
        if statement.startswith("UPDATE training_job ") and not results and when(values):
            results.append(None)  # first: the action's own UPDATE comes here too
            results[0] = action()

    event.listen(ctx.db.engine, "before_cursor_execute", hook)
    try:
        yield results
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", hook)


@pytest.fixture
def queued_app(tmp_path: Path) -> Flask:
    """An app whose jobs go to the SQLite queue and wait for a worker."""
    return create_app(Settings(home=tmp_path, log_level="WARNING"))
