"""What a training job records for explanations: a background sample and a SHAP summary.

Stored in the version's evaluation document (``explain_background``, ``shap_summary``);
the explainer is :mod:`mlserve.training.explain` (docs/explain.md).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlserve.training.explain import BACKGROUND_ROWS, Explanation, PipelineExplainer, summary

log = logging.getLogger(__name__)
SUMMARY_ROWS = 200
PERMUTATION_SUMMARY_ROWS = 20
SUMMARY_BUDGET_S = 20.0
SUMMARY_CHUNK_ROWS = 25  # rows explained at once by the linear and tree explainers


def training_record(
    pipeline: Pipeline,
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    *,
    classes: list[Any] | None,
    random_state: int,
    budget_s: float = SUMMARY_BUDGET_S,
) -> dict[str, Any]:
    """What a training job records for explanations, stored in the version's evaluation.

    Returns
    -------
    dict
        ``explain_background``: a seeded sample of at most :data:`BACKGROUND_ROWS`
        training rows (JSON records, missing values as ``None``), the background of
        the linear and permutation explainers; ``shap_summary``: ``method``,
        ``output_space``, ``rows`` and ``features`` (:func:`summary`) on a seeded
        sample of the test split (:data:`SUMMARY_ROWS`, :data:`PERMUTATION_SUMMARY_ROWS`
        for the permutation explainer; left out when it cannot be computed), explained
        in chunks until ``budget_s`` seconds have passed (at most
        :data:`SUMMARY_BUDGET_S`): ``rows`` says how many were.

    Parameters
    ----------
    budget_s : float
        Time the SHAP summary should take, in seconds (a training job passes
        :func:`mlserve.training.budget.extras_budget_s` of its fit time); the first
        row is always explained.
    """
    background = X_train.sample(min(BACKGROUND_ROWS, len(X_train)), random_state=random_state)
    record: dict[str, Any] = {"explain_background": to_records(background)}
    try:
        explainer = PipelineExplainer(pipeline, classes=classes, background=background)
        limit = PERMUTATION_SUMMARY_ROWS if explainer.method == "permutation" else SUMMARY_ROWS
        rows = X_test.sample(min(limit, len(X_test)), random_state=random_state)
        explained = _within_budget(explainer, rows, min(budget_s, SUMMARY_BUDGET_S))
    except Exception as exc:  # the version is still good without a summary
        log.warning("no SHAP summary for this version: %s", exc)
        return record
    record["shap_summary"] = {
        "method": explained.method,
        "output_space": explained.output_space,
        "rows": len(explained.output),
        "features": summary(explained),
    }
    return record


def _within_budget(
    explainer: PipelineExplainer, rows: pd.DataFrame, budget_s: float
) -> Explanation:
    """The explanation of ``rows``, or of as many as ``budget_s`` allows (one row at
    least). One row first, timed; then chunks sized to what is left of the budget at that
    pace (at most :data:`SUMMARY_CHUNK_ROWS` rows for the linear and tree explainers, one
    for the permutation explainer, which goes row by row). A tree explainer of a deep
    forest takes about 0.35 s a row (california random_forest): a fixed first chunk of 25
    rows took 9 s whatever the budget."""
    largest = 1 if explainer.method == "permutation" else SUMMARY_CHUNK_ROWS
    started = time.perf_counter()
    parts = [explainer.explain(rows.iloc[:1])]
    done = 1
    while done < len(rows):
        spent = time.perf_counter() - started
        affordable = int((budget_s - spent) / max(spent / done, 1e-6))
        if affordable < 1:
            break
        chunk = min(largest, affordable, len(rows) - done)
        parts.append(explainer.explain(rows.iloc[done : done + chunk]))
        done += chunk
    first = parts[0]
    if len(parts) == 1:
        return first
    return Explanation(
        features=first.features,
        contributions=np.vstack([p.contributions for p in parts]),
        base=np.concatenate([p.base for p in parts]),
        output=np.concatenate([p.output for p in parts]),
        output_space=first.output_space,
        method=first.method,
        explained=None,
    )


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts (NaN as ``None``, numpy scalars as Python)."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in cleaned.to_dict("records")
    ]
