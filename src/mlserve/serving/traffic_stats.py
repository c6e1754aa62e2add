"""Per-version request counters and latencies of this process, live and shadow.

The request path adds one entry per answered (or failed) request under a lock; the
comparison page (:mod:`mlserve.monitoring.comparison`) and ``/metrics``
(:mod:`mlserve.monitoring.prometheus`) read them. Counts are of this process (a
Prometheus server sums the replicas); latencies keep the most recent
``traffic_latency_window`` requests per version and role.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Role = Literal["live", "shadow"]


@dataclass
class VersionCounters:
    """Counters of one (model, version, role)."""

    requests: int = 0
    errors: int = 0
    dropped: int = 0
    latencies_s: deque[float] = field(default_factory=deque)


class TrafficStats:
    """Requests, errors, drops and latencies per model version and role.

    Parameters
    ----------
    window : int
        Latencies kept per (model, version, role), the most recent.
    """

    def __init__(self, *, window: int) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, int, Role], VersionCounters] = {}

    def _get(self, model: str, version: int, role: Role) -> VersionCounters:
        key = (model, version, role)
        found = self._counters.get(key)
        if found is None:
            found = VersionCounters(latencies_s=deque(maxlen=self._window))
            self._counters[key] = found
        return found

    def record(
        self, model: str, version: int, *, role: Role, seconds: float, ok: bool = True
    ) -> None:
        """Count one request answered (``ok``) or failed by ``version`` in ``seconds``."""
        with self._lock:
            counters = self._get(model, version, role)
            counters.requests += 1
            if ok:
                counters.latencies_s.append(seconds)
            else:
                counters.errors += 1

    def drop(self, model: str, version: int) -> None:
        """Count one shadow request dropped (queue full)."""
        with self._lock:
            self._get(model, version, "shadow").dropped += 1

    def snapshot(self, model: str | None = None) -> list[dict[str, object]]:
        """Counters of ``model`` (every model if ``None``), one dict per version and role.

        Returns
        -------
        list of dict
            ``model``, ``version``, ``role``, ``requests``, ``errors``, ``dropped``,
            ``latency_p50_ms`` and ``latency_p99_ms`` (``None`` before an answer).
        """
        with self._lock:
            items = [
                (key, c.requests, c.errors, c.dropped, np.array(c.latencies_s))
                for key, c in self._counters.items()
                if model is None or key[0] == model
            ]
        out: list[dict[str, object]] = []
        for (name, version, role), requests, errors, dropped, latencies in sorted(items):
            p50 = p99 = None
            if latencies.size:
                p50, p99 = (float(v) * 1000 for v in np.percentile(latencies, [50, 99]))
            out.append(
                {
                    "model": name,
                    "version": version,
                    "role": role,
                    "requests": requests,
                    "errors": errors,
                    "dropped": dropped,
                    "latency_p50_ms": p50,
                    "latency_p99_ms": p99,
                }
            )
        return out
