"""Time budgets of the evaluation extras a training job computes after its fit.

The permutation importance (:func:`mlserve.training.evaluation.budgeted_importances`)
and the SHAP summary (:func:`mlserve.training.explain_record.training_record`) each get
:func:`extras_budget_s`: a tenth of the fitting (the cross-validation folds and the final
fit), at least :data:`EXTRAS_FLOOR_S`. Together they then add at most a fifth to the fits
(the floor aside), however slow the model is to predict or to explain: a job of a
one-minute fit costs about 1.2x the same fits in a notebook, one of a sub-second fit
0.5-1.5 s more, the floors mostly (``bench/training_time.py --matrix``,
docs/benchmarks.md). They meet it by sampling:
fewer permutation repeats and rows (:func:`plan_importance`), fewer explained rows; the
evaluation records what was used.
"""

from __future__ import annotations

import math
import time
from typing import Any

IMPORTANCE_REPEATS = 5
MIN_IMPORTANCE_REPEATS = 2  # the fewest that still give a spread (std)
MIN_IMPORTANCE_ROWS = 100
EXTRAS_FIT_FRACTION = 0.1
EXTRAS_FLOOR_S = 0.25
TIMING_TRIES = 3


def extras_budget_s(fit_seconds: float) -> float:
    """Time budget of each evaluation extra (permutation importance, SHAP summary), in
    seconds: :data:`EXTRAS_FIT_FRACTION` of ``fit_seconds`` (the cross-validation folds
    and the final fit, or an online update's fit), at least :data:`EXTRAS_FLOOR_S`. Two
    extras at a tenth each add a fifth to the fits (but for the floor, which keeps fast
    fits' importances meaningful: at least :data:`MIN_IMPORTANCE_ROWS` rows and
    :data:`MIN_IMPORTANCE_REPEATS` repeats)."""
    return max(EXTRAS_FLOOR_S, EXTRAS_FIT_FRACTION * fit_seconds)


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


def predict_seconds(pipeline: Any, X: Any, tries: int = TIMING_TRIES) -> float:
    """Seconds ``pipeline.predict(X)`` takes: the fastest of ``tries`` calls (one call
    slowed by another process would shrink the importance for nothing)."""
    fastest = math.inf
    for _ in range(tries):
        started = time.perf_counter()
        pipeline.predict(X)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest
