"""The online update job: apply waiting samples with ``partial_fit``, exactly once, guarded.

One update of model ``name``:

1. read the head version and the cursor (:func:`mlserve.online.head`) and the
   waiting samples after the cursor in id order; the newest
   ``online_guard_window_samples`` are held out (the guard window), the others
   (at most ``online_max_samples_per_update``) are applied;
2. load the head's pipeline (sha256-checked), transform the samples with its
   fitted preprocessing (never refitted) and ``partial_fit`` the estimator alone;
   a standardised regression target (``TransformedTargetRegressor``) is scaled
   with the scaler fitted at the first fit, which stays fixed too;
3. score the new pipeline and the ``production`` one on the guard window, and
   compute the new version's plot data there (:func:`mlserve.evaluation.evaluate`
   with ``rows="guard window"``);
4. write the new artifact (atomic temp file + rename, sha256), then in ONE
   transaction register the new version with its lineage (parent version and
   applied sample id range), move the cursor (compare-and-set on the state read
   in 1) and, if the guard passed, move ``production``.

A crash before step 4 commits leaves at most an orphan artifact and no cursor
move: the retry reads the same cursor and the same parent, applies the same
samples again onto the same parent, and commits once. A second worker racing on
the same update loses the compare-and-set and deletes its artifacts.
"""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from mlserve import evaluation, registry
from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.guard import Guard, reason
from mlserve.metrics import PRIMARY_METRIC, classification_metrics, regression_metrics
from mlserve.models import ModelAlias, ModelVersion, OnlineState, RegisteredModel, utcnow
from mlserve.online import head, is_incremental
from mlserve.preprocessing import unseen_categories
from mlserve.samples import read_samples, samples_frame, samples_target
from mlserve.serving.compile import plan_serving
from mlserve.serving.loader import load_pipeline
from mlserve.storage import StoredArtifact
from mlserve.training import TrainResult

log = logging.getLogger(__name__)


class LostRace(Conflict):
    """Another update committed first from the same state; this one is dropped."""


def partial_fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray) -> dict[str, int]:
    """Update the estimator of a fitted pipeline in place; return unseen categories.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted ``preprocess`` + ``estimator``; the preprocessing is only applied.
    X : DataFrame of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Returns
    -------
    dict
        Text feature -> number of values not seen at the first fit (they encode
        as all zeros: ``OneHotEncoder(handle_unknown="ignore")``).
    """
    unseen = unseen_categories(pipeline, X)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        Xt = pipeline[:-1].transform(X)
    estimator = pipeline.steps[-1][1]
    if isinstance(estimator, TransformedTargetRegressor):
        y = estimator.transformer_.transform(y.reshape(-1, 1)).ravel()
        estimator = estimator.regressor_
    # MLP's early stopping needs a validation split that partial_fit does not make:
    # it applied to the first fit only, and is restored so the parameters stay as trained.
    stopping = getattr(estimator, "early_stopping", False)
    if stopping:
        estimator.early_stopping = False
        if estimator.best_loss_ is None:  # tracked on validation scores instead when stopping
            estimator.best_loss_ = float(np.min(estimator.loss_curve_))
    try:
        estimator.partial_fit(Xt, y)
    finally:
        if stopping:
            estimator.early_stopping = stopping
    return unseen


def _score(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        predicted = pipeline.predict(X)
    if task == "regression":
        return regression_metrics(y, predicted)
    proba = pipeline.predict_proba(X) if hasattr(pipeline, "predict_proba") else None
    return classification_metrics(y, predicted, proba, pipeline.classes_)


def _load(ctx: Context, row: ModelVersion) -> Pipeline:
    return load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))


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
    window = ctx.settings.online_guard_window_samples
    rows = read_samples(ctx, name, cursor, ctx.settings.online_max_samples_per_update + window)
    if len(rows) <= window:
        return None
    applied, held = rows[:-window], rows[-window:]
    started = time.perf_counter()
    pipeline = _load(ctx, parent)
    unseen = partial_fit(
        pipeline,
        samples_frame(applied, parent.signature),
        samples_target(applied, parent.task),
    )
    seconds = time.perf_counter() - started
    X_held = samples_frame(held, parent.signature)
    y_held = samples_target(held, parent.task)
    metrics = _score(pipeline, X_held, y_held, parent.task)
    production = registry.resolve(ctx, name)
    baseline = pipeline_of(ctx, production, parent)
    metric = PRIMARY_METRIC[parent.task]
    guard = Guard(
        metric,
        float(metrics[metric]),
        float(_score(baseline, X_held, y_held, parent.task)[metric]),
        production.version,
        ctx.settings.online_guard_tolerance,
        {"first_sample_id": held[0].id, "last_sample_id": held[-1].id, "n_samples": len(held)},
    )
    lineage = {
        "parent_version": parent.version,
        "root_version": (parent.online or {}).get("root_version", parent.version),
        "first_sample_id": applied[0].id,
        "last_sample_id": applied[-1].id,
        "n_samples": len(applied),
        "unseen_categories": unseen,
        "guard": guard.view(),
    }
    seed = parent.params.get("random_state")
    with warnings.catch_warnings():  # unseen categories encode as all zeros
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        plots = evaluation.evaluate(
            pipeline,
            X_held,
            pd.Series(y_held),
            parent.task,
            {"folds": 0},
            seed if isinstance(seed, int) else 0,
            rows=evaluation.GUARD_WINDOW,
        )
    result = TrainResult(
        pipeline,
        parent.task,
        parent.params,
        metrics,
        {"folds": 0},
        parent.signature,
        seconds,
        len(applied),
        len(held),
        evaluation=plots,
    )
    plan = plan_serving(pipeline, parent.signature, X_held, ctx.settings)
    key = f"models/online-{uuid.uuid4().hex}"
    written = [registry.save_artifact(ctx, pipeline, f"{key}.skops")]
    if plan.onnx is not None:
        written.append(ctx.store.put_bytes(f"{key}.onnx", plan.onnx))
    try:
        return commit_update(
            ctx, name, (version, cursor, stored), parent, result, written, plan.serving, lineage
        )
    except Exception:
        for artifact in written:
            ctx.store.delete(artifact.key)
        raise


