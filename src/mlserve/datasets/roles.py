"""Column roles: which columns of a dataset look like ids, constants or text.

A role is computed once per column when a dataset is stored (:func:`column_role`) and
kept in its summary (``role``, ``role_reason``); training leaves ``id`` and ``constant``
columns out unless the features are named explicitly
(:func:`mlserve.training.columns.choose_features`). Roles, in order of precedence:

``constant``
    At most one distinct non-missing value: it cannot tell rows apart.
``free_text``
    Text of :data:`FREE_TEXT_MIN_WORDS` words or more on average, mostly distinct
    (sentences, descriptions): kept, encoded with a bounded encoding.
``id``
    Unique per row (text or integers, every row present), or an integer column that is
    strictly monotone over the rows (a row number or auto-increment key): it names a
    row, it does not describe it.
``high_cardinality``
    Text with more than :data:`HIGH_CARDINALITY_MIN_VALUES` distinct values (ticket
    codes, cabins, zip codes): kept, encoded with a bounded encoding instead of one
    column per value.
``feature``
    Anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlserve.store.documents import ColumnRole, ColumnSummary

if TYPE_CHECKING:
    import pandas as pd

LEFT_OUT_ROLES = frozenset({"id", "constant"})
HIGH_CARDINALITY_MIN_VALUES = 50
FREE_TEXT_MIN_WORDS = 5.0
FREE_TEXT_MIN_DISTINCT_FRACTION = 0.5
ID_MIN_ROWS = 20  # below this, "unique per row" says nothing
WORDS_SAMPLE_ROWS = 2000


def column_role(series: pd.Series, kind: str) -> tuple[ColumnRole, str]:
    """Role of one column and the reason, in words.

    Parameters
    ----------
    series : Series of shape (n_rows,)
    kind : {"number", "integer", "boolean", "string"}
        Its logical type (:func:`mlserve.datasets.stats.logical_type`).

    Returns
    -------
    (role, reason) : tuple of str
        See the module docstring for the roles and their precedence.
    """
    present = series.dropna()
    unique = int(present.nunique())
    monotone = kind == "integer" and len(present) == len(series) and _strictly_monotone(present)
    return role_from_counts(
        kind,
        n_rows=len(series),
        n_present=len(present),
        unique=unique,
        mean_words=_mean_words(present) if kind == "string" and unique > 1 else 0.0,
        monotone=monotone,
    )


def role_from_counts(
    kind: str,
    *,
    n_rows: int,
    n_present: int,
    unique: int,
    mean_words: float,
    monotone: bool = False,
) -> tuple[ColumnRole, str]:
    """Role of one column from its counts (what :func:`column_role` computes from values).

    Parameters
    ----------
    kind : {"number", "integer", "boolean", "string"}
    n_rows, n_present, unique : int
        Rows, rows with a value, distinct values.
    mean_words : float
        Mean whitespace-separated words per value on the first 2,000 present values
        (text columns; ignored otherwise).
    monotone : bool
        Whether the column is integers, present in every row, strictly monotone.

    Returns
    -------
    (role, reason) : tuple of str
    """
    if unique <= 1:
        return "constant", f"{unique} distinct value{'' if unique == 1 else 's'}"
    if (
        kind == "string"
        and mean_words >= FREE_TEXT_MIN_WORDS
        and unique >= FREE_TEXT_MIN_DISTINCT_FRACTION * n_present
    ):
        return "free_text", f"free text ({mean_words:.1f} words per value on average)"
    if kind in ("string", "integer") and n_rows >= ID_MIN_ROWS:
        if monotone:
            return "id", "monotone integer index (a row number or key)"
        if unique == n_rows:
            return "id", f"unique per row ({unique} distinct values in {n_rows} rows)"
    if kind == "string" and unique > HIGH_CARDINALITY_MIN_VALUES:
        return (
            "high_cardinality",
            f"{unique} distinct text values (more than {HIGH_CARDINALITY_MIN_VALUES})",
        )
    return "feature", ""


def role_from_summary(summary: ColumnSummary, n_rows: int) -> tuple[ColumnRole, str]:
    """The role stored in ``summary``, or one inferred from its counts.

    Datasets stored before roles existed have no ``role``: constant and unique-per-row
    columns are then recognised from ``unique`` and ``missing`` alone (not monotone
    indexes or free text, which need the values).
    """
    stored = summary.get("role")
    if stored is not None:
        return stored, summary.get("role_reason", "")
    if summary["unique"] <= 1:
        return "constant", f"{summary['unique']} distinct values"
    unique_per_row = summary["unique"] == n_rows and summary["missing"] == 0
    if summary["type"] in ("string", "integer") and n_rows >= ID_MIN_ROWS and unique_per_row:
        return "id", f"unique per row ({n_rows} distinct values in {n_rows} rows)"
    if summary["type"] == "string" and summary["unique"] > HIGH_CARDINALITY_MIN_VALUES:
        return "high_cardinality", f"{summary['unique']} distinct text values"
    return "feature", ""


def _strictly_monotone(values: pd.Series) -> bool:
    array = np.asarray(values, dtype=np.float64)
    steps = np.diff(array)
    return bool(len(steps)) and bool((steps > 0).all() or (steps < 0).all())


def _mean_words(values: pd.Series) -> float:
    """Mean whitespace-separated words per value, on at most 2,000 values."""
    if not len(values):
        return 0.0
    sample = values.iloc[:WORDS_SAMPLE_ROWS].astype(str)
    return float(np.mean([len(text.split()) for text in sample]))
