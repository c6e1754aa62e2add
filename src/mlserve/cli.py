"""The ``mlserve`` command: server commands here, client-backed user commands in ``cli_user``."""

from __future__ import annotations

from typing import Any

import click

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
def serve(
    host: str | None,
    port: int | None,
    workers: int,
    threads: int,
    server: str | None,
    demo: bool,
    no_worker: bool,
) -> None:
    """Start the service with an embedded job worker."""
    from mlserve.server import run_server

    settings = _settings(host=host, port=port, server=server)
    run_server(settings, workers=workers, threads=threads, demo=demo, embedded_worker=not no_worker)


@main.command()
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Training jobs run at once by this process.",
)
@click.option("--parent-pid", type=int, default=None, hidden=True)
def worker(threads: int, parent_pid: int | None) -> None:
    """Run a job worker: consume training jobs from the queue."""
    from mlserve.app import configure_logging
    from mlserve.context import Context
    from mlserve.worker import run_worker

    settings = _settings()
    configure_logging(settings)
    run_worker(Context.from_settings(settings), threads=threads, parent_pid=parent_pid)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the database at MLSERVE_DATABASE_URL."""
    from mlserve.db import Database

    settings = _settings()
    Database(settings.resolved_database_url).upgrade()
    click.echo("database is at the latest revision")


def _attach_key_commands() -> None:
    from mlserve.cli_keys import keys

    main.add_command(keys)


_attach_key_commands()


def _attach_user_commands() -> None:
    try:
        from mlserve.cli_user import register_user_commands
    except ImportError:  # pragma: no cover - the client extra is part of the package
        return
    register_user_commands(main)


_attach_user_commands()
