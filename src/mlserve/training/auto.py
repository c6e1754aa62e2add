"""Automatic model selection: ``algorithm: "auto"``.

:func:`choose` scores the catalogue entries of
:data:`mlserve.training.catalogue.AUTO_CANDIDATES` with the job's own K-fold
cross-validation (:func:`mlserve.training.fit.cross_validate`) on the training split
only (the test split is never used to choose), within ``time_budget_s``:

* candidates run in order; the first (a linear model, seconds) always runs, each
  other one is skipped once the budget is spent, and one whose budget runs out between
  two folds is stopped there; both are kept on the leaderboard with the reason;
* if the budget left covers it (about :data:`SEARCH_COST` times the best entry's
  cross-validation), a successive-halving random search (Jamieson and Talwalkar,
  "Non-stochastic best arm identification and hyperparameter optimization", AISTATS
  2016; scikit-learn's ``HalvingRandomSearchCV``, :mod:`mlserve.training.auto_search`)
  tries a few settings of the best entry, and its winner is scored by the same
  cross-validation as the others, as one more leaderboard entry.

The best entry by the cross-validation metric of :data:`RANKING_METRIC` (RMSE for
regression, macro F1 for classification) is then trained exactly as if the client had
named it (:mod:`mlserve.jobs.service`). Cancelling is seen at each fold, as for any
job; the search itself (one call) cannot be stopped half-way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from mlserve.errors import ValidationFailed
from mlserve.store.documents import CvMetrics, LeaderboardEntry, MetricSummary
from mlserve.training.auto_search import SEARCH_SPACES, search
from mlserve.training.catalogue import AUTO_CANDIDATES
from mlserve.training.fit import Progress, cross_validate
from mlserve.training.pipeline import build_pipeline
from mlserve.training.spec import DEFAULT_TIME_BUDGET_S, TrainSpec
from mlserve.training.split import Split, split

# task -> (CV metric ranked on, whether higher is better); auto_search.SCORERS: the same
RANKING_METRIC: dict[str, tuple[str, bool]] = {
    "regression": ("rmse", False),
    "classification": ("f1_macro", True),
}
# Cost of a search plus re-scoring its winner, in cross-validations of the entry with its
# defaults. Each of the three halving rounds fits about as many rows as one, the
# re-scoring is one more, and the settings drawn cost up to about 6 times the defaults
# (max_iter 300 instead of 100, and 63 leaves; gradient boosting on california: 87 s of
# search and re-scoring after 3.2 s for the defaults' cross-validation, so 27 times).
SEARCH_COST = 25.0
SELECTION_END = 0.6  # the job's progress when the choice is made (the final fit follows)


class BudgetSpent(Exception):
    """The time budget ran out during a candidate's cross-validation."""


@dataclass(kw_only=True)
class Choice:
    """What :func:`choose` found: the algorithm and parameters to train, its
    cross-validation (on the training split) and the whole leaderboard (rank order)."""

    algorithm: str
    params: dict[str, Any]
    cv_metrics: CvMetrics
    leaderboard: list[LeaderboardEntry]


@dataclass(kw_only=True)
class _Run:
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    cv: CvMetrics | None = None
    seconds: float = 0.0
    skipped: str | None = None
    tuned: bool = False


@dataclass(kw_only=True)
class _Budget:
    deadline: float
    clock: Callable[[], float]

    def left(self) -> float:
        return self.deadline - self.clock()


def _noop(_fraction: float, _stage: str) -> None:
    return None


