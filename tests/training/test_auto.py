"""Unit tests of mlserve.training.auto: the budget (between candidates and between
folds, on a fake clock), progress naming the candidate, the search, and the test split
kept out of the choice."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from mlserve.training import auto
from mlserve.training.split import split
from tests.training.test_training import ProgressRecorder, make_spec


@pytest.fixture
def diabetes() -> pd.DataFrame:
    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    return frame


def _ticking(step: float = 1.0) -> Any:
    """A clock that advances ``step`` seconds at each reading."""
    ticks = itertools.count(0.0, step)
    return lambda: next(ticks)


def test_budget_stops_a_candidate_between_folds_then_skips_the_rest(
    diabetes: pd.DataFrame,
) -> None:
    # Readings: start 0, ridge's start 1 and end 2 (its folds read no clock), the check
    # before gradient_boosting 3 (0.5 s left), its start 4, its first fold 5: spent.
    spec = make_spec(algorithm="auto", cv_folds=3, time_budget_s=3.5)
    choice = auto.choose(diabetes, spec, "regression", clock=_ticking())
    board = {e["algorithm"]: e for e in choice.leaderboard}
    assert choice.algorithm == "ridge" and choice.params == {}
    assert board["gradient_boosting"]["skipped"] == "time budget spent during its cross-validation"
    assert board["random_forest"]["skipped"] == "time budget spent before it started"
    assert [e["rank"] for e in choice.leaderboard] == [1, 2, 3, 4]
    assert choice.leaderboard[-1]["tuned"] is True  # the search of ridge, not run
    assert choice.leaderboard[-1]["skipped"].startswith("time budget: the search needs")


def test_progress_names_each_candidate_within_the_selection_range(
    diabetes: pd.DataFrame,
) -> None:
    progress = ProgressRecorder()
    auto.choose(diabetes, make_spec(algorithm="auto", cv_folds=2), "regression", progress)
    stages = [stage for _f, stage in progress.calls]
    assert "auto 1/3 ridge: cross-validation 1/2" in stages
    assert "auto 3/3 random_forest: cross-validation 2/2" in stages
    fractions = [f for f, _s in progress.calls]
    assert fractions == sorted(fractions)
    assert fractions[0] >= 0.05 and fractions[-1] <= auto.SELECTION_END


def test_choice_cv_is_rank_one_and_search_entry_is_scored_alike(
    diabetes: pd.DataFrame,
) -> None:
    choice = auto.choose(diabetes, make_spec(algorithm="auto", cv_folds=3), "regression")
    best = choice.leaderboard[0]
    assert (choice.algorithm, choice.params) == (best["algorithm"], best["params"])
    assert choice.cv_metrics["rmse"]["mean"] == pytest.approx(best["cv_mean"])
    tuned = [e for e in choice.leaderboard if e.get("tuned")]
    assert len(tuned) == 1 and "skipped" not in tuned[0]
    assert set(tuned[0]["params"]) == set(auto.SEARCH_SPACES[tuned[0]["algorithm"]])


def test_search_never_sees_the_test_rows(
    diabetes: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec(algorithm="auto", cv_folds=3)
    test_index = set(split(diabetes, spec, "regression").X_test.index)
    seen: set[int] = set()
    original = auto.cross_validate

    def spy(pipeline: Any, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> Any:
        seen.update(X.index)
        return original(pipeline, X, y, **kwargs)

    monkeypatch.setattr(auto, "cross_validate", spy)
    auto.choose(diabetes, spec, "regression")
    assert seen and not seen & test_index
