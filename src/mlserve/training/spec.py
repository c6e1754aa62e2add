"""What to train, checked before any job is queued.

:class:`TrainSpec` is the body of ``POST /api/v1/training-jobs``; :func:`check_spec`
runs at submit time, so every problem it finds is a 422 naming the field before a
job exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlserve.errors import ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.store.documents import ColumnSummary, Task
from mlserve.training.columns import choose_features

if TYPE_CHECKING:
    from mlserve.training import catalogue
else:
    catalogue = lazy_module("mlserve.training.catalogue")

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_CLASSES_INFERRED = 20
MAX_PARAMS_DEPTH = 4  # hidden_layer_sizes is the deepest real value: {"h": [8, 4]}
DEFAULT_TIME_BUDGET_S = 300.0  # algorithm "auto": five minutes to choose
MAX_TIME_BUDGET_S = 86_400.0  # one day


class TrainSpec(BaseModel):
    """What to train: the body of ``POST /api/v1/training-jobs``.

    Attributes
    ----------
    dataset_id, target, model_name : str
    algorithm : str
        A catalogue entry, or ``"auto"``: score the entries of
        :data:`mlserve.training.catalogue.AUTO_CANDIDATES` by cross-validation and train
        the best (:mod:`mlserve.training.auto`).
    time_budget_s : float or None
        ``algorithm: "auto"`` only: seconds the choice may take, in (0, 86400]
        (``None``: 300). The final fit of the winner comes after it.
    task : {"regression", "classification"} or None
        Inferred from the target when ``None`` (see :func:`infer_task`).
    params : dict
        Estimator hyper-parameters; validated against the estimator.
    features : list of str or None
        Feature columns, used as given; ``None`` means every column but the target,
        less the id-like and constant ones (:mod:`mlserve.training.columns`).
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
        (``POST /api/v1/models/{name}/retrain`` sets it; see :mod:`mlserve.online.policy`).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

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
    time_budget_s: float | None = Field(default=None, gt=0.0, le=MAX_TIME_BUDGET_S)

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


def infer_task(column: ColumnSummary) -> Task:
    """Task implied by a target column's summary.

    Text and boolean targets, and integer targets with at most 20 distinct
    values, mean classification; anything else numeric means regression.
    """
    if column["type"] in ("string", "boolean"):
        return "classification"
    if column["type"] == "integer" and column["unique"] <= MAX_CLASSES_INFERRED:
        return "classification"
    return "regression"


def check_spec(spec: TrainSpec, n_rows: int, columns: dict[str, ColumnSummary]) -> Task:
    """Check ``spec`` against a dataset's schema; return the task.

    Parameters
    ----------
    spec : TrainSpec
    n_rows : int
        Rows in the dataset.
    columns : dict
        Column name -> summary (see :func:`mlserve.datasets.stats.column_summary`).

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
    features, _ = choose_features(
        columns, target=spec.target, features=spec.features, n_rows=n_rows
    )
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
        raise ValidationFailed(
            "the dataset has no feature column (id-like and constant columns are left out "
            "unless named in features)",
            {"field": "features"},
        )
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
    check_sizes(spec, n_rows - (target["missing"] if spec.drop_missing_target else 0))
    if spec.algorithm == catalogue.AUTO:
        check_auto(spec, task)
    else:
        catalogue.build_estimator(
            catalogue.get_algorithm(spec.algorithm, task), spec.params, spec.random_state
        )
        if spec.time_budget_s is not None:
            raise ValidationFailed(
                'time_budget_s applies to algorithm "auto" only', {"field": "time_budget_s"}
            )
    return task


def check_auto(spec: TrainSpec, task: Task) -> None:
    """Check an ``algorithm: "auto"`` spec: it ranks by cross-validation and sets the
    hyper-parameters itself.

    Raises
    ------
    ValidationFailed
        ``params`` given, or ``cv_folds`` 0.
    """
    if spec.params:
        raise ValidationFailed(
            'algorithm "auto" chooses the hyper-parameters; params must be empty',
            {"field": "params"},
        )
    if spec.cv_folds < 2:
        raise ValidationFailed(
            'algorithm "auto" ranks candidates by cross-validation; cv_folds must be at least 2',
            {"field": "cv_folds"},
        )
    for name in catalogue.AUTO_CANDIDATES[task]:
        catalogue.build_estimator(catalogue.get_algorithm(name, task), {}, spec.random_state)


def check_sizes(spec: TrainSpec, n_rows: int) -> None:
    n_test = int(np.ceil(n_rows * spec.test_size))
    n_train = n_rows - n_test
    if n_test < 1 or n_train < max(spec.cv_folds, 2):
        raise ValidationFailed(
            f"{n_rows} rows are too few for test_size={spec.test_size} "
            f"and cv_folds={spec.cv_folds}",
            {"field": "test_size", "rows": n_rows},
        )
