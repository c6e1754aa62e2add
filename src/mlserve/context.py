"""The services' shared dependencies: settings, database, artifact store, job queue.

A :class:`Context` is built by :func:`mlserve.create_app` for the web service and by
``mlserve worker`` for a job worker; services receive it as their first argument
and never reach for Flask's ``current_app`` or ``request``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlserve.db import Database
from mlserve.settings import Settings
from mlserve.storage import LocalStore, open_store

if TYPE_CHECKING:
    from mlserve.auth import KeyCache
    from mlserve.jobs import JobQueue
    from mlserve.prediction_log import PredictionLogger
    from mlserve.ratelimit import RateLimiter
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
    secret_key : bytes
        Server secret keying stored API key HMACs (see :func:`load_secret_key`).
    keys : KeyCache
        API keys checked by this process.
    limiter : RateLimiter
        Request counters (see :mod:`mlserve.ratelimit`).
    prediction_log : PredictionLogger
        Sampled, asynchronous prediction logging (see :mod:`mlserve.prediction_log`).
    """

    settings: Settings
    db: Database
    store: LocalStore
    queue: JobQueue = field(init=False)
    models: ModelCache = field(init=False)
    resolver: Resolver = field(init=False)
    secret_key: bytes = field(init=False, repr=False)
    keys: KeyCache = field(init=False)
    limiter: RateLimiter = field(init=False)
    prediction_log: PredictionLogger = field(init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        """Build the context (engine, store, queue, model cache) for ``settings``."""
        from mlserve.auth import KeyCache
        from mlserve.jobs import build_queue
        from mlserve.prediction_log import PredictionLogger
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
        ctx.secret_key = load_secret_key(settings)
        ctx.keys = KeyCache(ctx, settings.auth_cache_ttl_s)
        ctx.limiter = build_limiter(settings)
        ctx.prediction_log = PredictionLogger(
            ctx, settings.prediction_log_sample_rate, settings.prediction_log_queue_size
        )
        return ctx


def load_secret_key(settings: Settings) -> bytes:
    """The server secret: ``settings.secret_key``, else ``<home>/secret_key``.

    The file is created on first use with 32 random bytes (hex), mode 600,
    written atomically so concurrent first starts agree on one value.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.home / "secret_key"
    if not path.exists():
        temporary = path.with_name(f".secret_key.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if another process won the race
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip().encode()


def build_limiter(settings: Settings) -> RateLimiter:
    """The rate limiter the settings describe."""
    from mlserve.ratelimit import Limits, RateLimiter, parse_limit

    limits = Limits(
        parse_limit(settings.rate_limit_per_key, "rate_limit_per_key"),
        parse_limit(settings.rate_limit_per_ip, "rate_limit_per_ip"),
        parse_limit(settings.rate_limit_auth_failures_per_ip, "rate_limit_auth_failures_per_ip"),
    )
    return RateLimiter(settings.rate_limit_storage_url, limits)
