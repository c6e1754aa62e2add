"""What a training job does for online learning (docs/online-learning.md).

A retrain trains on the dataset plus the model's stored samples and becomes the online
head (:func:`with_samples`, :func:`restart_online`); a trained version of an incremental
algorithm keeps rows of its splits for its online updates (:func:`keep_memory`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select

from mlserve.context import Context
from mlserve.store.artifacts import StoredArtifact
from mlserve.store.documents import Memory
from mlserve.store.orm import OnlineState, Sample, TrainingJob, utcnow
from mlserve.training.catalogue import get_algorithm
from mlserve.training.fit import TrainResult
from mlserve.training.memory import keep_rows
from mlserve.training.spec import TrainSpec


def keep_memory(
    ctx: Context,
    job: TrainingJob,
    spec: TrainSpec,
    result: TrainResult,
    written: list[StoredArtifact],
) -> Memory | None:
    """Store the rows an incremental model keeps for its online updates.

    The Parquet artifact (:mod:`mlserve.training.memory`) is appended to ``written``, so
    that a failing job deletes it with the others.

    Returns
    -------
    dict or None
        The version's memory; None when the algorithm does not learn incrementally.
    """
    if not get_algorithm(spec.algorithm, job.spec["task"]).incremental:
        return None
    settings = ctx.settings
    kept = keep_rows(
        result,
        seed=spec.random_state,
        replay_rows=settings.online_replay_reservoir_rows,
        older_rows=settings.online_holdout_reservoir_rows,
        test_rows=settings.online_guard_test_rows,
    )
    written.append(ctx.store.put_bytes(f"models/{job.id}-rows.parquet", kept.to_parquet()))
    return kept.memory(written[-1])


def with_samples(
    ctx: Context, job: TrainingJob, spec: TrainSpec, frame: Any
) -> tuple[Any, int | None]:
    """The dataset plus the model's stored samples when the spec says so (a retrain).

    Returns the frame and the id of the last sample included (``None``: none asked).
    """
    if not spec.include_samples:
        return frame, None
    with ctx.db.session() as session:
        rows = list(
            session.scalars(
                select(Sample).where(Sample.model_name == job.model_name).order_by(Sample.id)
            )
        )
    if not rows:
        return frame, 0
    added = pd.DataFrame.from_records([row.features for row in rows])
    added[spec.target] = [row.target for row in rows]
    return pd.concat([frame, added], ignore_index=True), rows[-1].id


def restart_online(session: Any, name: str, version: int, cursor: int) -> None:
    """A retrained version becomes the online head; the samples it saw count as applied."""
    state = session.get(OnlineState, name, with_for_update=True)
    if state is None:
        session.add(OnlineState(model_name=name, version=version, cursor=cursor))
        return
    state.version, state.cursor = version, max(state.cursor, cursor)
    state.updated_at, state.last_error = utcnow(), None
