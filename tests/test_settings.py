"""Settings from the environment: ``MLSERVE_*`` variables and the platform's (Heroku-style)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from mlserve.settings import Settings, default_jobs_concurrency, platform_values

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_mlserve_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PostgreSQL pass sets MLSERVE_DATABASE_URL, which would win over the platform's."""
    for field in ("DATABASE_URL", "QUEUE_URL", "RATE_LIMIT_STORAGE_URL", "PORT"):
        monkeypatch.delenv(f"MLSERVE_{field}", raising=False)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"DATABASE_URL": "postgres://u:p@db:5432/app"},
            {"database_url": "postgresql+psycopg://u:p@db:5432/app"},
        ),
        (
            {"DATABASE_URL": "postgresql://db/app"},
            {"database_url": "postgresql+psycopg://db/app"},
        ),
        (
            {"REDIS_URL": "rediss://:pw@cache:6380/0"},
            {
                "queue_url": "rediss://:pw@cache:6380/0",
                "rate_limit_storage_url": "rediss://:pw@cache:6380/0",
            },
        ),
        ({"PORT": "5123"}, {"port": 5123}),
        ({"PORT": "", "DATABASE_URL": " "}, {}),
    ],
)
def test_platform_variables_fill_the_settings_they_mean(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: dict[str, object]
) -> None:
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    for field, value in expected.items():
        assert getattr(settings, field) == value
    assert set(platform_values(environ)) == set(expected)


def test_mlserve_variables_and_overrides_win_over_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "5123")
    monkeypatch.setenv("REDIS_URL", "redis://platform:6379/0")
    monkeypatch.setenv("MLSERVE_QUEUE_URL", "redis://own:6379/1")
    monkeypatch.setenv("MLSERVE_PORT", "8001")
    settings = Settings()
    assert (settings.port, settings.queue_url) == (8001, "redis://own:6379/1")
    assert settings.rate_limit_storage_url == "redis://platform:6379/0"
    assert Settings(port=9000).port == 9000


def test_explicit_postgres_scheme_selects_psycopg() -> None:
    settings = Settings(database_url="postgres://db/app")
    assert settings.resolved_database_url == "postgresql+psycopg://db/app"


def test_procfile_declares_web_worker_and_release() -> None:
    lines = (REPO_ROOT / "Procfile").read_text().splitlines()
    processes = {
        name: shlex.split(command) for name, _, command in (line.partition(": ") for line in lines)
    }
    assert set(processes) == {"web", "worker", "release"}
    web = processes["web"]
    assert web[:2] == ["mlserve", "serve"] and "--no-worker" in web
    assert web[web.index("--port") + 1] == "$PORT" and web[web.index("--host") + 1] == "0.0.0.0"
    assert processes["worker"] == ["mlserve", "worker"]
    assert processes["release"] == ["mlserve", "db", "upgrade"]


@pytest.mark.parametrize(("cores", "concurrency"), [(1, 1), (2, 1), (3, 1), (8, 4), (16, 8)])
def test_default_jobs_concurrency_is_half_the_cores(cores: int, concurrency: int) -> None:
    assert default_jobs_concurrency(cores) == concurrency


def test_jobs_concurrency_and_time_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLSERVE_JOBS_CONCURRENCY", raising=False)
    monkeypatch.delenv("MLSERVE_MAX_JOB_SECONDS", raising=False)
    defaults = Settings()
    assert defaults.jobs_concurrency == default_jobs_concurrency()
    assert defaults.max_job_seconds == 3600
    monkeypatch.setenv("MLSERVE_JOBS_CONCURRENCY", "3")
    monkeypatch.setenv("MLSERVE_MAX_JOB_SECONDS", "90")
    assert (Settings().jobs_concurrency, Settings().max_job_seconds) == (3, 90)
    monkeypatch.setenv("MLSERVE_JOBS_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="jobs_concurrency"):
        Settings()


def test_access_log_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSERVE_ACCESS_LOG", raising=False)
    assert Settings().access_log is False
    monkeypatch.setenv("MLSERVE_ACCESS_LOG", "true")
    assert Settings().access_log is True
