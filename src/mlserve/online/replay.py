"""What an online update remembers: the replay reservoir, held-out samples, the kept rows.

Rehearsal (A. Robins, "Catastrophic forgetting, rehearsal and pseudorehearsal", Connection
Science 7(2), 1995; D. Rolnick et al., "Experience replay for continual learning",
NeurIPS 2019; A. Chaudhry et al., "On tiny episodic memories in continual learning",
arXiv:1902.10486, 2019): an update does not fit its new samples alone, which makes SGD
chase the newest band of an ordered stream and forget the rest, but the new samples mixed
with a bounded memory of what came before.

- **Replay reservoir** (``online_replay_reservoir_rows``): Algorithm R (Vitter 1985,
  :mod:`mlserve.training.reservoir`) offered first the lineage root's training split
  (kept at training time, :mod:`mlserve.training.memory`), then every learned sample in
  id order. Each item offered is in it with the same probability, so the mix moves from
  the training data to the stream in proportion to what has been seen.
- **Held-out samples** (``online_holdout_fraction``): a sample is held out iff
  ``uniform(seed, HOLDOUT_STREAM, id) < fraction``; it is never learned and is offered to
  the **older reservoir** (``online_holdout_reservoir_rows``) that the guard judges on:
  older samples neither the candidate nor production has learned from.
- **Test split**: the kept rows of the root's test split, never replayed, judged by the
  guard.

The state of both reservoirs is stored with each version (``model_version.memory``, in
the transaction that moves the cursor). It is a pure function of the seed, the root's
training split and the ids the lineage consumed: a retried update recomputes exactly the
same state from its parent's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select

from mlserve.context import Context
from mlserve.online.frames import concat_targets, samples_frame, samples_target
from mlserve.online.samples import samples_by_id
from mlserve.registry import service as registry
from mlserve.store.documents import Memory
from mlserve.store.orm import ModelVersion, Sample
from mlserve.training.memory import read_rows
from mlserve.training.reservoir import HOLDOUT_STREAM, OLDER_STREAM, REPLAY_STREAM, Reservoir
from mlserve.training.reservoir import uniform as draws

Rows = tuple[pd.DataFrame, np.ndarray]


@dataclass(kw_only=True)
class LineageMemory:
    """The memory an update starts from: its parent's reservoirs and the root's kept rows.

    Attributes
    ----------
    seed : int
    replay, older : Reservoir
        The parent's replay reservoir and reservoir of held-out samples (the update
        offers its samples to them).
    kept_features : DataFrame of shape (n_kept, n_features) or None
        The root's kept rows, indexed by id (< 0 training split, > 0 test split);
        None when the root was trained before rows were kept.
    kept_targets : ndarray of shape (n_kept,) or None
    """

    seed: int
    replay: Reservoir
    older: Reservoir
    kept_features: pd.DataFrame | None
    kept_targets: np.ndarray | None

    def state(self) -> Memory:
        """JSON-ready state of the reservoirs, stored with the new version."""
        return {"seed": self.seed, "replay": self.replay.state(), "older": self.older.state()}


def read_memory(ctx: Context, row: ModelVersion) -> Memory | None:
    """The stored memory of a version (a deferred column: read on its own)."""
    with ctx.db.session() as session:
        return session.scalar(select(ModelVersion.memory).where(ModelVersion.id == row.id))


def recall(ctx: Context, parent: ModelVersion) -> LineageMemory:
    """The memory an update of ``parent`` starts from.

    A version registered before mlserve kept memories starts empty reservoirs of the
    capacities in the settings (seeded by its ``random_state``), without kept rows.
    """
    stored = read_memory(ctx, parent)
    root = parent if parent.online is None else None
    if stored is None:
        seed = parent.params.get("random_state")
        seed = seed if isinstance(seed, int) else 0
        settings = ctx.settings
        stored = {
            "seed": seed,
            "replay": {"size": settings.online_replay_reservoir_rows, "seen": 0, "items": []},
            "older": {"size": settings.online_holdout_reservoir_rows, "seen": 0, "items": []},
        }
    elif root is None:
        root = registry.get_version(ctx, parent.model_name, parent.root_version)
    kept = _kept_rows(ctx, root) if root is not None else None
    seed = int(stored["seed"])
    return LineageMemory(
        seed=seed,
        replay=Reservoir.restore(stored["replay"], seed=seed, stream=REPLAY_STREAM),
        older=Reservoir.restore(stored["older"], seed=seed, stream=OLDER_STREAM),
        kept_features=kept[0] if kept else None,
        kept_targets=kept[1] if kept else None,
    )


def _kept_rows(ctx: Context, root: ModelVersion) -> Rows | None:
    memory = read_memory(ctx, root)
    rows = memory.get("rows") if memory else None
    if rows is None:
        return None
    X, y = read_rows(ctx.store.get_bytes(rows["key"], rows["sha256"]), root.signature)
    return X, y.to_numpy()


def held_out(seed: int, ids: list[int], fraction: float) -> np.ndarray:
    """Whether each sample id is held out of learning: boolean array of shape (n_ids,)."""
    if fraction <= 0 or not ids:
        return np.zeros(len(ids), dtype=bool)
    return draws(seed, HOLDOUT_STREAM, np.asarray(ids)) < fraction


def rows_of(
    ctx: Context, name: str, memory: LineageMemory, ids: list[int], parent: ModelVersion
) -> Rows:
    """Features (model input frame) and targets of reservoir items.

    Negative ids are the root's kept training rows, positive ids stored samples; the
    kept rows come first, then the samples, each in the order of ``ids``.
    """
    signature, task = parent.signature, parent.task
    kept = [i for i in ids if i < 0]
    samples = samples_by_id(ctx, name, [i for i in ids if i > 0])
    parts_X = [samples_frame(samples, signature)]
    parts_y = [samples_target(samples, task)]
    if kept:
        if memory.kept_features is None or memory.kept_targets is None:
            raise RuntimeError("the memory names kept rows but the root has none")
        where = memory.kept_features.index.get_indexer(pd.Index(kept))
        parts_X.insert(0, memory.kept_features.iloc[where].reset_index(drop=True))
        parts_y.insert(0, memory.kept_targets[where])
    X = pd.concat([p.reset_index(drop=True) for p in parts_X], ignore_index=True)
    y = concat_targets(parts_y)
    return X, y.astype(np.float64) if task == "regression" else y


def test_rows(memory: LineageMemory) -> Rows | None:
    """The root's kept test rows (None: not kept)."""
    if memory.kept_features is None or memory.kept_targets is None:
        return None
    positive = np.asarray(memory.kept_features.index > 0)
    return memory.kept_features[positive].reset_index(drop=True), memory.kept_targets[positive]


def mix(
    ctx: Context, name: str, memory: LineageMemory, learned: list[Sample], parent: ModelVersion
) -> tuple[Rows, int]:
    """The rows an update fits: its learned samples, then every replay reservoir item.

    Returns the rows and how many of them were replayed.
    """
    X_new = samples_frame(learned, parent.signature)
    y_new = samples_target(learned, parent.task)
    X_old, y_old = rows_of(ctx, name, memory, memory.replay.items, parent)
    X = pd.concat([X_new.reset_index(drop=True), X_old], ignore_index=True)
    return (X, concat_targets([y_new, y_old])), len(y_old)
