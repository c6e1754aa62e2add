"""The online update job: learn the waiting samples with replay, exactly once, guarded.

One update of model ``name`` (docs/online-learning.md, "What an update does"):

1. read the head version and the cursor (:func:`mlserve.online.policy.head`) and the
   waiting samples after the cursor in id order; the newest
   ``online_guard_window_samples`` are held out (the guard window), the others (at most
   ``online_max_samples_per_update``) are consumed;
2. score the consumed samples with the version live when each arrived, before anything
   learns them (prequential error, :mod:`mlserve.online.prequential`);
3. hold out of learning the consumed samples the seeded hash picks
   (``online_holdout_fraction``, :mod:`mlserve.online.replay`); load the head's pipeline
   (sha256-checked) and ``partial_fit`` its estimator (:mod:`mlserve.online.learn`) on the
   others mixed with the parent's replay reservoir, ``online_replay_passes`` times; offer
   the learned samples to the replay reservoir and the held-out ones to the older one;
4. judge the new pipeline against ``production`` on the guard window, the older samples
   and the root's test split (:mod:`mlserve.online.guard`), and compute its plot data on
   the guard window;
5. write the new artifact (atomic temporary file + rename, sha256), then in ONE
   transaction register the new version with its lineage and memory, move the cursor
   (compare-and-set on the state read in 1) and, if the guard passed, move
   ``production`` (:mod:`mlserve.online.commit`).

A crash before step 5 commits leaves at most an orphan artifact and no cursor move: the
retry reads the same cursor, parent and memory, consumes the same samples, draws the same
held-out samples and pass orders (all seeded by the lineage's seed and the sample ids),
and commits the same version once. A second worker racing on the same update loses the
compare-and-set and deletes its artifacts.
"""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy.orm import Session

from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.online import prequential, replay
from mlserve.online.commit import LostRace, commit_update
from mlserve.online.frames import samples_frame, samples_target
from mlserve.online.guard import decide
from mlserve.online.learn import partial_fit
from mlserve.online.policy import head, is_incremental
from mlserve.online.samples import read_samples
from mlserve.registry import service as registry
from mlserve.serving.compile import plan_serving
from mlserve.serving.loader import load_pipeline
from mlserve.store.documents import Lineage, Metrics
from mlserve.store.orm import ModelVersion, OnlineState, OnlineUpdateRun, Sample, utcnow
from mlserve.training import evaluation
from mlserve.training.budget import extras_budget_s
from mlserve.training.fit import TrainResult, score
from mlserve.training.preprocessing import unseen_categories

log = logging.getLogger(__name__)
__all__ = ["LostRace", "commit_update", "partial_fit", "run_update", "run_update_job"]


class Pipelines:
    """The versions of one model an update reads, each loaded once (sha256-checked)."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx, self.name = ctx, name
        self.loaded: dict[int, tuple[ModelVersion, Pipeline]] = {}

    def __call__(self, version: int) -> tuple[ModelVersion, Pipeline]:
        """(row, pipeline) of ``version``: the pipeline is shared, never to be fitted."""
        if version not in self.loaded:
            row = registry.get_version(self.ctx, self.name, version)
            self.loaded[version] = (row, self.load(row))
        return self.loaded[version]

    def load(self, row: ModelVersion) -> Pipeline:
        """A pipeline of its own of ``row``."""
        return load_pipeline(self.ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))


def _score(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str) -> Metrics:
    """Metrics on samples (:func:`mlserve.training.fit.score`); unseen categories encode
    as all zeros without a warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        return score(pipeline, X, y, task)


@dataclass(kw_only=True)
class Learned:
    """What step 3 of an update made: the new pipeline and memory, and its counts.

    ``seconds``: wall-clock time of scoring, mixing and fitting, seconds.
    """

    pipeline: Pipeline
    memory: replay.LineageMemory
    n_learned: int
    n_replayed: int
    n_rows: int
    unseen: dict[str, int]
    seconds: float


def run_update(ctx: Context, name: str) -> ModelVersion | None:
    """Apply the waiting samples of ``name`` once; return the new version (None: nothing to do).

    Raises
    ------
    Conflict
        The head's algorithm cannot learn incrementally; or :class:`LostRace`.
    NotFound
        Unknown model.
    """
    version, cursor, stored = head(ctx, name)
    parent = registry.get_version(ctx, name, version)
    if not is_incremental(parent):
        raise Conflict(f"{parent.algorithm} cannot learn incrementally", {"field": "algorithm"})
    settings = ctx.settings
    window = settings.online_guard_window_samples
    rows = read_samples(ctx, name, cursor, settings.online_max_samples_per_update + window)
    if len(rows) <= window:
        return None
    consumed, held = rows[:-window], rows[-window:]
    started = time.perf_counter()
    versions = Pipelines(ctx, name)
    scored = prequential.score(consumed, parent, versions)  # test, then train
    learned = _learn(ctx, name, parent, consumed, versions=versions, started=started)
    production = registry.resolve(ctx, name)
    guard = decide(
        ctx,
        name,
        learned.memory,
        parent=parent,
        candidate=learned.pipeline,
        production=(production.version, versions(production.version)[1]),
        root=versions(parent.root_version)[1],
        held=held,
    )
    lineage: Lineage = {
        "parent_version": parent.version,
        "root_version": parent.root_version,
        "first_sample_id": consumed[0].id,
        "last_sample_id": consumed[-1].id,
        "n_samples": len(consumed),
        "n_held_out": len(consumed) - learned.n_learned,
        "n_replayed": learned.n_replayed,
        "passes": settings.online_replay_passes,
        "unseen_categories": learned.unseen,
        "guard": guard.view(),
        "prequential": scored,
    }
    return _register(
        ctx, name, expected=(version, cursor, stored), parent=parent, learned=learned,
        held=held, lineage=lineage,
    )  # fmt: skip


