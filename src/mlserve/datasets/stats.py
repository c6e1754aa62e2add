"""Per-column schema and summary statistics of a DataFrame."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlserve.datasets.roles import column_role
from mlserve.store.documents import CategoryCount, ColumnSummary, Histogram, LogicalType

TOP_CATEGORIES = 10
MAX_HISTOGRAM_BINS = 20


def logical_type(series: pd.Series) -> LogicalType:
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


def histogram(values: Any, max_bins: int = MAX_HISTOGRAM_BINS) -> Histogram | None:
    """Equal-width histogram of the finite values of ``values``.

    The number of bins is numpy's ``"auto"`` rule (the larger of the
    Freedman-Diaconis and Sturges bin counts, ``numpy.histogram_bin_edges``),
    capped at ``max_bins``; missing and infinite values are left out.

    Parameters
    ----------
    values : array-like of shape (n_values,)
    max_bins : int

    Returns
    -------
    dict or None
        ``{"edges": [n + 1 floats], "counts": [n ints]}``, the last bin closed on
        both sides (numpy's convention); ``None`` when no value is finite.
    """
    array = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
    array = array[np.isfinite(array)]
    if not len(array):
        return None
    edges = np.histogram_bin_edges(array, bins="auto")
    if len(edges) - 1 > max_bins:
        edges = np.histogram_bin_edges(array, bins=max_bins)
    counts, edges = np.histogram(array, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def column_summary(name: str, series: pd.Series) -> ColumnSummary:
    """Summarise one column.

    Returns
    -------
    dict
        ``name``, ``type`` (see :func:`logical_type`), ``dtype`` (pandas),
        ``missing`` and ``unique`` (counts of rows / distinct non-missing
        values), then ``min``, ``max``, ``mean``, ``std`` for numeric columns
        or ``top`` (up to 10 ``{"value", "count"}``, most frequent first) for
        the others; ``role`` and ``role_reason`` (:func:`mlserve.datasets.roles.column_role`).
    """
    kind = logical_type(series)
    summary: ColumnSummary = {
        "name": name,
        "type": kind,
        "dtype": str(series.dtype),
        "missing": int(series.isna().sum()),
        "unique": int(series.nunique(dropna=True)),
    }
    present = series.dropna()
    if kind in ("integer", "number") and len(present):
        summary["min"] = _finite(present.min())
        summary["max"] = _finite(present.max())
        summary["mean"] = _finite(present.mean())
        summary["std"] = _finite(present.std()) if len(present) > 1 else None
        bins = histogram(present)
        if bins is not None:
            summary["histogram"] = bins
    else:
        counts = _as_text(present).value_counts().head(TOP_CATEGORIES)
        top: list[CategoryCount] = [{"value": str(v), "count": int(c)} for v, c in counts.items()]
        summary["top"] = top
    summary["role"], summary["role_reason"] = column_role(series, kind)
    return summary


def _as_text(values: pd.Series) -> pd.Series:
    """``values`` as text: unchanged when every value is a ``str`` already (text read
    from a CSV or Parquet file), which spares a copy of the whole column (in pandas 3,
    ``astype(str)`` copies into Arrow memory), else ``astype(str)``."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return values.astype(str)


def column_summaries(frame: pd.DataFrame) -> list[ColumnSummary]:
    """Summaries of every column of ``frame`` (n_rows, n_columns), in column order."""
    return [column_summary(str(name), frame[name]) for name in frame.columns]
