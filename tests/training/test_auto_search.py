"""Unit tests of mlserve.training.auto_search: the successive-halving search returns
plain JSON values from the space, on the training rows only."""

from __future__ import annotations

import json

import pandas as pd
from sklearn.datasets import load_iris

from mlserve.training.auto_search import SEARCH_SPACES, search
from mlserve.training.split import split
from tests.training.test_training import make_spec


def test_search_returns_plain_values_of_the_space() -> None:
    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]
    spec = make_spec(algorithm="auto", cv_folds=3)
    data = split(frame, spec, "classification")
    space = SEARCH_SPACES["gradient_boosting"]
    params = search(data, spec, "classification", algorithm="gradient_boosting", space=space)
    assert set(params) == set(space)
    for name, value in params.items():
        assert value in space[name] and type(value) is type(space[name][0]), (name, value)
    json.dumps(params)  # stored as is in the leaderboard and the spec
