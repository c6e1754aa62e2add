"""Time budgets of the evaluation extras a training job computes after its fit.

The permutation importance (:func:`mlserve.training.evaluation.budgeted_importances`)
and the SHAP summary (:func:`mlserve.training.explain_record.training_record`) each get
:func:`extras_budget_s`: a twentieth of the fitting (the cross-validation folds and the
final fit), at least :data:`EXTRAS_FLOOR_S` and at most the fit itself. Together they then
add at most a tenth to the fits (the floor aside, which is never more than the fit), however
slow the model is to predict or to explain (``bench/training_time.py --matrix``,
docs/benchmarks.md). A training job scores the importance on the compiled graph
(:func:`mlserve.training.fit.add_extras`), a fraction of a millisecond a scoring where the
scikit-learn pipeline takes several, so the same budget buys more rows and repeats. They meet it
by sampling:
fewer permutation repeats and rows (:func:`plan_importance`), fewer explained rows; the
evaluation records what was used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

IMPORTANCE_REPEATS = 5
MIN_IMPORTANCE_REPEATS = 2  # the fewest that still give a spread (std)
MIN_IMPORTANCE_ROWS = 100
EXTRAS_FIT_FRACTION = 0.05
EXTRAS_FLOOR_S = 0.1  # the full plan of a small model's importance fits it with room under load
TIMING_TRIES = 3


def extras_budget_s(fit_seconds: float) -> float:
    """Time budget of each evaluation extra (permutation importance, SHAP summary), in
    seconds: :data:`EXTRAS_FIT_FRACTION` of ``fit_seconds`` (the cross-validation folds
    and the final fit, or an online update's fit), at least :data:`EXTRAS_FLOOR_S` but
    never more than ``fit_seconds``. Two extras at a twentieth each add a tenth to the fits
    (compilation and the artifact take about as much again: issue 14's 1.3x);
    a sub-second fit's extras get the floor, at most the fit itself (the least they do
    whatever the budget, :data:`MIN_IMPORTANCE_ROWS` rows and
    :data:`MIN_IMPORTANCE_REPEATS` repeats, one explained row, may take longer)."""
    return min(fit_seconds, max(EXTRAS_FLOOR_S, EXTRAS_FIT_FRACTION * fit_seconds))


def plan_importance(
    n_rows: int, n_features: int, call_s: float, budget_s: float
) -> tuple[int, int]:
    """Rows and repeats of a permutation importance expected to fit ``budget_s`` seconds.

    The importance scores the model ``1 + n_features * repeats`` times; each scoring
    of ``n_rows`` rows was measured at ``call_s`` seconds, and takes time in
    proportion to the rows. Repeats come down first (to :data:`MIN_IMPORTANCE_REPEATS`),
    then rows (to :data:`MIN_IMPORTANCE_ROWS`, below which an importance means little:
    the floor may exceed the budget).

    Returns
    -------
    rows, repeats : int
    """
    if call_s <= 0 or n_rows == 0 or (1 + n_features * IMPORTANCE_REPEATS) * call_s <= budget_s:
        return n_rows, IMPORTANCE_REPEATS
    affordable = int((budget_s / call_s - 1) // max(1, n_features))
    repeats = min(IMPORTANCE_REPEATS, max(MIN_IMPORTANCE_REPEATS, affordable))
    cost_s = (1 + n_features * repeats) * call_s
    if cost_s <= budget_s:
        return n_rows, repeats
    rows = max(min(MIN_IMPORTANCE_ROWS, n_rows), int(n_rows * budget_s / cost_s))
    return rows, repeats


def predict_seconds(predict: Callable[[Any], Any], X: Any, tries: int = TIMING_TRIES) -> float:
    """Seconds ``predict(X)`` takes: the fastest of ``tries`` calls (one call slowed by
    another process would shrink the importance for nothing)."""
    fastest = math.inf
    for _ in range(tries):
        started = time.perf_counter()
        predict(X)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest
