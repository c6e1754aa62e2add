"""Rate limits per API key and per client address.

Built on ``limits``, the engine of Flask-Limiter, called directly: the prediction
fast lane (:mod:`mlserve.api.fastlane`) answers outside Flask's request hooks,
where Flask-Limiter cannot see it, and one check must count both paths. Storage is
``memory://`` (per process: with N worker processes a client gets up to N times
the limit) or ``redis://`` shared by every process and replica
(``MLSERVE_RATE_LIMIT_STORAGE_URL``). Fixed windows (the cheapest strategy, one
counter increment per request).
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from mlserve.errors import TooManyRequests, ValidationFailed


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Parsed limits (``None``: no limit).

    Attributes
    ----------
    per_key, per_ip, auth_failures_per_ip : RateLimitItem or None
    """

    per_key: RateLimitItem | None
    per_ip: RateLimitItem | None
    auth_failures_per_ip: RateLimitItem | None


def parse_limit(text: str, field: str) -> RateLimitItem | None:
    """``"100/second"``, ``"5 per minute"``... as a limit; ``"off"`` or ``""`` as none.

    Raises
    ------
    ValidationFailed
        Not a rate limit string.
    """
    if text.strip().lower() in ("", "off", "none"):
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: not a rate limit: {text!r}", {"field": field}) from exc


class SweptMemoryStorage(MemoryStorage):
    """``limits``' memory storage with its expiry sweep on one daemon thread per storage,
    every ``sweep_interval_s`` seconds.

    ``MemoryStorage`` starts a new ``threading.Timer`` (10 ms) on every hit once the last
    one has run: a thread start every few requests, about 1 ms per request at 450
    requests/s in one process (profile of ``bench/v2_infer.py``, most of V2's fixed cost).
    The sweep only frees memory: counts are read through ``get``, which drops an expired
    window itself, so the limits counted are the same. The thread ends with the storage.

    Parameters
    ----------
    sweep_interval_s : float
        Seconds between two sweeps of expired windows.
    """

    def __init__(self, sweep_interval_s: float = 1.0) -> None:
        super().__init__()
        self.timer.cancel()  # the first 10 ms timer the base class started
        self._sweeper: threading.Thread | None = None
        self._sweep_interval_s = sweep_interval_s

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (the base's private hook)
        if self._sweeper is None:
            self._sweeper = threading.Thread(
                target=_sweep,
                args=(weakref.ref(self), self._sweep_interval_s),
                name="mlserve-rate-limit-sweep",
                daemon=True,
            )
            self._sweeper.start()


def _sweep(ref: weakref.ref[SweptMemoryStorage], interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        storage = ref()
        if storage is None:
            return
        storage._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        del storage


def open_storage(storage_url: str) -> Storage:
    """The ``limits`` storage for ``storage_url`` (``memory://``: :class:`SweptMemoryStorage`)."""
    if storage_url.startswith("memory://"):
        return SweptMemoryStorage()
    storage = storage_from_string(storage_url)
    assert isinstance(storage, Storage)  # a synchronous URL (not async+redis://)
    return storage


class RateLimiter:
    """Counts requests per key and per address; raises 429 past a limit.

    Parameters
    ----------
    storage_url : str
        ``memory://`` or a ``redis://`` URL (see ``limits`` storage URLs).
    limits : Limits
    """

    def __init__(self, storage_url: str, limits: Limits) -> None:
        self.limits = limits
        self._storage = open_storage(storage_url)
        self._limiter = FixedWindowRateLimiter(self._storage)

    def check(self, key_prefix: str | None, remote_addr: str | None) -> None:
        """Count one request of ``key_prefix`` from ``remote_addr``.

        Raises
        ------
        TooManyRequests
            Over the per-key or the per-address limit; ``retry_after_s`` says
            when the window resets.
        """
        if key_prefix is not None and self.limits.per_key is not None:
            self._hit(self.limits.per_key, "key", key_prefix)
        if remote_addr and self.limits.per_ip is not None:
            self._hit(self.limits.per_ip, "ip", remote_addr)

    def check_auth_failure(self, remote_addr: str | None) -> None:
        """Count one failed authentication from ``remote_addr`` (guessing keys).

        Raises
        ------
        TooManyRequests
        """
        if remote_addr and self.limits.auth_failures_per_ip is not None:
            self._hit(self.limits.auth_failures_per_ip, "auth-failure", remote_addr)

    def refuse_blocked(self, remote_addr: str | None) -> None:
        """Refuse ``remote_addr`` while it is past its failed-authentication limit
        (without counting this request).

        Raises
        ------
        TooManyRequests
        """
        item = self.limits.auth_failures_per_ip
        if not remote_addr or item is None:
            return
        if not self._limiter.test(item, "mlserve", "auth-failure", remote_addr):
            self._refuse(item, "auth-failure", remote_addr)

    def _hit(self, item: RateLimitItem, kind: str, identity: str) -> None:
        if not self._limiter.hit(item, "mlserve", kind, identity):
            self._refuse(item, kind, identity)

    def _refuse(self, item: RateLimitItem, kind: str, identity: str) -> None:
        reset = self._limiter.get_window_stats(item, "mlserve", kind, identity).reset_time
        raise TooManyRequests(
            f"rate limit exceeded: {item} per {kind}",
            {"limit": str(item), "scope": kind, "retry_after_s": max(0.0, reset - time.time())},
        )
