"""Training: validate a spec against a dataset, fit a pipeline, evaluate it.

:func:`check_spec` runs at submit time (every problem it finds is a 422 before a
job is queued); :func:`train` runs inside the job and is pure: a DataFrame in, a
:class:`TrainResult` out, no database or files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from mlserve import evaluation
from mlserve.catalogue import build_estimator, get_algorithm, inner_estimator
from mlserve.drift import reference_statistics
from mlserve.errors import ValidationFailed
from mlserve.metrics import classification_metrics, regression_metrics
from mlserve.preprocessing import build_preprocessor
from mlserve.signature import infer_signature, model_frame, output_signature

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_CLASSES_INFERRED = 20
MAX_PARAMS_DEPTH = 4  # hidden_layer_sizes is the deepest real value: {"h": [8, 4]}
Progress = Callable[[float, str], None]


class TrainSpec(BaseModel):
    """What to train: the body of ``POST /api/v1/training-jobs``.

    Attributes
    ----------
    dataset_id, target, algorithm, model_name : str
    task : {"regression", "classification"} or None
        Inferred from the target when ``None`` (see :func:`infer_task`).
    params : dict
        Estimator hyper-parameters; validated against the estimator.
    features : list of str or None
        Feature columns; ``None`` means every column but the target.
    test_size : float
        Fraction of rows held out for test metrics, in (0, 1).
    cv_folds : int
        K of K-fold cross-validation on the training split; 0 disables it.
    random_state : int
        Seed of the split, the folds and the estimator.
    drop_duplicates, drop_missing_target : bool
        Cleaning applied before the split.
    include_samples : bool
        Train on the dataset plus the samples stored for ``model_name``
        (``POST /api/v1/models/{name}/retrain`` sets it; see :mod:`mlserve.online`).
    """

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1)
    algorithm: str = Field(min_length=1)
    model_name: str = Field(pattern=MODEL_NAME_PATTERN)
    task: Literal["regression", "classification"] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    features: list[str] | None = Field(default=None, min_length=1)
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    cv_folds: int = Field(default=5, ge=0, le=20)
    random_state: int = Field(default=0, ge=0, le=2**32 - 1)
    drop_duplicates: bool = False
    drop_missing_target: bool = True
    include_samples: bool = False

    @field_validator("params")
    @classmethod
    def _shallow(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > MAX_PARAMS_DEPTH:
            raise ValueError(f"params may be nested at most {MAX_PARAMS_DEPTH} levels deep")
        return value

    @field_validator("cv_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("cv_folds must be 0 (no cross-validation) or at least 2")
        return value


def _depth(value: Any, limit: int = 64) -> int:
    """Nesting depth of JSON ``value`` (counting stops past ``limit``)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def infer_task(column: dict[str, Any]) -> str:
    """Task implied by a target column's summary.

    Text and boolean targets, and integer targets with at most 20 distinct
    values, mean classification; anything else numeric means regression.
    """
    if column["type"] in ("string", "boolean"):
        return "classification"
    if column["type"] == "integer" and column["unique"] <= MAX_CLASSES_INFERRED:
        return "classification"
    return "regression"