def _learn(
    ctx: Context,
    name: str,
    parent: ModelVersion,
    consumed: list[Sample],
    *,
    versions: Pipelines,
    started: float,
) -> Learned:
    """Hold out, mix with the replay reservoir, ``partial_fit`` a fresh copy of the parent,
    and offer the samples to the reservoirs (:mod:`mlserve.online.replay`)."""
    settings = ctx.settings
    memory = replay.recall(ctx, parent)
    ids = [row.id for row in consumed]
    out = replay.held_out(memory.seed, ids, settings.online_holdout_fraction)
    learned = [row for row, kept_out in zip(consumed, out, strict=True) if not kept_out]
    (X_mix, y_mix), n_replayed = replay.mix(ctx, name, memory, learned, parent)
    pipeline = versions.load(parent)
    unseen = unseen_categories(pipeline, samples_frame(consumed, parent.signature))
    if len(y_mix):
        passes = settings.online_replay_passes
        partial_fit(pipeline, X_mix, y_mix, passes=passes, seed=(memory.seed, ids[0]))
    memory.replay.offer([row.id for row in learned])
    memory.older.offer([i for i, kept_out in zip(ids, out, strict=True) if kept_out])
    return Learned(
        pipeline=pipeline,
        memory=memory,
        n_learned=len(learned),
        n_replayed=n_replayed,
        n_rows=len(y_mix),
        unseen=unseen,
        seconds=time.perf_counter() - started,
    )


def _register(
    ctx: Context,
    name: str,
    *,
    expected: tuple[int, int, bool],
    parent: ModelVersion,
    learned: Learned,
    held: list[Sample],
    lineage: Lineage,
) -> ModelVersion:
    """Plot data and metrics on the guard window, compilation, artifacts, then the commit
    (:func:`commit_update`); the artifacts are deleted if the commit fails."""
    pipeline = learned.pipeline
    X_held, y_held = samples_frame(held, parent.signature), samples_target(held, parent.task)
    with warnings.catch_warnings():  # unseen categories encode as all zeros
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        plots = evaluation.plot_data(
            pipeline,
            X_held,
            pd.Series(y_held),
            task=parent.task,
            cv_metrics={"folds": 0},
            random_state=learned.memory.seed,
            rows=evaluation.GUARD_WINDOW,
            budget_s=extras_budget_s(learned.seconds),
        )
    result = TrainResult(
        pipeline=pipeline,
        task=parent.task,
        params=parent.params,
        metrics=_score(pipeline, X_held, y_held, parent.task),
        cv_metrics={"folds": 0},
        signature=parent.signature,
        training_seconds=learned.seconds,
        n_train=learned.n_rows,
        n_test=len(held),
        evaluation=plots,
    )
    plan = plan_serving(pipeline, parent.signature, X_held, ctx.settings)
    key = f"models/online-{uuid.uuid4().hex}"
    written = [registry.save_artifact(ctx, pipeline, f"{key}.skops")]
    if plan.onnx is not None:
        written.append(ctx.store.put_bytes(f"{key}.onnx", plan.onnx))
    try:
        return commit_update(
            ctx,
            name,
            expected=expected,
            parent=parent,
            result=result,
            artifacts=written,
            serving=plan.serving,
            lineage=lineage,
            memory=learned.memory.state(),
        )
    except Exception:
        for artifact in written:
            ctx.store.delete(artifact.key)
        raise


def run_update_job(ctx: Context, name: str) -> None:
    """The queued task: :func:`run_update`, errors recorded on the state, never raised.

    While it runs, an :class:`~mlserve.store.orm.OnlineUpdateRun` row names this worker,
    so that the workers' recovery sweep records an error if the process dies in the
    middle (:func:`mlserve.jobs.heartbeat.recover_stale_jobs`).
    """
    worker_id = ctx.queue.worker_id
    try:
        _on_state(ctx, name, lambda session, _state: _mark(session, name, worker_id))
        run_update(ctx, name)
    except LostRace:
        log.info("online update of %s: another worker committed first", name)
    except Exception as exc:
        log.warning("online update of %s failed: %s", name, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        _on_state(ctx, name, lambda _session, state: _fail(state, error), quiet=True)
    finally:  # committed, lost or failed: this worker no longer runs it
        _on_state(ctx, name, lambda session, _state: _unmark(session, name, worker_id), quiet=True)


def _mark(session: Session, name: str, worker_id: str) -> None:
    session.merge(OnlineUpdateRun(model_name=name, worker_id=worker_id, started_at=utcnow()))


def _unmark(session: Session, name: str, worker_id: str) -> None:
    run = session.get(OnlineUpdateRun, (name, worker_id))
    if run is not None:
        session.delete(run)


def _fail(state: OnlineState, error: str) -> None:
    state.last_error, state.updated_at = error, utcnow()


def _on_state(
    ctx: Context,
    name: str,
    change: Callable[[Session, OnlineState], None],
    quiet: bool = False,
) -> None:
    """Apply ``change`` in one transaction holding the model's online state (created at
    its current head if missing); ``quiet``: log a failure instead of raising it."""
    try:
        version, cursor, _stored = head(ctx, name)
        with ctx.db.session() as session:
            state = session.get(OnlineState, name, with_for_update=True)
            if state is None:
                state = OnlineState(model_name=name, version=version, cursor=cursor)
                session.add(state)
            change(session, state)
    except Exception:
        if not quiet:
            raise
        log.exception("could not record the online update state of %s", name)
