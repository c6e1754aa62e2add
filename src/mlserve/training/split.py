"""Cleaning and splitting a dataset for training, and the cross-validation folds.

:func:`mlserve.training.fit.train` and the choice of ``algorithm: "auto"``
(:mod:`mlserve.training.auto`) split the same way, so a candidate scored while choosing
and the model finally fitted see the same training rows; the test rows are never used
to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from mlserve.errors import ValidationFailed
from mlserve.store.documents import Signature
from mlserve.training.signature import infer_signature, model_frame
from mlserve.training.spec import TrainSpec, check_sizes


def clean(frame: pd.DataFrame, spec: TrainSpec) -> pd.DataFrame:
    """Apply the spec's cleaning options: duplicate rows, rows with no target."""
    if spec.drop_duplicates:
        frame = frame.drop_duplicates()
    if spec.drop_missing_target:
        frame = frame[frame[spec.target].notna()]
    return frame.reset_index(drop=True)


@dataclass(kw_only=True)
class Split:
    """A cleaned frame as model inputs, split into training and test rows.

    ``signature`` has the inputs only (the output is set once a model is fitted); ``y``
    is every cleaned target (float64 for regression).
    """

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    signature: Signature
    y: pd.Series


def split(frame: pd.DataFrame, spec: TrainSpec, task: str) -> Split:
    """Clean ``frame`` and split it as :func:`train` does (the same rows for the same spec).

    Raises
    ------
    ValidationFailed
        If cleaning leaves too few rows or a single target value.
    """
    frame = clean(frame, spec)
    features = spec.features or [c for c in frame.columns if c != spec.target]
    y = frame[spec.target]
    if y.nunique() <= 1:
        raise ValidationFailed("target is constant after cleaning", {"field": "target"})
    check_sizes(spec, len(frame))
    y = y.astype("float64") if task == "regression" else y
    signature = infer_signature(frame[features], y, task, classes=None)
    X = model_frame(frame[features], signature)
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=spec.test_size, random_state=spec.random_state, stratify=stratify
    )
    return Split(
        X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, signature=signature, y=y
    )


def cv_splitter(spec: TrainSpec, task: str, y: pd.Series) -> KFold | StratifiedKFold:
    """The folds of :func:`cross_validate`: stratified for classification when every
    class has at least ``cv_folds`` rows, shuffled with the spec's seed."""
    if task == "classification" and y.value_counts().min() >= spec.cv_folds:
        return StratifiedKFold(spec.cv_folds, shuffle=True, random_state=spec.random_state)
    return KFold(spec.cv_folds, shuffle=True, random_state=spec.random_state)
