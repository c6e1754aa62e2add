"""Feedback on logged predictions, live metrics per version, drift of recent inputs.

Live metrics are computed from the logged predictions that received feedback:
the most recent ``window`` rows (by feedback time) of one version, with the
evaluation metrics of training (:mod:`mlserve.training.metrics`). Drift compares the
most recent ``window`` input rows of a model (logged predictions, or stored
samples) with the version's reference statistics (:mod:`mlserve.monitoring.drift`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import Conflict, NotFound, ValidationFailed
from mlserve.monitoring.drift import drift_report
from mlserve.monitoring.prediction_log import MAX_WINDOW
from mlserve.online.samples import check_targets
from mlserve.registry import service as registry
from mlserve.store.database import update_where
from mlserve.store.documents import Metrics
from mlserve.store.orm import ModelVersion, PredictionLog, Sample, utcnow
from mlserve.training.metrics import classification_metrics, regression_metrics

Source = Literal["predictions", "samples"]


def record_feedback(ctx: Context, prediction_id: str, body: Any) -> dict[str, Any]:
    """Attach the true target(s) to a logged prediction.

    Parameters
    ----------
    prediction_id : str
    body : dict
        ``{"targets": [...]}`` with one value per predicted row, or
        ``{"target": value}`` for a one-row prediction.

    Raises
    ------
    NotFound
        No logged prediction has this id (unknown, not sampled for logging, or
        not written yet).
    ValidationFailed
        Targets missing, of the wrong count or type.
    Conflict
        Feedback was already given for this prediction.
    """
    targets = _targets(body)
    with ctx.db.session() as session:
        row = session.get(PredictionLog, prediction_id)
        if row is None:
            raise NotFound(
                f"no logged prediction {prediction_id!r}: unknown, not sampled for logging "
                "(prediction_log_sample_rate) or not written yet",
                {"resource": "prediction", "id": prediction_id},
            )
        if row.feedback is not None:
            raise Conflict("feedback was already given for this prediction", {"id": row.id})
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == row.model_name, ModelVersion.version == row.version
            )
        )
        if version is None:
            raise NotFound.of("model version", f"{row.model_name}/{row.version}")
        feedback = check_targets(targets, row.n_rows, version.signature["output"], version.task)
        now = utcnow()
        given = update_where(  # conditional: of two feedbacks sent at once, one is kept
            session,
            PredictionLog,
            PredictionLog.id == row.id,
            PredictionLog.feedback_at.is_(None),
            feedback=feedback,
            feedback_at=now,
        )
        if given == 0:
            raise Conflict("feedback was already given for this prediction", {"id": row.id})
        update_where(  # the shadow versions' answers to the same rows are scored too
            session,
            PredictionLog,
            PredictionLog.shadow_of == row.id,
            feedback=feedback,
            feedback_at=now,
        )
        return {
            "prediction_id": row.id,
            "model_name": row.model_name,
            "model_version": row.version,
            "n_rows": row.n_rows,
        }


def _targets(body: Any) -> Any:
    if not isinstance(body, dict) or len(set(body) & {"targets", "target"}) != 1:
        raise ValidationFailed(
            'body must be {"targets": [...]} or {"target": value}', {"field": "targets"}
        )
    extra = sorted(set(body) - {"targets", "target"})
    if extra:
        raise ValidationFailed(f"unknown field {extra[0]!r}", {"field": extra[0]})
    return body["targets"] if "targets" in body else [body["target"]]


def check_window(value: str | None, default: int) -> int:
    """The ``window`` query parameter: rows, 1 to :data:`MAX_WINDOW`.

    Raises
    ------
    ValidationFailed
    """
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_WINDOW:
        raise ValidationFailed(
            f"window must be a number of rows from 1 to {MAX_WINDOW}", {"field": "window"}
        )
    return int(value)


def live_metrics(ctx: Context, name: str, version: int, window: int) -> dict[str, Any]:
    """Metrics of ``version`` on the most recent ``window`` rows that received feedback.

    Returns
    -------
    dict
        ``window``, ``n_samples`` (rows with feedback used, at most ``window``),
        ``metrics`` (RMSE/MAE/R² or accuracy/F1 ..., ``None`` without feedback),
        ``from``/``to`` (feedback times).

    Raises
    ------
    NotFound
    """
    row = registry.get_version(ctx, name, version)
    y_true: list[Any] = []
    y_pred: list[Any] = []
    times = []
    with ctx.db.session() as session:
        query = (
            select(PredictionLog.feedback, PredictionLog.predictions, PredictionLog.feedback_at)
            .where(
                PredictionLog.model_name == name,
                PredictionLog.version == version,
                PredictionLog.feedback_at.is_not(None),
            )
            .order_by(PredictionLog.feedback_at.desc())
        )
        for feedback, predictions, at in session.execute(query.execution_options(yield_per=500)):
            y_true.extend(feedback)
            y_pred.extend(predictions)
            times.append(at)
            if len(y_true) >= window:
                break
    y_true, y_pred = y_true[:window], y_pred[:window]
    return {
        "model_name": name,
        "version": version,
        "window": window,
        "n_samples": len(y_true),
        "metrics": _metrics(row, y_true, y_pred) if y_true else None,
        "from": min(times) if times else None,
        "to": max(times) if times else None,
    }


def _metrics(row: ModelVersion, y_true: list[Any], y_pred: list[Any]) -> Metrics:
    if row.task == "regression":
        return regression_metrics(np.asarray(y_true, float), np.asarray(y_pred, float))
    classes = np.asarray(row.signature["output"].get("classes") or sorted(set(y_true)), object)
    result = classification_metrics(
        np.asarray(y_true, object), np.asarray(y_pred, object), None, classes
    )
    return result


def reference_of(ctx: Context, row: ModelVersion) -> dict[str, Any]:
    """The drift reference of ``row``: its own, else its online lineage root's.

    Raises
    ------
    Conflict
        The version has no reference statistics (registered before they existed).
    """
    with ctx.db.session() as session:
        reference = session.scalar(select(ModelVersion.reference).where(ModelVersion.id == row.id))
        root = row.root_version
        if reference is None and root != row.version:
            reference = session.scalar(
                select(ModelVersion.reference).where(
                    ModelVersion.model_name == row.model_name, ModelVersion.version == root
                )
            )
    if reference is None:
        raise Conflict(
            "this version has no reference statistics (registered before drift was measured)",
            {"model": row.model_name, "version": row.version},
        )
    return reference


def recent_inputs(ctx: Context, name: str, window: int, source: Source) -> pd.DataFrame:
    """The most recent ``window`` input rows of model ``name``, oldest first."""
    with ctx.db.session() as session:
        if source == "samples":
            query = (
                select(Sample.features)
                .where(Sample.model_name == name)
                .order_by(Sample.id.desc())
                .limit(window)
            )
            rows = list(session.scalars(query))[::-1]
            return pd.DataFrame.from_records(rows)
        frames: list[pd.DataFrame] = []
        taken = 0
        query = (
            select(PredictionLog.features, PredictionLog.n_rows)
            .where(PredictionLog.model_name == name, PredictionLog.shadow_of.is_(None))
            .order_by(PredictionLog.at.desc())
        )
        for features, n_rows in session.execute(query.execution_options(yield_per=500)):
            frames.append(pd.DataFrame(features))
            taken += n_rows
            if taken >= window:
                break
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames[::-1], ignore_index=True)
    return frame.iloc[-window:].reset_index(drop=True)


def drift(ctx: Context, name: str, version: int, window: int, source: str) -> dict[str, Any]:
    """PSI and KS of the model's recent inputs against ``version``'s reference.

    Raises
    ------
    NotFound
    ValidationFailed
        ``source`` is not ``predictions`` or ``samples``.
    Conflict
        No reference statistics for the version.
    """
    if source not in ("predictions", "samples"):
        raise ValidationFailed("source must be predictions or samples", {"field": "source"})
    row = registry.get_version(ctx, name, version)
    reference = reference_of(ctx, row)
    frame = recent_inputs(ctx, name, window, source)  # type: ignore[arg-type]
    report = drift_report(reference, frame)
    report.update(
        model_name=name,
        version=version,
        window={"source": source, "requested": window, "rows": len(frame)},
        reference_rows=reference["n_rows"],
    )
    return report
