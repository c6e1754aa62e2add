"""Fixtures of the job tests: an app whose jobs wait in the queue for a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from mlserve import create_app
from mlserve.settings import Settings


@pytest.fixture
def queued_app(tmp_path: Path) -> Flask:
    """An app whose jobs go to the SQLite queue and wait for a worker."""
    return create_app(Settings(home=tmp_path, log_level="WARNING"))
