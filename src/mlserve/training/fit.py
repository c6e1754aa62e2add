"""Training: fit a spec's pipeline on a dataset, score it, cross-validate it.

:func:`train` runs inside the job and is pure: a DataFrame in, a
:class:`TrainResult` out, no database or files. The spec was checked at submit time
(:mod:`mlserve.training.spec`).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from mlserve.store.documents import CvMetrics, Metrics, MetricSummary, Signature
from mlserve.training import evaluation, explain_record
from mlserve.training.budget import extras_budget_s
from mlserve.training.catalogue import inner_estimator
from mlserve.training.metrics import (
    classification_metrics,
    label_scores,
    regression_metrics,
)
from mlserve.training.pipeline import build_pipeline
from mlserve.training.preprocessing import encoding_report
from mlserve.training.reference import reference_statistics
from mlserve.training.signature import output_signature
from mlserve.training.spec import TrainSpec
from mlserve.training.split import clean, cv_splitter, split

__all__ = ["TrainResult", "add_extras", "clean", "cross_validate", "score", "split", "train"]

Progress = Callable[[float, str], None]
EPOCH_REPORT_INTERVAL_S = 0.5  # at most two progress writes per second from epochs


@dataclass(kw_only=True)
class TrainResult:
    """A fitted pipeline and what was learned about it.

    Attributes
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Preprocessor + estimator, fitted on the training split.
    task : str
    params : dict
        The estimator's full hyper-parameters as fitted (JSON values).
    metrics : dict
        Test-split metrics (see :mod:`mlserve.training.metrics`).
    cv_metrics : dict
        ``{"folds": k, "<metric>": {"mean", "std", "values"}}`` on the training split.
    signature : dict
    training_seconds : float
        Wall-clock time of the final fit, in seconds.
    cv_seconds : float
        Wall-clock time of the cross-validation folds' fits and scoring, in seconds
        (0 where ``algorithm: "auto"`` ran them while choosing).
    n_train, n_test : int
        Rows in each split.
    test_frame : DataFrame of shape (n_test, n_features) or None
        The held-out rows (model input dtypes), for checking a compiled model.
    test_target : Series of shape (n_test,) or None
        Their targets.
    train_frame : DataFrame of shape (n_train, n_features) or None
        The training split (model input dtypes), and ``train_target`` its targets:
        what an incremental model keeps for its online updates
        (:mod:`mlserve.training.memory`).
    evaluation : dict or None
        Plot data on the test split (see :func:`mlserve.training.evaluation.plot_data`).
    encoding : dict or None
        Feature -> how the pipeline encodes it
        (:func:`mlserve.training.preprocessing.encoding_report`).
    reference : dict or None
        Per-feature statistics of the training split, for drift
        (:func:`mlserve.training.reference.reference_statistics`).
    """

    pipeline: Pipeline
    task: str
    params: dict[str, Any]
    metrics: Metrics
    cv_metrics: CvMetrics
    signature: Signature
    training_seconds: float
    n_train: int
    n_test: int
    cv_seconds: float = 0.0
    test_frame: pd.DataFrame | None = None
    test_target: pd.Series | None = None
    train_frame: pd.DataFrame | None = None
    train_target: pd.Series | None = None
    evaluation: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    encoding: dict[str, str] | None = None


def _noop(_fraction: float, _stage: str) -> None:
    return None


def train(
    frame: pd.DataFrame,
    spec: TrainSpec,
    task: str,
    progress: Progress = _noop,
    server_params: Mapping[str, Any] | None = None,
    cv_metrics: CvMetrics | None = None,
    *,
    extras: bool = True,
) -> TrainResult:
    """Fit and evaluate the spec's pipeline on ``frame``.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
    spec : TrainSpec
    task : {"regression", "classification"}
    progress : callable(fraction, stage), optional
        Called as work advances, ``fraction`` in [0, 1]; estimators trained in epochs
        (``torch_mlp``) also report each epoch (``"epoch 7/50"``, at most every 0.5 s).
    server_params : mapping, optional
        Estimator parameters the server sets (``{"device": settings.torch_device}``,
        see :func:`mlserve.training.catalogue.build_estimator`).
    cv_metrics : dict, optional
        The spec's cross-validation, already run on the same training split
        (``algorithm: "auto"`` scored it while choosing, :mod:`mlserve.training.auto`);
        ``None`` runs it here.
    extras : bool
        Compute the evaluation extras (permutation importance, SHAP summary) here.
        A training job passes False and calls :func:`add_extras` once the pipeline is
        compiled, so that the importance scores the compiled graph.

    Raises
    ------
    ValidationFailed
        If cleaning leaves too few rows or a single target value.
    """
    progress(0.05, "cleaning")
    data = split(frame, spec, task)
    X_train, X_test, y_train, y_test = data.X_train, data.X_test, data.y_train, data.y_test
    signature, y = data.signature, data.y
    pipeline = build_pipeline(spec, task, signature, server_params)
    started = time.perf_counter()
    if cv_metrics is None:
        cv_metrics = cross_validate(
            pipeline, X_train, y_train, spec=spec, task=task, progress=progress
        )
    cv_seconds = time.perf_counter() - started
    progress(0.7, "fitting")
    started = time.perf_counter()
    fit_reporting(pipeline, X_train, y_train, EpochReporter(progress, 0.7, 0.85))
    training_seconds = time.perf_counter() - started
    progress(0.85, "evaluating")
    metrics = score(pipeline, X_test, y_test, task)
    plots = evaluation.plot_data(
        pipeline,
        X_test,
        y_test,
        task=task,
        cv_metrics=cv_metrics,
        random_state=spec.random_state,
        importance=False,
    )
    classes = getattr(pipeline, "classes_", None) if task == "classification" else None
    signature["output"] = output_signature(y, task, classes)
    params = _jsonable_params(
        inner_estimator(pipeline.named_steps["estimator"]).get_params(deep=False)
    )
    result = TrainResult(
        pipeline=pipeline,
        task=task,
        params=params,
        metrics=metrics,
        cv_metrics=cv_metrics,
        signature=signature,
        training_seconds=training_seconds,
        cv_seconds=cv_seconds,
        n_train=len(X_train),
        n_test=len(X_test),
        test_frame=X_test,
        test_target=y_test,
        train_frame=X_train,
        train_target=y_train,
        evaluation=plots,
        reference=reference_statistics(X_train, signature, spec.random_state),
        encoding=encoding_report(pipeline.named_steps["preprocess"]),
    )
    if extras:
        add_extras(result, spec, progress)
    return result


def add_extras(
    result: TrainResult,
    spec: TrainSpec,
    progress: Progress = _noop,
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> None:
    """Add the evaluation extras to ``result.evaluation``: permutation importance and the
    SHAP summary, each within :func:`mlserve.training.budget.extras_budget_s` of the
    fitting time (cross-validation and final fit).

    Parameters
    ----------
    result : TrainResult
        From :func:`train` with ``extras=False``; changed in place.
    spec : TrainSpec
        Its spec (the seed).
    progress : callable(fraction, stage), optional
    predict : callable, optional
        Predictions of shape (n_rows,) of a DataFrame of shape (n_rows, n_features) in
        model input dtypes, equal to the pipeline's (a training job passes the compiled
        graph's, which scores a permutation in a fraction of a millisecond where the
        pipeline takes several); the pipeline's own ``predict`` by default.
    """
    assert result.test_frame is not None and result.test_target is not None
    assert result.train_frame is not None and result.evaluation is not None
    budget_s = extras_budget_s(result.training_seconds + result.cv_seconds)
    progress(0.9, "explaining")
    result.evaluation.update(
        evaluation.budgeted_importances(
            result.pipeline,
            result.test_frame,
            result.test_target,
            result.task,
            spec.random_state,
            budget_s=budget_s,
            predict=predict,
        )
    )
    result.evaluation.update(
        explain_record.training_record(
            result.pipeline,
            result.train_frame,
            result.test_frame,
            classes=result.signature["output"].get("classes"),
            random_state=spec.random_state,
            budget_s=budget_s,
        )
    )


class EpochReporter:
    """Maps an estimator's per-epoch ``progress(fraction, "epoch 7/50")`` into a job's range.

    Parameters
    ----------
    progress : callable(fraction, stage)
        The job's progress.
    start, end : float
        The job's fraction when the fit starts and when it ends.
    prefix : str
        Put before the estimator's stage (``"cross-validation 2/5, "``).
    """

    def __init__(self, progress: Progress, start: float, end: float, prefix: str = "") -> None:
        self.progress, self.start, self.end, self.prefix = progress, start, end, prefix
        self._last = -math.inf

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < EPOCH_REPORT_INTERVAL_S:
            return
        self._last = now
        self.progress(self.start + (self.end - self.start) * fraction, self.prefix + stage)


def fit_reporting(pipeline: Pipeline, X: Any, y: Any, reporter: EpochReporter) -> Pipeline:
    """``pipeline.fit(X, y)``, handing ``reporter`` to an estimator whose ``fit`` takes
    ``progress`` (through a target wrapper too: ``estimator__progress``)."""
    inner = inner_estimator(pipeline.named_steps["estimator"])
    if "progress" in inspect.signature(type(inner).fit).parameters:
        return pipeline.fit(X, y, estimator__progress=reporter)
    return pipeline.fit(X, y)


def score(pipeline: Pipeline, X: pd.DataFrame, y: Any, task: str) -> Metrics:
    """Test metrics of a fitted ``pipeline`` (:mod:`mlserve.training.metrics`).

    Parameters
    ----------
    pipeline : Pipeline
        Fitted.
    X : DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True targets.
    task : {"regression", "classification"}
    """
    y_true = np.asarray(y)
    y_pred = pipeline.predict(X)
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    proba = pipeline.predict_proba(X) if hasattr(pipeline, "predict_proba") else None
    return classification_metrics(y_true, y_pred, proba, pipeline.classes_)


def cross_validate(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    spec: TrainSpec,
    task: str,
    progress: Progress = _noop,
) -> CvMetrics:
    """K-fold CV (stratified for classification) of an unfitted pipeline.

    Returns
    -------
    dict
        ``folds`` and, per metric, ``mean``, ``std`` (population) and ``values``.
    """
    if spec.cv_folds < 2:
        return {"folds": 0}
    splitter = cv_splitter(spec, task, y)
    keys = ("rmse", "mae", "r2") if task == "regression" else ("accuracy", "f1_macro")
    scores: dict[str, list[float]] = {k: [] for k in keys}
    for fold, (fit_idx, val_idx) in enumerate(splitter.split(X, y), start=1):
        start, width = 0.1 + 0.6 * (fold - 1) / spec.cv_folds, 0.6 / spec.cv_folds
        stage = f"cross-validation {fold}/{spec.cv_folds}"
        progress(start, stage)
        reporter = EpochReporter(progress, start, start + width, f"{stage}, ")
        model = fit_reporting(clone(pipeline), X.iloc[fit_idx], y.iloc[fit_idx], reporter)
        fold_metrics = _fold_scores(model, X.iloc[val_idx], y.iloc[val_idx], task)
        for key in keys:
            value = fold_metrics[key]
            scores[key].append(np.nan if value is None else float(value))
    summaries: dict[str, MetricSummary] = {
        key: {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
        for key, values in scores.items()
    }
    summary: CvMetrics = {"folds": spec.cv_folds}
    summary.update(summaries)  # type: ignore[typeddict-item]  # keys: those of the task
    return summary


def _fold_scores(
    pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str
) -> dict[str, float | None]:
    """The metrics cross-validation keeps of one fold (:func:`score`'s values of them)."""
    y_true, y_pred = np.asarray(y), pipeline.predict(X)
    if task == "regression":
        return dict(regression_metrics(y_true, y_pred))  # type: ignore[arg-type]
    return label_scores(y_true, y_pred)


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        if value is None or isinstance(value, bool | int | float | str | list):
            out[key] = value
        else:
            out[key] = repr(value)
    return out