def check_spec(spec: TrainSpec, n_rows: int, columns: dict[str, dict[str, Any]]) -> str:
    """Check ``spec`` against a dataset's schema; return the task.

    Parameters
    ----------
    spec : TrainSpec
    n_rows : int
        Rows in the dataset.
    columns : dict
        Column name -> summary (see :func:`mlserve.stats.column_summary`).

    Raises
    ------
    ValidationFailed
        Unknown target or feature, constant target, target among the
        features, missing targets not dropped, a task the target cannot have,
        too few rows for the split, unknown algorithm or bad hyper-parameter.
    """
    target = columns.get(spec.target)
    if target is None:
        raise ValidationFailed(
            f"target column {spec.target!r} is not in the dataset",
            {"field": "target", "columns": sorted(columns)},
        )
    features = spec.features or [c for c in columns if c != spec.target]
    for name in features:
        if name not in columns:
            raise ValidationFailed(
                f"feature {name!r} is not in the dataset", {"field": "features", "value": name}
            )
    if spec.target in features:
        raise ValidationFailed("the target cannot also be a feature", {"field": "features"})
    if len(set(features)) != len(features):
        raise ValidationFailed("features are listed twice", {"field": "features"})
    if not features:
        raise ValidationFailed("the dataset has no feature column", {"field": "features"})
    if target["unique"] <= 1:
        raise ValidationFailed(f"target column {spec.target!r} is constant", {"field": "target"})
    if target["missing"] and not spec.drop_missing_target:
        raise ValidationFailed(
            f"target column has {target['missing']} missing values; set drop_missing_target",
            {"field": "drop_missing_target"},
        )
    task = spec.task or infer_task(target)
    if task == "regression" and target["type"] not in ("integer", "number"):
        raise ValidationFailed("regression needs a numeric target", {"field": "task"})
    _check_sizes(spec, n_rows - (target["missing"] if spec.drop_missing_target else 0))
    build_estimator(get_algorithm(spec.algorithm, task), spec.params, spec.random_state)
    return task


def _check_sizes(spec: TrainSpec, n_rows: int) -> None:
    n_test = int(np.ceil(n_rows * spec.test_size))
    n_train = n_rows - n_test
    if n_test < 1 or n_train < max(spec.cv_folds, 2):
        raise ValidationFailed(
            f"{n_rows} rows are too few for test_size={spec.test_size} "
            f"and cv_folds={spec.cv_folds}",
            {"field": "test_size", "rows": n_rows},
        )


@dataclass
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
        Test-split metrics (see :mod:`mlserve.metrics`).
    cv_metrics : dict
        ``{"folds": k, "<metric>": {"mean", "std", "values"}}`` on the training split.
    signature : dict
    training_seconds : float
        Wall-clock time of the final fit, in seconds.
    n_train, n_test : int
        Rows in each split.
    test_frame : DataFrame of shape (n_test, n_features) or None
        The held-out rows (model input dtypes), for checking a compiled model.
    evaluation : dict or None
        Plot data on the test split (see :func:`mlserve.evaluation.evaluate`).
    reference : dict or None
        Per-feature statistics of the training split, for drift
        (:func:`mlserve.drift.reference_statistics`).
    """

    pipeline: Pipeline
    task: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    cv_metrics: dict[str, Any]
    signature: dict[str, Any]
    training_seconds: float
    n_train: int
    n_test: int
    test_frame: pd.DataFrame | None = None
    evaluation: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None


def clean(frame: pd.DataFrame, spec: TrainSpec) -> pd.DataFrame:
    """Apply the spec's cleaning options: duplicate rows, rows with no target."""
    if spec.drop_duplicates:
        frame = frame.drop_duplicates()
    if spec.drop_missing_target:
        frame = frame[frame[spec.target].notna()]
    return frame.reset_index(drop=True)


def _noop(_fraction: float, _stage: str) -> None:
    return None


