"""Per-column schema and summary statistics of a DataFrame."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

TOP_CATEGORIES = 10


def logical_type(series: pd.Series) -> str:
    """Signature type of a column: ``"boolean"``, ``"integer"``, ``"number"`` or ``"string"``.

    A float column whose non-missing values are all whole numbers stays
    ``"number"``: pandas stores integers with missing values as floats, and the
    model sees floats either way.
    """
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "string"


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def column_summary(name: str, series: pd.Series) -> dict[str, Any]:
    """Summarise one column.

    Returns
    -------
    dict
        ``name``, ``type`` (see :func:`logical_type`), ``dtype`` (pandas),
        ``missing`` and ``unique`` (counts of rows / distinct non-missing
        values), then ``min``, ``max``, ``mean``, ``std`` for numeric columns
        or ``top`` (up to 10 ``{"value", "count"}``, most frequent first) for
        the others.
    """
    kind = logical_type(series)
    summary: dict[str, Any] = {
        "name": name,
        "type": kind,
        "dtype": str(series.dtype),
        "missing": int(series.isna().sum()),
        "unique": int(series.nunique(dropna=True)),
    }
    present = series.dropna()
    if kind in ("integer", "number") and len(present):
        summary.update(
            min=_finite(present.min()),
            max=_finite(present.max()),
            mean=_finite(present.mean()),
            std=_finite(present.std()) if len(present) > 1 else None,
        )
    else:
        counts = present.astype(str).value_counts().head(TOP_CATEGORIES)
        summary["top"] = [{"value": str(v), "count": int(c)} for v, c in counts.items()]
    return summary


def column_summaries(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Summaries of every column of ``frame`` (n_rows, n_columns), in column order."""
    return [column_summary(str(name), frame[name]) for name in frame.columns]
