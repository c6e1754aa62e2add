"""Loading the versions behind the ``production`` aliases when an HTTP worker starts.

Without it a replica loads a version on its first request for it, so that request
waits for the artifact to be read, checked and compiled into a session. The
preloader does that work in a background thread as the worker starts (the worker
answers meanwhile; a request for a version still loading loads it itself), and
``/ready`` answers 503 with ``"models": "loading (i of n)"`` until it is done, so a
load balancer or Kubernetes sends traffic once the versions are in memory (KServe's
model readiness, ``GET /v2/models/{name}/ready``, says the same per model).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from mlserve.context import ModelCache, VersionResolver
from mlserve.errors import MlserveError
from mlserve.store.database import Database
from mlserve.store.orm import ModelAlias

log = logging.getLogger(__name__)


class Preloader:
    """Loads every version an alias named ``alias`` routes to, once, in the background.

    Parameters
    ----------
    db : Database
        Where the aliases are listed.
    resolver : VersionResolver
        Resolves each alias to its route (primary, canary and shadow versions) and
        keeps the lookup, so the first request makes no query either.
    models : ModelCache
        Where the versions are loaded.
    alias : str
        The alias whose versions are loaded (``preload_alias``).

    Attributes
    ----------
    total : int or None
        Aliases found; ``None`` before they were listed.
    loaded, failed : int
        Aliases whose versions loaded, and those that could not be (missing or
        damaged artifact, database error: logged, and the request path reports them).
    """

    def __init__(
        self, *, db: Database, resolver: VersionResolver, models: ModelCache, alias: str
    ) -> None:
        self._db = db
        self._resolver = resolver
        self._models = models
        self.alias = alias
        self.total: int | None = None
        self.loaded = 0
        self.failed = 0
        self._done = threading.Event()

    def start(self) -> None:
        """Start the loading thread (a daemon: it never holds the process up)."""
        threading.Thread(target=self.run, name="mlserve-preload", daemon=True).start()

    def run(self) -> None:
        """List the aliases and load their versions; never raises."""
        try:
            with self._db.session() as session:
                names = list(
                    session.scalars(
                        select(ModelAlias.model_name)
                        .where(ModelAlias.alias == self.alias)
                        .order_by(ModelAlias.model_name)
                    )
                )
            self.total = len(names)
            for name in names:
                self._load(name)
        except Exception as exc:  # the database went away: requests load on first use
            log.warning("preloading %r versions stopped: %s", self.alias, exc)
        finally:
            self._done.set()

    def _load(self, name: str) -> None:
        try:
            for version in self._resolver.route(name, self.alias).versions:
                self._models.get(version)
        except MlserveError as exc:
            self.failed += 1
            log.warning("could not preload %s@%s: %s", name, self.alias, exc.message)
        else:
            self.loaded += 1

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until loading ended; return whether it had within ``timeout_s`` seconds."""
        return self._done.wait(timeout_s)

    def status(self) -> str:
        """``"ok"`` once loading ended (whatever failed is logged), else ``"loading (i of n)"``."""
        if self._done.is_set():
            return "ok"
        total = "?" if self.total is None else self.total
        return f"loading ({self.loaded + self.failed} of {total})"
