"""Labelled samples for online learning: validate, store append-only, read back.

Samples are stored in SQL (:class:`mlserve.store.orm.Sample`); their id is the arrival
order per model. Inserts take the model's row lock (``registered_model``
``FOR UPDATE``), so a model's sample ids commit in increasing order and a reader
that sees id *n* committed sees every smaller id of that model: the update job's
cursor can never skip a sample that commits late (docs/online-learning.md).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.online.policy import is_incremental, maybe_schedule, pending_count
from mlserve.store.documents import OutputSpec
from mlserve.store.orm import RegisteredModel, Sample

ID_CHUNK = 500  # ids per IN (...) query: well under SQLite's bound parameters limit


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


def check_targets(targets: Any, n_rows: int, output: OutputSpec, task: str) -> list[Any]:
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


def samples_by_id(ctx: Context, name: str, ids: list[int]) -> list[Sample]:
    """Stored samples of ``name`` with these ids, in the order of ``ids`` (each must exist).

    Raises
    ------
    KeyError
        An id is not a stored sample of ``name``.
    """
    found: dict[int, Sample] = {}
    with ctx.db.session() as session:
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            query = select(Sample).where(Sample.model_name == name, Sample.id.in_(chunk))
            found.update((row.id, row) for row in session.scalars(query))
    return [found[i] for i in ids]


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
