"""The services' shared dependencies: settings, database, artifact store, job queue.

A :class:`Context` is built by :func:`mlserve.create_app` for the web service and by
``mlserve worker`` for a job worker; services receive it as their first argument
and never reach for Flask's ``current_app`` or ``request``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlserve.db import Database
from mlserve.settings import Settings
from mlserve.storage import LocalStore, open_store

if TYPE_CHECKING:
    from mlserve.jobs import JobQueue
    from mlserve.serving.loader import ModelCache
    from mlserve.serving.resolver import Resolver


@dataclass
class Context:
    """Dependencies of the services for one process.

    Attributes
    ----------
    settings : Settings
    db : Database
    store : LocalStore
    queue : JobQueue
        Huey instance with the ``train`` task registered.
    models : ModelCache
        Loaded model versions of this process.
    resolver : Resolver
        Cached name/alias/version lookups of this process.
    """

    settings: Settings
    db: Database
    store: LocalStore
    queue: JobQueue = field(init=False)
    models: ModelCache = field(init=False)
    resolver: Resolver = field(init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        """Build the context (engine, store, queue, model cache) for ``settings``."""
        from mlserve.jobs import build_queue
        from mlserve.serving.loader import ModelCache
        from mlserve.serving.resolver import Resolver

        settings.home.mkdir(parents=True, exist_ok=True)
        ctx = cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            store=open_store(settings.resolved_artifact_root),
        )
        ctx.queue = build_queue(ctx)
        ctx.models = ModelCache(ctx, capacity=settings.model_cache_size)
        ctx.resolver = Resolver(ctx, settings.model_refresh_interval_ms / 1000)
        return ctx
