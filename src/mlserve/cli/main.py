"""The ``mlserve`` command: server commands here, key administration in
:mod:`mlserve.cli.keys`, client-backed user commands in :mod:`mlserve.cli.user`.

The server commands import the server (web framework, scikit-learn, ONNX Runtime,
the database layer) inside their functions: ``mlserve --help`` and the client-backed
commands (``mlserve predict``, ``mlserve datasets upload``...) start without loading
those libraries.
"""

from __future__ import annotations

from typing import Any

import click

from mlserve.cli.keys import keys
from mlserve.cli.user import register_user_commands
from mlserve.settings import Settings


@click.group()
@click.version_option(package_name="mlserve")
def main() -> None:
    """mlserve: train, register and serve machine-learning models over REST."""


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="HTTP worker processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Threads per HTTP worker.",
)
@click.option(
    "--server",
    type=click.Choice(["gunicorn", "granian"]),
    default=None,
    help="WSGI server (default: MLSERVE_SERVER, else granian).",
)
@click.option("--demo", is_flag=True, help="Register demo models (diabetes, breast_cancer).")
@click.option("--no-worker", is_flag=True, help="Do not start the embedded job worker.")
@click.option(
    "--jobs-concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Jobs the embedded worker runs at once (default: MLSERVE_JOBS_CONCURRENCY, "
    "else half the cores).",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int,
    threads: int,
    server: str | None,
    demo: bool,
    no_worker: bool,
    jobs_concurrency: int | None,
) -> None:
    """Start the service with an embedded job worker."""
    from mlserve.server import run_server

    settings = _settings(host=host, port=port, server=server, jobs_concurrency=jobs_concurrency)
    run_server(settings, workers=workers, threads=threads, demo=demo, embedded_worker=not no_worker)


@main.command()
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="Jobs run at once by this process (default: MLSERVE_JOBS_CONCURRENCY, "
    "else half the cores).",
)
@click.option("--parent-pid", type=int, default=None, hidden=True)
def worker(threads: int | None, parent_pid: int | None) -> None:
    """Run a job worker: consume training jobs from the queue."""
    from mlserve.app import configure_logging
    from mlserve.bootstrap import build_context, housekeeping_tasks
    from mlserve.errors import ServiceUnavailable
    from mlserve.jobs.worker import run_worker
    from mlserve.security.secret import SecretKeyMismatch, check_secret_fingerprint

    settings = _settings()
    configure_logging(settings)
    ctx = build_context(settings)
    try:
        check_secret_fingerprint(ctx)
    except SecretKeyMismatch as exc:
        raise SystemExit(f"mlserve worker: refusing to start: {exc.message}") from exc
    except ServiceUnavailable:
        pass  # checked by `mlserve serve`; the worker waits for the database below
    run_worker(
        ctx,
        threads=threads,
        parent_pid=parent_pid,
        housekeeping=housekeeping_tasks(),
    )


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the database at MLSERVE_DATABASE_URL."""
    from mlserve.store.database import Database

    settings = _settings()
    Database(settings.resolved_database_url).upgrade()
    click.echo("database is at the latest revision")


main.add_command(keys)
register_user_commands(main)
