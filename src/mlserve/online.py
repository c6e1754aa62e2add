"""Online learning: labelled samples over REST, the update policy, the learning state.

Samples are stored append-only in SQL (:class:`mlserve.models.Sample`); their id
is the arrival order per model. Inserts take the model's row lock
(``registered_model`` ``FOR UPDATE``), so a model's sample ids commit in
increasing order and a reader that sees id *n* committed sees every smaller id
of that model: the update job's cursor can never skip a sample that commits late.

The update itself (``partial_fit``, guard, registration) is
:mod:`mlserve.online_update`; docs/online-learning.md explains the design.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from mlserve import registry
from mlserve.catalogue import get_algorithm
from mlserve.context import Context
from mlserve.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from mlserve.models import ModelVersion, OnlineState, RegisteredModel, Sample, as_utc, utcnow
from mlserve.signature import model_frame

RETRAIN_HINT = (
    "this model's algorithm cannot learn incrementally; samples are stored, and "
    "POST /api/v1/models/{name}/retrain trains a new version on the dataset plus them"
)


def is_incremental(row: ModelVersion) -> bool:
    """Whether the version's algorithm learns with ``partial_fit``."""
    return get_algorithm(row.algorithm, row.task).incremental


def store_samples(
    ctx: Context, name: str, instances: Any, targets: Any, key_prefix: str | None = None
) -> dict[str, Any]:
    """Validate labelled samples against the live version's signature and store them.

    Parameters
    ----------
    name : str
        Registered model name.
    instances : list of dict
        One ``{feature: value}`` per sample, as for predictions.
    targets : list
        The true target of each instance: a number (regression) or one of the
        version's classes (classification).
    key_prefix : str, optional
        The API key that sent them (recorded with each sample).

    Returns
    -------
    dict
        ``received``, ``first_sample_id``, ``last_sample_id``, ``pending``,
        ``live_version`` and ``update_queued`` (see :func:`maybe_schedule`).

    Raises
    ------
    ValidationFailed
        An instance or target does not fit the signature (``details`` names
        ``row`` and ``field``), or the two lists differ in length.
    PayloadTooLarge
        More than ``max_batch_rows`` samples.
    NotFound
        Unknown model.
    """
    if isinstance(instances, list) and len(instances) > ctx.settings.max_batch_rows:
        raise PayloadTooLarge(
            f"{len(instances)} samples exceed max_batch_rows={ctx.settings.max_batch_rows}",
            {"field": "instances", "limit": ctx.settings.max_batch_rows},
        )
    live = ctx.resolver.resolve(name)
    ctx.models.get(live).validator.columns(instances)
    checked = check_targets(targets, len(instances), live.signature["output"], live.task)
    with ctx.db.session() as session:
        session.get(RegisteredModel, name, with_for_update=True)  # ids commit in order
        rows = [
            Sample(
                model_name=name,
                features=instance,
                target=target,
                key_prefix=key_prefix,
                live_version=live.version,
            )
            for instance, target in zip(instances, checked, strict=True)
        ]
        session.add_all(rows)
        session.flush()
        first, last = rows[0].id, rows[-1].id
    queued = maybe_schedule(ctx, name) if is_incremental(live) else False
    return {
        "model_name": name,
        "received": len(rows),
        "first_sample_id": first,
        "last_sample_id": last,
        "live_version": live.version,
        "pending": pending_count(ctx, name),
        "update_queued": queued,
    }


def check_targets(targets: Any, n_rows: int, output: dict[str, Any], task: str) -> list[Any]:
    """Check the targets of ``n_rows`` samples; return them as JSON values.

    Raises
    ------
    ValidationFailed
        Not a list of ``n_rows`` values; a regression target that is not a finite
        number; a class label the version does not know (``details.row``).
    """
    if not isinstance(targets, list) or len(targets) != n_rows:
        raise ValidationFailed(
            f"targets must be a list of {n_rows} values, one per instance", {"field": "targets"}
        )
    classes = output.get("classes") if task == "classification" else None
    for row, value in enumerate(targets):
        if classes is not None:
            ok = is_class(value, classes)
            message = f"targets[{row}]: {value!r} is not one of the model's classes"
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
            message = f"targets[{row}]: expected a finite number"
        if not ok:
            details: dict[str, Any] = {"field": "targets", "row": row}
            if classes is not None:
                details["classes"] = classes[:50]
            raise ValidationFailed(message, details)
    return list(targets)


def is_class(value: Any, classes: list[Any]) -> bool:
    """Whether JSON ``value`` is one of ``classes``, without ``True == 1`` or ``1 == 1.0``
    standing in for each other (a boolean label matches a boolean class only)."""
    if isinstance(value, dict | list):
        return False
    return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in classes)


def head(ctx: Context, name: str) -> tuple[int, int, bool]:
    """The version online updates build on, the cursor, and whether the state is stored.

    Without a stored state the head is the version ``production`` points at (else
    the latest) and the cursor 0: every stored sample is still to be applied.
    """
    with ctx.db.session() as session:
        state = session.get(OnlineState, name)
        if state is not None:
            return state.version, state.cursor, True
    return registry.resolve(ctx, name).version, 0, False


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
    """JSON-ready online learning state of ``name``.

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
        "updated_at": state.updated_at if state else None,
    }


def samples_frame(rows: list[Sample], signature: dict[str, Any]) -> pd.DataFrame:
    """Stored samples' features as a model input frame of shape (n_samples, n_features)."""
    names = [f["name"] for f in signature["inputs"]]
    frame = pd.DataFrame.from_records([row.features for row in rows], columns=names)
    return model_frame(frame, signature)


def samples_target(rows: list[Sample], task: str) -> np.ndarray:
    """Stored samples' targets, shape (n_samples,): float64 (regression) or object labels."""
    values = [row.target for row in rows]
    return np.asarray(values, dtype=np.float64 if task == "regression" else object)


def read_samples(
    ctx: Context, name: str, after_id: int, limit: int | None = None, upto_id: int | None = None
) -> list[Sample]:
    """Samples of ``name`` with ``after_id < id (<= upto_id)``, in arrival order."""
    query = select(Sample).where(Sample.model_name == name, Sample.id > after_id)
    if upto_id is not None:
        query = query.where(Sample.id <= upto_id)
    query = query.order_by(Sample.id)
    if limit is not None:
        query = query.limit(limit)
    with ctx.db.session() as session:
        return list(session.scalars(query))


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
    from mlserve import jobs
    from mlserve.training import TrainSpec

    live = registry.resolve(ctx, name)
    root = registry.get_version(ctx, name, (live.online or {}).get("root_version", live.version))
    if root.job_id is None:
        raise Conflict("this model's versions have no training job to repeat", {"model": name})
    spec = dict(jobs.get_job(ctx, root.job_id).spec)
    spec.pop("task", None)
    spec["include_samples"] = True
    spec["features"] = [f["name"] for f in root.signature["inputs"]]
    return jobs.submit_training_job(ctx, TrainSpec.model_validate(spec), key_prefix)
