"""Seeded reservoir sampling (Algorithm R) whose content is a pure function of its inputs.

A reservoir of ``size`` items is offered ids one after the other. The first ``size``
fill it; the ``i``-th item offered (1-based, ``i > size``) replaces slot
``j = floor(u * i)`` when ``j < size``. This is Algorithm R of J. S. Vitter, "Random
sampling with a reservoir", ACM Transactions on Mathematical Software 11(1):37-57, 1985:
after ``n`` offers every item offered is in the reservoir with probability ``size / n``.

Here ``u`` is not drawn from a random generator carried along: it is a hash of
``(seed, stream, id)`` (the SplitMix64 finaliser of G. Steele, D. Lea, C. Flood, "Fast
splittable pseudorandom number generators", OOPSLA 2014), so the content depends only on
the seed and the ids offered, in order. Offering ids in one call or in several gives the
same reservoir: an online update that is retried after a crash rebuilds exactly the
reservoir of the first attempt. The same hash decides which samples are held out of
learning (:func:`uniform` below a fraction).

Pure numpy; used at training time (:mod:`mlserve.training.memory`) and by online updates
(:mod:`mlserve.online.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlserve.store.documents import ReservoirState

_MASK = (1 << 64) - 1
# Independent draws for independent decisions: one stream per use.
HOLDOUT_STREAM, REPLAY_STREAM, TEST_STREAM, OLDER_STREAM = 1, 2, 3, 4


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (Steele et al. 2014) of each uint64 of ``x``."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, stream: int, ids: np.ndarray) -> np.ndarray:
    """One draw in [0, 1) per id, a pure function of ``(seed, stream, id)``.

    Parameters
    ----------
    seed : int
        The lineage's seed (the training job's ``random_state``).
    stream : int
        Which decision the draws are for (``HOLDOUT_STREAM``...): distinct streams
        give independent draws for the same id.
    ids : array-like of int of shape (n_ids,)
        Sample ids (positive) or training-split rows (negative).

    Returns
    -------
    ndarray of float64 of shape (n_ids,)
    """
    key = np.array([((int(seed) & _MASK) * 0x100000001B3 + stream) & _MASK], dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashed = _splitmix64(np.asarray(ids, dtype=np.int64).view(np.uint64) ^ _splitmix64(key))
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(kw_only=True)
class Reservoir:
    """A bounded uniform sample of the ids offered so far (Algorithm R, Vitter 1985).

    Attributes
    ----------
    size : int
        Capacity, items (0: keeps nothing).
    seed, stream : int
        Of the draws (:func:`uniform`).
    seen : int
        Items offered so far.
    items : list of int
        The sample: ``min(seen, size)`` ids.
    """

    size: int
    seed: int
    stream: int
    seen: int = 0
    items: list[int] = field(default_factory=list)

    def offer(self, ids: np.ndarray | list[int]) -> None:
        """Offer ``ids`` in order (vectorised; the same as offering them one by one)."""
        offered = np.asarray(ids, dtype=np.int64)
        if offered.size == 0:
            return
        items = np.asarray(self.items, dtype=np.int64)
        free = max(0, self.size - len(items))
        items = np.concatenate([items, offered[:free]])
        rest = offered[free:]
        positions = self.seen + free + 1 + np.arange(len(rest), dtype=np.int64)
        self.seen += len(offered)
        if len(rest) and self.size > 0:
            slots = np.floor(uniform(self.seed, self.stream, rest) * positions).astype(np.int64)
            hit = slots < self.size
            # Each slot keeps the last id written to it: the first of the reversed order.
            slots, writers = slots[hit][::-1], rest[hit][::-1]
            unique, first = np.unique(slots, return_index=True)
            items[unique] = writers[first]
        self.items = [int(i) for i in items]

    def state(self) -> ReservoirState:
        """JSON-ready state (``seed`` and ``stream`` are the lineage's, not stored)."""
        return {"size": self.size, "seen": self.seen, "items": list(self.items)}

    @classmethod
    def restore(cls, state: ReservoirState, *, seed: int, stream: int) -> Reservoir:
        """The reservoir of a stored :meth:`state`."""
        return cls(
            size=int(state["size"]),
            seed=seed,
            stream=stream,
            seen=int(state["seen"]),
            items=[int(i) for i in state["items"]],
        )
