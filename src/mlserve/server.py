"""Running the service: migrations, demo models, embedded worker, gunicorn."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from mlserve.context import Context
from mlserve.settings import Settings

log = logging.getLogger(__name__)


class GunicornServer(BaseApplication):
    """gunicorn with mlserve's app factory called in each worker (after fork)."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from mlserve.app import create_app

        return create_app(self.settings)


def prepare(settings: Settings, demo: bool) -> None:
    """Migrate (SQLite), sweep interrupted writes and register demo models if asked."""
    from mlserve.demo import ensure_demo_models

    settings.home.mkdir(parents=True, exist_ok=True)
    ctx = Context.from_settings(settings)
    if settings.is_sqlite:
        ctx.db.upgrade()
    ctx.store.sweep_temporaries()
    if demo:
        ensure_demo_models(ctx)
    ctx.db.dispose()


def run_server(
    settings: Settings,
    workers: int = 1,
    threads: int = 4,
    demo: bool = False,
    embedded_worker: bool = True,
) -> None:
    """Serve until interrupted.

    Parameters
    ----------
    settings : Settings
    workers : int
        gunicorn worker processes; each loads models once into its own cache.
    threads : int
        Threads per worker (gunicorn ``gthread`` worker class).
    demo : bool
        Register the demo models first if they are missing.
    embedded_worker : bool
        Start ``mlserve worker`` as a child process for training jobs.
    """
    from mlserve.cli import spawn_worker, stop_child

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    prepare(settings, demo)
    child = spawn_worker(settings) if embedded_worker else None
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": "-",
        "loglevel": settings.log_level.lower(),
        "timeout": 120,
        "graceful_timeout": 10,
    }
    log.info("mlserve listening on http://%s:%s", settings.host, settings.port)
    try:
        GunicornServer(settings.model_copy(update={"migrate_on_start": False}), options).run()
    finally:
        if child is not None:
            stop_child(child)
