"""Online learning: the update policy, the learning state, retraining with samples.

Storing samples is :mod:`mlserve.online.samples`; the update itself (``partial_fit``, guard,
registration) is :mod:`mlserve.online.update`; docs/online-learning.md explains the design.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from mlserve.context import Context
from mlserve.errors import Conflict, NotFound
from mlserve.jobs import service as jobs
from mlserve.online import prequential
from mlserve.registry import service as registry
from mlserve.store.orm import ModelVersion, OnlineState, OnlineUpdateRun, Sample, as_utc, utcnow
from mlserve.training.catalogue import get_algorithm
from mlserve.training.spec import TrainSpec

RETRAIN_HINT = (
    "this model's algorithm cannot learn incrementally; samples are stored, and "
    "POST /api/v1/models/{name}/retrain trains a new version on the dataset plus them"
)


def is_incremental(row: ModelVersion) -> bool:
    """Whether the version's algorithm learns with ``partial_fit``."""
    return get_algorithm(row.algorithm, row.task).incremental


def head(ctx: Context, name: str) -> tuple[int, int, bool]:
    """The version online updates build on, the cursor, and whether the state is stored.

    Without a stored state the head is the version ``production`` points at (else
    the latest) and the cursor 0: every stored sample is still to be applied. The state
    is read again after that lookup: a first update committing in between (it moves
    ``production`` and stores the state in one transaction) must not yield its new
    version with the cursor of no state.
    """
    while True:
        state = _state(ctx, name)
        if state is not None:
            return state
        version = registry.resolve(ctx, name).version
        if _state(ctx, name) is None:
            return version, 0, False


def _state(ctx: Context, name: str) -> tuple[int, int, bool] | None:
    with ctx.db.session() as session:
        state = session.get(OnlineState, name)
        return None if state is None else (state.version, state.cursor, True)


def pending_count(ctx: Context, name: str) -> int:
    """Samples of ``name`` not yet applied by an online update."""
    _version, cursor, _stored = head(ctx, name)
    with ctx.db.session() as session:
        query = select(func.count()).where(Sample.model_name == name, Sample.id > cursor)
        return int(session.scalar(query) or 0)


def maybe_schedule(ctx: Context, name: str) -> bool:
    """Queue an online update if the policy says it is time; return whether it did.

    Policy: more than ``online_guard_window_samples`` samples are waiting (the
    newest are held out to judge the update) and either at least
    ``online_update_every_samples`` more, or the oldest waiting one arrived
    ``online_update_every_s`` seconds ago or earlier.
    """
    settings = ctx.settings
    _version, cursor, _stored = head(ctx, name)
    with ctx.db.session() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(Sample.received_at)).where(
                Sample.model_name == name, Sample.id > cursor
            )
        ).one()
    beyond = int(count or 0) - settings.online_guard_window_samples
    if beyond <= 0:
        return False
    due = beyond >= settings.online_update_every_samples
    if not due and settings.online_update_every_s > 0 and oldest is not None:
        age = utcnow() - as_utc(oldest)
        due = age >= timedelta(seconds=settings.online_update_every_s)
    if due:
        ctx.queue.enqueue_online_update(name)
    return due


def schedule_due(ctx: Context) -> list[str]:
    """Apply :func:`maybe_schedule` to every incremental model (worker housekeeping: the
    ``online_update_every_s`` timer also fires when no new samples arrive)."""
    queued = []
    for model in registry.list_models(ctx):
        try:
            version, _cursor, _stored = head(ctx, model.name)
            row = registry.get_version(ctx, model.name, version)
        except NotFound:  # a model with no version yet
            continue
        if is_incremental(row) and maybe_schedule(ctx, model.name):
            queued.append(model.name)
    return queued


def request_update(ctx: Context, name: str) -> dict[str, Any]:
    """Queue an online update of ``name`` now (whatever the policy); return the state.

    Raises
    ------
    Conflict
        The model's algorithm cannot learn incrementally (the message says how
        to retrain instead).
    NotFound
    """
    version, _cursor, _stored = head(ctx, name)
    row = registry.get_version(ctx, name, version)
    if not is_incremental(row):
        raise Conflict(
            RETRAIN_HINT.format(name=name),
            {"algorithm": row.algorithm, "hint": f"POST /api/v1/models/{name}/retrain"},
        )
    ctx.queue.enqueue_online_update(name)
    return state_view(ctx, name)


def state_view(ctx: Context, name: str) -> dict[str, Any]:
    """JSON-ready online learning state of ``name``, with the prequential error of its
    stream (:func:`mlserve.online.prequential.summary`; None before any update).

    Raises
    ------
    NotFound
    """
    registry.get_model(ctx, name)
    version, cursor, _stored = head(ctx, name)
    with ctx.db.session() as session:
        state = session.get(OnlineState, name)
        total = session.scalar(select(func.count()).where(Sample.model_name == name))
        last_id = session.scalar(select(func.max(Sample.id)).where(Sample.model_name == name))
        running = [
            {"worker_id": run.worker_id, "started_at": run.started_at}
            for run in session.scalars(
                select(OnlineUpdateRun)
                .where(OnlineUpdateRun.model_name == name)
                .order_by(OnlineUpdateRun.started_at)
            )
        ]
    row = registry.get_version(ctx, name, version)
    return {
        "model_name": name,
        "incremental": is_incremental(row),
        "head_version": version,
        "cursor": cursor,
        "samples": int(total or 0),
        "last_sample_id": last_id,
        "pending": pending_count(ctx, name),
        "last_error": state.last_error if state else None,
        "updates_running": running,
        "updated_at": state.updated_at if state else None,
        "prequential": prequential.summary(registry.list_versions(ctx, name)),
    }


def retrain(ctx: Context, name: str, key_prefix: str | None = None) -> Any:
    """Submit a training job repeating the live version's first training on dataset + samples.

    Returns
    -------
    TrainingJob

    Raises
    ------
    NotFound
    Conflict
        The version's lineage has no training job to repeat.
    """
    live = registry.resolve(ctx, name)
    root = registry.get_version(ctx, name, live.root_version)
    if root.job_id is None:
        raise Conflict("this model's versions have no training job to repeat", {"model": name})
    spec = dict(jobs.get_job(ctx, root.job_id).spec)
    spec.pop("task", None)
    spec["include_samples"] = True
    spec["features"] = [f["name"] for f in root.signature["inputs"]]
    return jobs.submit_training_job(ctx, TrainSpec.model_validate(spec), key_prefix)
