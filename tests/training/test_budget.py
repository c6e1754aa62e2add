"""Time budgets of the evaluation extras: the permutation importance samples rows and
repeats to fit a twentieth of the fitting time, and the evaluation records what it used."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlserve.training.budget import (
    EXTRAS_FLOOR_S,
    IMPORTANCE_REPEATS,
    MIN_IMPORTANCE_REPEATS,
    MIN_IMPORTANCE_ROWS,
    extras_budget_s,
    plan_importance,
)
from mlserve.training.evaluation import MAX_POINTS, budgeted_importances
from tests.conftest import CALIFORNIA_TARGET


@pytest.mark.parametrize(
    ("fit_s", "budget_s"),
    [
        (0.0, 0.0),  # never longer than the fit
        (0.02, 0.02),
        (0.3, EXTRAS_FLOOR_S),
        (EXTRAS_FLOOR_S * 20, EXTRAS_FLOOR_S),
        (1.5, EXTRAS_FLOOR_S),
        (3.0, 0.15),
        (10.0, 0.5),
        (600, 30),
    ],
)
def test_extras_budget_is_a_twentieth_of_the_fitting_with_a_floor_never_above_the_fit(
    fit_s: float, budget_s: float
) -> None:
    assert extras_budget_s(fit_s) == pytest.approx(budget_s, rel=1e-12)


@pytest.mark.parametrize(
    ("n_rows", "n_features", "call_s", "budget_s", "planned"),
    [
        (2000, 8, 0.001, 10.0, (2000, IMPORTANCE_REPEATS)),  # 41 calls, 41 ms: all of it
        (2000, 8, 0.125, 3.125, (2000, 3)),  # 25 calls affordable: 3 repeats
        (2000, 8, 0.125, 2.125, (2000, MIN_IMPORTANCE_REPEATS)),  # exactly 17 calls
        (2000, 8, 0.125, 1.0625, (1000, MIN_IMPORTANCE_REPEATS)),  # half the rows
        (2000, 8, 1.0, 0.01, (MIN_IMPORTANCE_ROWS, MIN_IMPORTANCE_REPEATS)),  # the floor
        (40, 8, 1.0, 0.01, (40, MIN_IMPORTANCE_REPEATS)),  # fewer rows than the floor
        (2000, 8, 0.0, 0.01, (2000, IMPORTANCE_REPEATS)),  # unmeasurably fast
        (2000, 8, 0.1, math.inf, (2000, IMPORTANCE_REPEATS)),  # no budget
    ],
)
def test_plan_importance_cuts_repeats_then_rows(
    n_rows: int,
    n_features: int,
    call_s: float,
    budget_s: float,
    planned: tuple[int, int],
) -> None:
    assert plan_importance(n_rows, n_features, call_s, budget_s) == planned


@pytest.mark.parametrize(("budget_s", "small"), [(math.inf, False), (1e-4, True)])
def test_small_budget_samples_fewer_rows_and_keeps_every_feature(
    california_frame: pd.DataFrame, budget_s: float, small: bool
) -> None:
    frame = california_frame.select_dtypes("number").dropna()
    X, y = frame.drop(columns=CALIFORNIA_TARGET), frame[CALIFORNIA_TARGET]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipeline = make_pipeline(StandardScaler(), Ridge()).fit(X_train, y_train)
    found = budgeted_importances(pipeline, X_test, y_test, "regression", 0, budget_s=budget_s)
    sample = found["permutation_importance_sample"]
    if small:
        assert (sample["rows"], sample["repeats"]) == (MIN_IMPORTANCE_ROWS, 2)
        assert sample["budget_s"] == budget_s
    else:
        assert (sample["rows"], sample["repeats"]) == (MAX_POINTS, IMPORTANCE_REPEATS)
        assert sample["budget_s"] is None
    features = {row["feature"] for row in found["permutation_importance"]}
    assert features == set(X.columns)
    assert all(math.isfinite(row["mean"]) for row in found["permutation_importance"])
