"""The guard of online updates (mlserve.online.guard): three sets, a relative tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline

from mlserve.online.guard import OLDER, TEST, WINDOW, Guard, judge_set, no_worse, reason
from mlserve.store.documents import GuardSet

WINDOW_RANGE = {"first_sample_id": 1, "last_sample_id": 50, "n_samples": 50}


@pytest.mark.parametrize(
    ("metric", "candidate", "production", "tolerance", "passed"),
    [
        ("rmse", 100.0, 100.0, 0.0, True),
        ("rmse", 101.9, 100.0, 0.02, True),
        ("rmse", 102.1, 100.0, 0.02, False),
        ("rmse", 100.1, 100.0, 0.0, False),
        ("accuracy", 0.90, 0.90, 0.0, True),
        ("accuracy", 0.883, 0.90, 0.02, True),  # 0.90 - 0.018
        ("accuracy", 0.881, 0.90, 0.02, False),
        ("accuracy", 0.95, 0.90, 0.0, True),
    ],
)
def test_no_worse_allows_the_tolerance_as_a_fraction_of_production(
    metric: str, candidate: float, production: float, tolerance: float, passed: bool
) -> None:
    assert no_worse(metric, candidate, production, tolerance) is passed


def entry(name: str, candidate: float | None, production: float | None, n: int = 200) -> GuardSet:
    judged = candidate is not None and production is not None
    return {
        "name": name,
        "n_samples": n,
        "candidate": candidate,
        "production": production,
        "judged": judged,
        "passed": not judged or no_worse("rmse", candidate or 0.0, production or 0.0, 0.02),
    }


@pytest.mark.parametrize(
    ("sets", "passed", "named"),
    [
        ([entry(WINDOW, 90, 100), entry(OLDER, 99, 100), entry(TEST, 101, 100)], True, []),
        ([entry(WINDOW, 90, 100), entry(OLDER, 99, 100), entry(TEST, 103, 100)], False, [TEST]),
        ([entry(WINDOW, 110, 100), entry(OLDER, 120, 100), entry(TEST, 99, 100)], False,
         [WINDOW, OLDER]),
        ([entry(WINDOW, 90, 100), entry(OLDER, None, None, 40), entry(TEST, 99, 100)], True, []),
    ],
)  # fmt: skip
def test_the_candidate_passes_only_if_no_judged_set_fails_and_the_reason_names_them(
    sets: list[GuardSet], passed: bool, named: list[str]
) -> None:
    guard = Guard(
        metric="rmse", production_version=3, tolerance=0.02, window=WINDOW_RANGE, sets=sets
    )
    assert guard.passed is passed
    view = guard.view()
    assert view["passed"] is passed and view["sets"] == sets
    assert (view["candidate"], view["production"]) == (sets[0]["candidate"], 100)
    text = reason(view)
    if passed:
        assert text.startswith("no worse than production (version 3) within tolerance 0.02")
    else:
        failing = text.split(":")[0]
        assert failing.startswith("worse than production (version 3) beyond tolerance 0.02")
        assert [name for name in (WINDOW, OLDER, TEST) if name in failing] == named
    if not sets[1]["judged"]:
        assert "(older samples: too few rows to judge)" in text


def test_a_decision_recorded_before_the_sets_reads_as_the_window_alone() -> None:
    old = {
        "metric": "rmse",
        "candidate": 59.0,
        "production": 58.0,
        "production_version": 1,
        "tolerance": 0.0,
        "window": WINDOW_RANGE,
        "passed": False,
    }
    assert reason(old) == (  # type: ignore[arg-type]
        "worse than production (version 1) beyond tolerance 0 on the guard window: "
        "rmse 59 against 58 on 50 rows of the guard window"
    )


def constant(value: float) -> Pipeline:
    X = pd.DataFrame({"x": [0.0, 1.0]})
    return Pipeline([("estimator", DummyRegressor(strategy="constant", constant=value))]).fit(
        X, [0.0, 0.0]
    )


def test_a_set_is_scored_with_the_three_pipelines_and_judged_from_min_rows() -> None:
    X, y = pd.DataFrame({"x": np.arange(4.0)}), np.array([1.0, 1.0, 1.0, 1.0])
    kwargs = {"pipelines": (constant(2.0), constant(1.5), constant(0.5)), "task": "regression"}
    judged = judge_set(TEST, (X, y), tolerance=0.02, min_rows=4, **kwargs)  # type: ignore[arg-type]
    assert judged == {
        "name": TEST,
        "n_samples": 4,
        "candidate": 1.0,
        "production": 0.5,
        "judged": True,
        "passed": False,
        "root": 0.5,
    }
    small = judge_set(TEST, (X, y), tolerance=0.02, min_rows=5, **kwargs)  # type: ignore[arg-type]
    assert (small["judged"], small["passed"], small["candidate"]) == (False, True, None)
    absent = judge_set(OLDER, None, tolerance=0.02, min_rows=1, **kwargs)  # type: ignore[arg-type]
    assert (absent["judged"], absent["n_samples"]) == (False, 0)