def pipeline_of(ctx: Context, row: ModelVersion, parent: ModelVersion) -> Pipeline:
    """The pipeline of ``row`` (loaded again from the parent's artifact if it is the parent)."""
    return _load(ctx, row if row.version != parent.version else parent)


def commit_update(
    ctx: Context,
    name: str,
    expected: tuple[int, int, bool],
    parent: ModelVersion,
    result: TrainResult,
    artifacts: list[StoredArtifact],
    serving: dict[str, Any],
    lineage: dict[str, Any],
) -> ModelVersion:
    """Register the new version, move the cursor and maybe ``production``: one transaction.

    Raises
    ------
    LostRace
        The state is no longer ``expected`` (another update committed first).
    """
    version_number, cursor, stored = expected
    guard_passed = bool(lineage["guard"]["passed"])
    with ctx.db.session() as session:
        session.get(RegisteredModel, name, with_for_update=True)  # one update at a time
        state = session.get(OnlineState, name, with_for_update=True)
        if (state is not None) != stored or (
            state is not None and (state.version, state.cursor) != (version_number, cursor)
        ):
            raise LostRace("another online update committed first", {"model": name})
        version = registry.add_version(
            session,
            name,
            result,
            parent.algorithm,
            artifacts[0],
            parent.dataset_id,
            None,
            serving=serving,
            onnx_artifact=artifacts[1] if len(artifacts) > 1 else None,
        )
        lineage["status"] = "production" if guard_passed else "candidate"
        lineage["reason"] = reason(lineage["guard"])
        version.online = lineage
        if state is None:
            state = OnlineState(model_name=name, version=version.version, cursor=0)
            session.add(state)
        state.version, state.cursor = version.version, int(lineage["last_sample_id"])
        state.updated_at, state.last_error = utcnow(), None
        kept = int(lineage["guard"]["production_version"])
        _point_production(session, name, version.version if guard_passed else kept)
        session.flush()
    ctx.resolver.invalidate()
    log.info("online update of %s: version %s (%s)", name, version.version, lineage["reason"])
    return version


def _point_production(session: Any, name: str, version: int) -> None:
    """Move ``production`` to ``version``; create it if unset (so "latest" never serves
    an unguarded candidate)."""
    alias = session.get(ModelAlias, (name, registry.DEFAULT_ALIAS), with_for_update=True)
    if alias is None:
        session.add(ModelAlias(model_name=name, alias=registry.DEFAULT_ALIAS, version=version))
    elif alias.version != version:
        alias.version, alias.updated_at = version, utcnow()
    else:
        return
    registry.bump_generation(session)


def run_update_job(ctx: Context, name: str) -> None:
    """The queued task: :func:`run_update`, errors recorded on the state, never raised."""
    try:
        run_update(ctx, name)
    except LostRace:
        log.info("online update of %s: another worker committed first", name)
    except Exception as exc:
        log.warning("online update of %s failed: %s", name, exc)
        _record_error(ctx, name, f"{type(exc).__name__}: {exc}"[:2000])


def _record_error(ctx: Context, name: str, error: str) -> None:
    """Show the error in the model's online state (creating the state at its current head)."""
    try:
        version, cursor, _stored = head(ctx, name)
        with ctx.db.session() as session:
            state = session.get(OnlineState, name, with_for_update=True)
            if state is None:
                state = OnlineState(model_name=name, version=version, cursor=cursor)
                session.add(state)
            state.last_error, state.updated_at = error, utcnow()
    except Exception:  # the log line above is the record then
        log.exception("could not record the online update error of %s", name)
