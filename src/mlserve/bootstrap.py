"""The composition root: builds the one :class:`~mlserve.context.Context` of a process.

The web service (:func:`mlserve.create_app`), a job worker (``mlserve worker``) and
the command line (``mlserve keys``, ``mlserve serve``'s preparation) all call
:func:`build_context`. It creates each per-process component from the settings
with exactly what that component needs (the database, the artifact store, the
server secret), never the context itself, so no component imports the context back,
then wires the queue's tasks to the services that run them.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlserve.context import Context
from mlserve.errors import ServiceUnavailable
from mlserve.lazy import lazy_module
from mlserve.monitoring.prediction_log import PredictionLogger
from mlserve.security import keys as auth
from mlserve.security.keys import KeyCache
from mlserve.security.ratelimit import Limits, RateLimiter, parse_limit
from mlserve.security.secret import SecretKeyMismatch, check_secret_fingerprint
from mlserve.serving.explain_cache import ExplainerCache
from mlserve.serving.loader import ModelCache
from mlserve.serving.resolver import Resolver
from mlserve.serving.shadow import ShadowRunner
from mlserve.serving.traffic_stats import TrafficStats
from mlserve.settings import Settings
from mlserve.store.database import Database
from mlserve.store.location import open_store
from mlserve.store.queue import ONLINE_UPDATE, TRAIN, open_queue
from mlserve.training import shap_jit

if TYPE_CHECKING:
    from mlserve.jobs import demo
    from mlserve.jobs import service as jobs
    from mlserve.monitoring import comparison
    from mlserve.online import policy as online
    from mlserve.online import update as online_update
else:
    demo = lazy_module("mlserve.jobs.demo")
    jobs = lazy_module("mlserve.jobs.service")
    comparison = lazy_module("mlserve.monitoring.comparison")
    online = lazy_module("mlserve.online.policy")
    online_update = lazy_module("mlserve.online.update")

log = logging.getLogger(__name__)


def build_context(settings: Settings) -> Context:
    """The fully initialised context of one process, from ``settings``.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    Context
        Its queue runs training jobs (:func:`mlserve.jobs.service.execute_job`) and
        online updates (:func:`mlserve.online.update.run_update_job`) with it.

    Raises
    ------
    ValueError
        An unsupported ``artifact_root`` or ``queue_url``.
    ValidationFailed
        A rate limit setting that is not a rate.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    shap_jit.set_cache_dir(settings.home / "cache" / "numba")
    db = Database(settings.resolved_database_url)
    store = open_store(settings.resolved_artifact_root, settings.artifact_file_mode_bits)
    models = ModelCache(settings=settings, db=db, store=store)
    secret_key = load_secret_key(settings)
    prediction_log = PredictionLogger(
        db=db,
        sample_rate=settings.prediction_log_sample_rate,
        queue_size=settings.prediction_log_queue_size,
    )
    traffic = TrafficStats(window=settings.traffic_latency_window)
    ctx = Context(
        settings=settings,
        db=db,
        store=store,
        queue=open_queue(settings),
        secret_key=secret_key,
        resolver=Resolver(
            db=db, models=models, refresh_interval_s=settings.model_refresh_interval_ms / 1000
        ),
        models=models,
        keys=KeyCache(
            db=db,
            secret_key=secret_key,
            ttl_s=settings.auth_cache_ttl_s,
            outage_grace_s=settings.auth_outage_grace_s,
        ),
        limiter=build_limiter(settings),
        prediction_log=prediction_log,
        traffic=traffic,
        shadows=ShadowRunner(
            models=models,
            stats=traffic,
            prediction_log=prediction_log,
            queue_size=settings.shadow_queue_size,
        ),
        explainers=ExplainerCache(settings.model_cache_size),
    )
    ctx.queue.handle(TRAIN, lambda job_id: jobs.execute_job(ctx, job_id, ctx.queue.worker_id))
    ctx.queue.handle(ONLINE_UPDATE, lambda name: online_update.run_update_job(ctx, name))
    return ctx


def housekeeping_tasks() -> list[Callable[[Context], object]]:
    """What a job worker also runs on its heartbeat: the online update timer
    (:func:`mlserve.online.policy.schedule_due`) and the traffic policies' automatic
    promotion rules (:func:`mlserve.monitoring.comparison.apply_rules`)."""
    return [online.schedule_due, comparison.apply_rules]


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
    """The rate limiter the settings describe.

    Raises
    ------
    ValidationFailed
        A limit that is neither ``off`` nor a ``limits`` rate string.
    """
    limits = Limits(
        per_key=parse_limit(settings.rate_limit_per_key, "rate_limit_per_key"),
        per_ip=parse_limit(settings.rate_limit_per_ip, "rate_limit_per_ip"),
        auth_failures_per_ip=parse_limit(
            settings.rate_limit_auth_failures_per_ip, "rate_limit_auth_failures_per_ip"
        ),
    )
    return RateLimiter(settings.rate_limit_storage_url, limits)


class DatabaseSetup:
    """What ``serve`` does with the database before serving: check the secret's
    fingerprint (:func:`mlserve.security.secret.check_secret_fingerprint`), create the
    first admin key, register the demo models; retried on a thread while the database
    is down or not migrated.

    A secret found to differ on a retry stops the server (SIGTERM to this process);
    ``refused`` then says why.

    Parameters
    ----------
    ctx : Context
    demo : bool
    retry_interval_s : float
        Wait between two attempts, in seconds.
    """

    def __init__(self, ctx: Context, demo: bool, retry_interval_s: float = 1.0) -> None:
        self.ctx = ctx
        self.demo = demo
        self.retry_interval_s = retry_interval_s
        self.problem = ""
        self.refused: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._retry, name="mlserve-db-setup", daemon=True)

    def attempt(self) -> bool:
        """Prepare the database once; return whether it was ready.

        Raises
        ------
        SecretKeyMismatch
        """
        settings = self.ctx.settings
        try:
            check_secret_fingerprint(self.ctx)
            if settings.auth and settings.bootstrap_admin_key:
                bootstrap_admin_key(self.ctx)
            if self.demo:
                demo.ensure_demo_models(self.ctx)
        except ServiceUnavailable as exc:
            self.problem = exc.message
            return False
        return True

    def start(self) -> None:
        """Retry on a thread until the database is ready."""
        self._thread.start()

    def stop(self) -> None:
        """Stop retrying."""
        self._stop.set()

    def _retry(self) -> None:
        while not self._stop.wait(self.retry_interval_s):
            try:
                if self.attempt():
                    log.warning("database ready: serving")
                    return
            except SecretKeyMismatch as exc:
                self.refused = f"mlserve: stopping: {exc.message}"
                log.critical(self.refused)
                os.kill(os.getpid(), signal.SIGTERM)
                return


def bootstrap_admin_key(ctx: Context) -> str | None:
    """On the very first start (no key at all), create one admin key and print it once.

    As Jupyter prints its token: the operator copies it from the console. Later
    starts print nothing; ``mlserve keys create`` makes more.

    Returns
    -------
    str or None
        The key, when one was created.
    """
    if auth.count_keys(ctx) > 0:
        return None
    created = auth.create_key(ctx, "admin", name="bootstrap")
    banner = "=" * 72
    print(
        f"{banner}\nmlserve: first start, no API key existed. Admin key (shown once):\n\n"
        f"    {created.secret}\n\nSign in with it in the web UI (the address below), or send\n"
        f"it as 'Authorization: Bearer <key>'. Create more with\n"
        f"'mlserve keys create --role ...' or POST /api/v1/keys.\n{banner}",
        flush=True,
    )
    return created.secret