def train(
    frame: pd.DataFrame, spec: TrainSpec, task: str, progress: Progress = _noop
) -> TrainResult:
    """Fit and evaluate the spec's pipeline on ``frame``.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
    spec : TrainSpec
    task : {"regression", "classification"}
    progress : callable(fraction, stage), optional
        Called as work advances, ``fraction`` in [0, 1].

    Raises
    ------
    ValidationFailed
        If cleaning leaves too few rows or a single target value.
    """
    progress(0.05, "cleaning")
    frame = clean(frame, spec)
    features = spec.features or [c for c in frame.columns if c != spec.target]
    y = frame[spec.target]
    if y.nunique() <= 1:
        raise ValidationFailed("target is constant after cleaning", {"field": "target"})
    _check_sizes(spec, len(frame))
    y = y.astype("float64") if task == "regression" else y
    signature = infer_signature(frame[features], y, task, classes=None)
    X = model_frame(frame[features], signature)
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=spec.test_size, random_state=spec.random_state, stratify=stratify
    )
    pipeline = _pipeline(spec, task, signature)
    cv_metrics = cross_validate(pipeline, X_train, y_train, spec, task, progress)
    progress(0.7, "fitting")
    started = time.perf_counter()
    pipeline.fit(X_train, y_train)
    training_seconds = time.perf_counter() - started
    progress(0.85, "evaluating")
    metrics = evaluate(pipeline, X_test, y_test, task)
    plots = evaluation.evaluate(
        pipeline,
        X_test,
        y_test,
        task,
        cv_metrics,
        spec.random_state,
        before_importance=lambda: progress(0.87, "explaining"),
    )
    classes = getattr(pipeline, "classes_", None) if task == "classification" else None
    signature["output"] = output_signature(y, task, classes)
    params = _jsonable_params(
        inner_estimator(pipeline.named_steps["estimator"]).get_params(deep=False)
    )
    return TrainResult(
        pipeline,
        task,
        params,
        metrics,
        cv_metrics,
        signature,
        training_seconds,
        len(X_train),
        len(X_test),
        X_test,
        plots,
        reference_statistics(X_train, signature, spec.random_state),
    )


def _pipeline(spec: TrainSpec, task: str, signature: dict[str, Any]) -> Pipeline:
    inputs = signature["inputs"]
    numeric = [f["name"] for f in inputs if f["type"] != "string"]
    categorical = [f["name"] for f in inputs if f["type"] == "string"]
    estimator = build_estimator(get_algorithm(spec.algorithm, task), spec.params, spec.random_state)
    return Pipeline(
        [("preprocess", build_preprocessor(numeric, categorical)), ("estimator", estimator)]
    )


def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, Any]:
    """Metrics of a fitted ``pipeline`` on ``X`` (n_samples, n_features), ``y`` (n_samples,)."""
    y_pred = pipeline.predict(X)
    if task == "regression":
        return regression_metrics(y.to_numpy(), y_pred)
    proba = pipeline.predict_proba(X) if hasattr(pipeline, "predict_proba") else None
    return classification_metrics(y.to_numpy(), y_pred, proba, pipeline.classes_)


def cross_validate(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    spec: TrainSpec,
    task: str,
    progress: Progress,
) -> dict[str, Any]:
    """K-fold CV (stratified for classification) of an unfitted pipeline.

    Returns
    -------
    dict
        ``folds`` and, per metric, ``mean``, ``std`` (population) and ``values``.
    """
    if spec.cv_folds < 2:
        return {"folds": 0}
    if task == "classification" and y.value_counts().min() >= spec.cv_folds:
        splitter: Any = StratifiedKFold(spec.cv_folds, shuffle=True, random_state=spec.random_state)
    else:
        splitter = KFold(spec.cv_folds, shuffle=True, random_state=spec.random_state)
    keys = ("rmse", "mae", "r2") if task == "regression" else ("accuracy", "f1_macro")
    scores: dict[str, list[float]] = {k: [] for k in keys}
    for fold, (fit_idx, val_idx) in enumerate(splitter.split(X, y), start=1):
        progress(0.1 + 0.6 * (fold - 1) / spec.cv_folds, f"cross-validation {fold}/{spec.cv_folds}")
        model = clone(pipeline).fit(X.iloc[fit_idx], y.iloc[fit_idx])
        fold_metrics = evaluate(model, X.iloc[val_idx], y.iloc[val_idx], task)
        for key in keys:
            scores[key].append(float(fold_metrics[key]))
    summary: dict[str, Any] = {"folds": spec.cv_folds}
    for key, values in scores.items():
        summary[key] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "values": values,
        }
    return summary


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
