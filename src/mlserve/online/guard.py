"""The guard of online updates: is the new version no worse than production, everywhere?

The candidate and ``production`` are scored on three sets of rows neither has learned
from (docs/online-learning.md, "The guard"):

- the **guard window**: the newest waiting samples (what the stream brings now);
- the **older samples**: the reservoir of held-out samples, never learned, spread over
  the whole stream so far (:mod:`mlserve.online.replay`), judged from
  ``online_guard_min_rows`` rows;
- the **test split**: the kept rows of the lineage root's test split (the training
  distribution: what forgetting shows on), judged from ``online_guard_min_rows`` rows.

The candidate passes when it is no worse than production by more than ``tolerance``
times production's metric on every judged set (non-inferiority with a relative margin);
:func:`decide` gathers the sets and scores them, :func:`reason` says the decision.
Each set also records the lineage root's metric on the same rows, which is not judged:
successive comparisons with the latest winner let the error creep up step by step within
the margin ("bio-creep" of non-inferiority trials: S. Everson-Stewart, S. S. Emerson,
Statistics in Medicine 29(27), 2010), and the root's figure shows how far it went. Making
it a second bar (the candidate within tolerance of the root too) was measured and
rejected: docs/online-learning.md, "The guard".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlserve.context import Context
from mlserve.online import replay
from mlserve.online.frames import samples_frame, samples_target
from mlserve.store.documents import GuardDecision, GuardSet, SampleWindow
from mlserve.store.orm import ModelVersion, Sample
from mlserve.training.metrics import PRIMARY_METRIC

WINDOW, OLDER, TEST = "guard window", "older samples", "test split"


def no_worse(metric: str, candidate: float, production: float, tolerance: float) -> bool:
    """Whether ``candidate`` is no worse than ``production`` within ``tolerance`` (relative).

    RMSE: ``candidate <= production * (1 + tolerance)``; accuracy:
    ``candidate >= production * (1 - tolerance)``.
    """
    slack = tolerance * abs(production)
    if metric == "rmse":
        return candidate <= production + slack
    return candidate >= production - slack


def primary_metric(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str) -> float:
    """RMSE (regression) or accuracy (classification) of ``pipeline`` on (X, y).

    X : DataFrame of shape (n_samples, n_features); y : ndarray of shape (n_samples,).
    """
    with warnings.catch_warnings():  # unseen categories encode as all zeros
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        predicted = pipeline.predict(X)
    if task == "regression":
        errors = np.asarray(predicted, np.float64) - np.asarray(y, np.float64)
        return float(np.sqrt(np.mean(errors**2)))
    return float(np.mean(np.asarray(predicted, dtype=object) == np.asarray(y, dtype=object)))


@dataclass(frozen=True, kw_only=True)
class Guard:
    """The guard's decision on a new version.

    Attributes
    ----------
    metric : {"rmse", "accuracy"}
    production_version : int
    tolerance : float
        Fraction of production's metric.
    window : dict
        The guard window's sample range.
    sets : list of dict
        Per set (the window first): rows, both metrics, whether judged and passed.
    """

    metric: str
    production_version: int
    tolerance: float
    window: SampleWindow
    sets: list[GuardSet]

    @property
    def passed(self) -> bool:
        """No judged set failed."""
        return all(s["passed"] for s in self.sets if s["judged"])

    def view(self) -> GuardDecision:
        """JSON-ready record of the decision (the window's figures at the top level)."""
        first = self.sets[0]
        return {
            "metric": self.metric,
            "candidate": float(first["candidate"] if first["candidate"] is not None else np.nan),
            "production": float(first["production"] if first["production"] is not None else np.nan),
            "production_version": self.production_version,
            "tolerance": self.tolerance,
            "window": self.window,
            "passed": self.passed,
            "sets": self.sets,
        }


def judge_set(
    name: str,
    rows: tuple[pd.DataFrame, np.ndarray] | None,
    *,
    pipelines: tuple[Pipeline, Pipeline, Pipeline],
    task: str,
    tolerance: float,
    min_rows: int,
) -> GuardSet:
    """Score the candidate, production and root ``pipelines`` on one set of ``rows``
    ((X, y): DataFrame of shape (n_rows, n_features), ndarray of shape (n_rows,)); a set
    with fewer than ``min_rows`` rows (or none) is not judged."""
    n_rows = 0 if rows is None else len(rows[1])
    if rows is None or n_rows == 0 or n_rows < min_rows:
        return {
            "name": name,
            "n_samples": n_rows,
            "candidate": None,
            "production": None,
            "judged": False,
            "passed": True,
            "root": None,
        }
    metric = "rmse" if task == "regression" else "accuracy"
    new, old, root = (primary_metric(p, rows[0], rows[1], task) for p in pipelines)
    return {
        "name": name,
        "n_samples": n_rows,
        "candidate": new,
        "production": old,
        "judged": True,
        "passed": no_worse(metric, new, old, tolerance),
        "root": root,
    }


def reason(guard: GuardDecision) -> str:
    """The decision of a guard (its :meth:`Guard.view`) in one sentence, naming the set(s)
    that failed."""
    metric, version = guard["metric"], guard["production_version"]
    sets = guard.get("sets") or [
        {
            "name": WINDOW,
            "n_samples": guard["window"]["n_samples"],
            "candidate": guard["candidate"],
            "production": guard["production"],
            "judged": True,
            "passed": guard["passed"],
        }
    ]
    judged = [s for s in sets if s["judged"]]
    failed = [s for s in judged if not s["passed"]]
    passed = [s for s in judged if s["passed"]]
    tolerance = f"within tolerance {guard['tolerance']:g}"
    if failed:
        head = (
            f"worse than production (version {version}) {tolerance.replace('within', 'beyond')}"
            f" on the {_names(failed)}: " + "; ".join(_figures(s, metric) for s in failed)
        )
        tail = f"; no worse on the {_names(passed)}" if passed else ""
        return head + tail
    skipped = [s for s in sets if not s["judged"]]
    note = f" ({_names(skipped)}: too few rows to judge)" if skipped else ""
    return (
        f"no worse than production (version {version}) {tolerance} on the {_names(judged)}: "
        + "; ".join(_figures(s, metric) for s in judged)
        + note
    )


def _names(sets: list[GuardSet]) -> str:
    names = [s["name"] for s in sets]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _figures(entry: GuardSet, metric: str) -> str:
    return (
        f"{metric} {entry['candidate']:.6g} against {entry['production']:.6g} "
        f"on {entry['n_samples']} rows of the {entry['name']}"
    )


def decide(
    ctx: Context,
    name: str,
    memory: replay.LineageMemory,
    *,
    parent: ModelVersion,
    candidate: Pipeline,
    production: tuple[int, Pipeline],
    root: Pipeline,
    held: list[Sample],
) -> Guard:
    """The guard's decision on an update of ``parent`` that made ``candidate``: against
    ``production`` (version, pipeline) on the window (the ``held`` samples), the older
    samples of ``memory`` and the root's kept test rows, with the ``root``'s figures beside
    them."""
    settings = ctx.settings
    production_version, baseline = production
    older = memory.older.items
    sets = {
        WINDOW: (samples_frame(held, parent.signature), samples_target(held, parent.task)),
        OLDER: replay.rows_of(ctx, name, memory, older, parent) if older else None,
        TEST: replay.test_rows(memory),
    }
    window: SampleWindow = {
        "first_sample_id": held[0].id,
        "last_sample_id": held[-1].id,
        "n_samples": len(held),
    }
    return Guard(
        metric=PRIMARY_METRIC[parent.task],
        production_version=production_version,
        tolerance=settings.online_guard_tolerance,
        window=window,
        sets=[
            judge_set(
                set_name,
                rows,
                pipelines=(candidate, baseline, root),
                task=parent.task,
                tolerance=settings.online_guard_tolerance,
                min_rows=1 if set_name == WINDOW else settings.online_guard_min_rows,
            )
            for set_name, rows in sets.items()
        ],
    )
