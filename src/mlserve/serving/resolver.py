"""Cached model lookups for the request path, refreshed when the registry changes.

A prediction names a model and optionally an alias or a version. Resolving that
to a version row is a database query; :class:`Resolver` keeps the answer, so a
steady stream of predictions makes no query at all. Every registry change bumps
a generation counter (:func:`mlserve.registry.lookup.bump_generation`); a background
thread per process polls it every ``model_refresh_interval_ms`` and, when it
moved, re-resolves every cached lookup and loads the versions they now point at
*before* swapping them in. Requests keep being answered by the previous version
until the swap, so an alias move reaches every worker process within one
interval plus the load time, without a restart and without a failed request
(a hot swap). If the database is unreachable, cached lookups keep serving. A
change made in this process forgets the lookups of the model it changed only
(:meth:`Resolver.invalidate`): the others keep serving, through an outage too.
"""

from __future__ import annotations

import logging
import threading
import weakref

from mlserve.context import ModelCache
from mlserve.errors import MlserveError, ServiceUnavailable
from mlserve.registry import lookup
from mlserve.registry.traffic import Route, resolve_route
from mlserve.store.database import Database
from mlserve.store.orm import ModelVersion

log = logging.getLogger(__name__)
Key = tuple[str, str | None, int | None]


class Resolver:
    """Model name (+ alias or version) -> version row, cached per process.

    Parameters
    ----------
    db : Database
        Where lookups are made (:mod:`mlserve.registry.lookup`).
    models : ModelCache
        Where a refresh loads the versions lookups now point at, before swapping them in.
    refresh_interval_s : float
        How often the registry generation is polled, in seconds; 0 turns the
        polling thread off (in-process changes still invalidate the cache).
    """

    def __init__(self, *, db: Database, models: ModelCache, refresh_interval_s: float) -> None:
        self._db = db
        self._models = models
        self._interval_s = refresh_interval_s
        self._entries: dict[Key, Route] = {}
        self._generation: int | None = None
        self._epoch = 0  # bumped by invalidate(): a lookup that raced one is not kept
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.refreshes = 0

    def resolve(
        self, name: str, alias: str | None = None, version: int | None = None
    ) -> ModelVersion:
        """Return the version row a request means (see :func:`mlserve.registry.lookup.resolve`):
        the primary version of an alias with a traffic policy.

        Raises
        ------
        ValidationFailed, NotFound
            As :func:`mlserve.registry.lookup.resolve`; failures are not cached.
        """
        return self.route(name, alias, version).primary

    def route(self, name: str, alias: str | None = None, version: int | None = None) -> Route:
        """Return the route of a request: its primary version and the alias's traffic
        policy (:func:`mlserve.registry.traffic.resolve_route`).

        Raises
        ------
        ValidationFailed, NotFound
            As :func:`mlserve.registry.lookup.resolve`; failures are not cached.
        """
        key = (name, alias, version)
        found = self._entries.get(key)
        if found is not None:
            return found
        self._start_watcher()
        epoch = self._epoch
        seen = self._generation
        if seen is None:
            seen = lookup.generation(self._db)
        route = resolve_route(self._db, name, alias=alias, version=version)
        with self._lock:
            if epoch != self._epoch:  # a change made here landed meanwhile
                return route
            if self._generation is None:
                self._generation = seen
            if self._generation == seen:  # no change landed meanwhile: safe to keep
                self._entries[key] = route
        return route

    def invalidate(self, name: str | None = None) -> None:
        """Forget the cached lookups of model ``name``, or every one when ``None``
        (called after a change made by this process).

        A change to one model changes no other model's lookups, so theirs stay cached
        and keep serving, through a database outage right after the change too. The
        registry counter is then kept as last seen: the watcher's next poll finds it
        moved and re-resolves what is cached, as it does after another process's change.
        """
        with self._lock:
            if name is None:
                self._entries = {}
                self._generation = None
            else:
                self._entries = {k: v for k, v in self._entries.items() if k[0] != name}
            self._epoch += 1

    def refresh(self) -> bool:
        """Re-resolve cached lookups if the registry changed; return whether it had.

        The versions the lookups now point at are loaded into the model cache
        before the new lookups replace the old ones.

        Raises
        ------
        ServiceUnavailable
            If the database cannot be reached (cached lookups are kept).
        """
        epoch = self._epoch
        current = lookup.generation(self._db)
        if current == self._generation:
            return False
        fresh: dict[Key, Route] = {}
        for key in list(self._entries):
            try:
                row = resolve_route(self._db, *key)
                for version in row.versions:  # the policy's candidates and shadows too
                    self._models.get(version)
            except ServiceUnavailable:  # keep every cached lookup; try again next interval
                raise
            except MlserveError:  # gone, or its artifact is damaged: the next request says so
                continue
            fresh[key] = row
        with self._lock:
            if epoch != self._epoch:  # invalidated meanwhile: the next lookups start afresh
                return True
            self._entries = fresh
            self._generation = current
        self.refreshes += 1
        return True

    def _start_watcher(self) -> None:
        if self._watcher is not None or self._interval_s <= 0:
            return
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=_watch,
                    args=(weakref.ref(self), self._interval_s),
                    name="mlserve-registry-watcher",
                    daemon=True,
                )
                self._watcher.start()


def _watch(ref: weakref.ref[Resolver], interval_s: float) -> None:
    """Poll the registry generation until the resolver is garbage-collected."""
    stop = threading.Event()
    while not stop.wait(interval_s):
        resolver = ref()
        if resolver is None:
            return
        try:
            resolver.refresh()
        except MlserveError as exc:
            log.warning("registry refresh failed, serving cached models: %s", exc.message)
        except Exception:  # never let the watcher die
            log.exception("registry refresh failed")
        del resolver
