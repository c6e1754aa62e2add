"""Server-side commands: db upgrade, settings passed to the embedded worker, help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from mlserve.cli.main import main
from mlserve.server import settings_env
from mlserve.settings import Settings


def test_db_upgrade_creates_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{tmp_path / 'mlserve.db'}")
    assert "model_version" in inspect(engine).get_table_names()
    engine.dispose()


def test_settings_env_round_trips_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path, port=9001, max_batch_rows=7, queue_url="redis://x:1/2")
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    assert Settings() == settings


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["serve", "--help"],
        ["worker", "--help"],
        ["db", "--help"],
        ["predict", "--help"],
    ],
)
def test_cli_help_lists_options(command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0
    assert "Usage: main" in result.output or "Usage: mlserve" in result.output


def test_serve_help_documents_the_options() -> None:
    output = CliRunner().invoke(main, ["serve", "--help"]).output
    for option in ("--host", "--port", "--workers", "--demo", "--no-worker"):
        assert option in output


@pytest.mark.parametrize(
    ("arguments", "environ", "threads"),
    [([], {}, None), ([], {"MLSERVE_JOBS_CONCURRENCY": "3"}, None), (["--threads", "2"], {}, 2)],
)
def test_worker_runs_the_settings_concurrency_unless_told_otherwise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    environ: dict[str, str],
    threads: int | None,
) -> None:
    """``--threads`` overrides; without it run_worker reads ``jobs_concurrency``."""
    monkeypatch.setenv("MLSERVE_HOME", str(tmp_path))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    seen: dict[str, Any] = {}

    def fake_run_worker(ctx: Any, *, threads: int | None, **_: Any) -> None:
        seen["threads"], seen["settings"] = threads, ctx.settings.jobs_concurrency

    monkeypatch.setattr("mlserve.jobs.worker.run_worker", fake_run_worker)
    result = CliRunner().invoke(main, ["worker", *arguments])
    assert result.exit_code == 0, result.output
    assert seen["threads"] == threads
    if environ:
        assert seen["settings"] == 3


def test_serve_jobs_concurrency_reaches_the_embedded_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "mlserve.server.run_server", lambda settings, **_: seen.update(settings=settings)
    )
    result = CliRunner().invoke(main, ["serve", "--jobs-concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert settings_env(seen["settings"])["MLSERVE_JOBS_CONCURRENCY"] == "3"