def choose(
    frame: pd.DataFrame,
    spec: TrainSpec,
    task: str,
    progress: Progress = _noop,
    server_params: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Choice:
    """Score the candidates of ``task`` on the training split; return the best.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
    spec : TrainSpec
        ``algorithm`` ``"auto"``; its split, folds and seed are used for every candidate.
    task : {"regression", "classification"}
    progress : callable(fraction, stage), optional
        Job progress, ``fraction`` in [0, :data:`SELECTION_END`]; the stage names the
        candidate (``"auto 2/3 gradient_boosting: cross-validation 4/5"``).
    server_params : mapping, optional
        See :func:`mlserve.training.catalogue.build_estimator`.
    clock : callable, optional
        Seconds (monotonic); the budget is ``spec.time_budget_s`` of it.

    Raises
    ------
    ValidationFailed
        If no candidate could be scored.
    """
    data = split(frame, spec, task)
    budget = _Budget(deadline=clock() + (spec.time_budget_s or DEFAULT_TIME_BUDGET_S), clock=clock)
    names = AUTO_CANDIDATES[task]
    steps = len(names) + 1
    runs: list[_Run] = []
    for i, name in enumerate(names):
        band = _band(progress, i, steps, f"auto {i + 1}/{len(names)} {name}: ")
        if i > 0 and budget.left() <= 0:
            runs.append(_Run(algorithm=name, skipped="time budget spent before it started"))
            continue
        runs.append(
            _score(
                data,
                spec,
                task,
                name=name,
                params={},
                server_params=server_params,
                progress=band,
                budget=budget,
                enforce=i > 0,
            )
        )
    scored = _ranked(runs, task)
    if not scored or scored[0].cv is None:
        reasons = "; ".join(f"{r.algorithm}: {r.skipped}" for r in runs)
        raise ValidationFailed(f"no candidate could be scored ({reasons})", {"field": "algorithm"})
    tuned = _tune(
        data,
        spec,
        task,
        best=scored[0],
        server_params=server_params,
        budget=budget,
        progress=progress,
        steps=steps,
    )
    if tuned is not None:
        runs.append(tuned)
    leaderboard = leaderboard_entries(_ranked(runs, task), task)
    best = next(r for r in _ranked(runs, task) if r.cv is not None)
    assert best.cv is not None
    return Choice(
        algorithm=best.algorithm, params=best.params, cv_metrics=best.cv, leaderboard=leaderboard
    )


def _band(progress: Progress, step: int, steps: int, prefix: str) -> Progress:
    """Map :func:`cross_validate`'s fractions (0.1 to 0.7) into step ``step`` of ``steps``."""
    low, width = 0.05 + (SELECTION_END - 0.05) * step / steps, (SELECTION_END - 0.05) / steps

    def report(fraction: float, stage: str) -> None:
        inner = min(max((fraction - 0.1) / 0.6, 0.0), 1.0)
        progress(low + width * inner, prefix + stage)

    return report


def _score(
    data: Split,
    spec: TrainSpec,
    task: str,
    *,
    name: str,
    params: dict[str, Any],
    server_params: Mapping[str, Any] | None,
    progress: Progress,
    budget: _Budget,
    enforce: bool,
) -> _Run:
    """Cross-validate one candidate; stop it between folds once the budget is spent
    (when ``enforce``). A candidate whose fit fails (``ValueError``) is recorded, skipped."""
    candidate = spec.model_copy(update={"algorithm": name, "params": params})
    pipeline = build_pipeline(candidate, task, data.signature, server_params)

    def guarded(fraction: float, stage: str) -> None:
        if enforce and budget.left() <= 0:
            raise BudgetSpent
        progress(fraction, stage)

    started = budget.clock()
    run = _Run(algorithm=name, params=params, tuned=bool(params))
    try:
        run.cv = cross_validate(
            pipeline, data.X_train, data.y_train, spec=candidate, task=task, progress=guarded
        )
    except BudgetSpent:
        run.skipped = "time budget spent during its cross-validation"
    except ValueError as exc:
        run.skipped = f"failed: {exc}"[:300]
    run.seconds = budget.clock() - started
    return run


def _tune(
    data: Split,
    spec: TrainSpec,
    task: str,
    *,
    best: _Run,
    server_params: Mapping[str, Any] | None,
    budget: _Budget,
    progress: Progress,
    steps: int,
) -> _Run | None:
    """Search the best entry's hyper-parameters by successive halving when the budget
    left covers it; the winner, scored by the same cross-validation (or the reason the
    search did not run, as a skipped entry). ``None`` when ``best`` has no search space."""
    space = SEARCH_SPACES.get(best.algorithm)
    if space is None:
        return None
    label = f"{best.algorithm}, hyper-parameter search"
    needed = SEARCH_COST * best.seconds
    if budget.left() < needed:
        reason = f"time budget: the search needs about {needed:.0f} s, {budget.left():.0f} s left"
        return _Run(algorithm=best.algorithm, skipped=reason, tuned=True)
    band = _band(progress, steps - 1, steps, f"auto: {label}: ")
    band(0.1, "successive halving")
    started = budget.clock()
    try:
        params = search(
            data, spec, task, algorithm=best.algorithm, space=space, server_params=server_params
        )
    except ValueError as exc:
        return _Run(algorithm=best.algorithm, skipped=f"search failed: {exc}"[:300], tuned=True)
    run = _score(
        data,
        spec,
        task,
        name=best.algorithm,
        params=params,
        server_params=server_params,
        progress=band,
        budget=budget,
        enforce=True,
    )
    run.seconds += budget.clock() - started
    return run


def _ranked(runs: list[_Run], task: str) -> list[_Run]:
    """Scored runs best first (a NaN mean last), then the skipped ones in run order."""
    metric, higher = RANKING_METRIC[task]

    def key(run: _Run) -> tuple[int, float]:
        mean = _mean(run.cv, metric)
        if mean is None:
            return (2 if run.cv is None else 1, 0.0)
        return (0, -mean if higher else mean)

    return sorted(runs, key=key)


def _summary(cv: CvMetrics | None, metric: str) -> MetricSummary | None:
    summary = dict(cv or {}).get(metric)
    return cast(MetricSummary, summary) if isinstance(summary, dict) else None


def _mean(cv: CvMetrics | None, metric: str) -> float | None:
    summary = _summary(cv, metric)
    if summary is None or not math.isfinite(summary["mean"]):
        return None
    return float(summary["mean"])


def leaderboard_entries(runs: list[_Run], task: str) -> list[LeaderboardEntry]:
    """The stored leaderboard of runs already in rank order (rank 1 first)."""
    metric = RANKING_METRIC[task][0]
    entries: list[LeaderboardEntry] = []
    for rank, run in enumerate(runs, start=1):
        summary = _summary(run.cv, metric)
        entry: LeaderboardEntry = {
            "rank": rank,
            "algorithm": run.algorithm,
            "params": run.params,
            "metric": metric,
            "cv_mean": _mean(run.cv, metric),
            "cv_std": float(summary["std"]) if summary is not None else None,
            "fit_seconds": round(run.seconds, 3),
        }
        if run.tuned:
            entry["tuned"] = True
        if run.skipped is not None:
            entry["skipped"] = run.skipped
        entries.append(entry)
    return entries
