"""Unit tests of mlserve.training.split: the split is the one train() uses, and the folds
are stratified when every class allows it."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.model_selection import KFold, StratifiedKFold

from mlserve.training.fit import train
from mlserve.training.split import cv_splitter, split
from tests.training.test_training import make_spec


def test_split_matches_the_rows_train_holds_out() -> None:
    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    spec = make_spec(cv_folds=0, random_state=3)
    data = split(frame, spec, "regression")
    result = train(frame, spec, "regression")
    assert result.test_frame is not None
    assert list(data.X_test.index) == list(result.test_frame.index)
    assert len(data.X_train) + len(data.X_test) == len(frame)


def test_cv_splitter_stratifies_only_when_every_class_has_enough_rows() -> None:
    spec = make_spec(cv_folds=3)
    balanced = pd.Series(["a", "b"] * 6)
    rare = pd.Series(["a"] * 10 + ["b"] * 2)
    assert isinstance(cv_splitter(spec, "classification", balanced), StratifiedKFold)
    assert type(cv_splitter(spec, "classification", rare)) is KFold
    assert type(cv_splitter(spec, "regression", pd.Series(range(12), dtype=float))) is KFold
