"""The per-process cache of explainers (:mod:`mlserve.serving.explain` fills it).

Apart from the explanation service so that building the :class:`~mlserve.context.Context`
does not import SHAP's and scikit-learn's side of it: an HTTP worker that never
explains stays lean (:mod:`mlserve.lazy`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlserve.serving.explain import Entry
else:
    Entry = Any


class ExplainerCache:
    """Least-recently-used explainers of this process, keyed by version and artifact digest.

    Parameters
    ----------
    capacity : int
        Explainers kept at most.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[tuple[str, int, str], Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> Entry | None:
        """The cached entry of ``key`` (model, version, sha256) or ``None``."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, str], entry: Entry) -> None:
        """Keep ``entry``, forgetting the least recently used beyond the capacity."""
        with self._lock:
            self._items[key] = entry
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
