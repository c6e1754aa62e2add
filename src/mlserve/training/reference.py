"""Reference statistics of the training inputs, stored with a version to measure drift later.

For numeric features: the decile edges of the training values, the share of values
in each of the ten bins, and a bounded random sample of the values (for the
two-sample Kolmogorov-Smirnov test); for text features the frequency of each
category (the most frequent :data:`MAX_CATEGORIES`, the rest as ``(other)``).
:mod:`mlserve.monitoring.drift` compares recent inputs with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlserve.store.documents import Signature

N_BINS = 10
REFERENCE_SAMPLE_ROWS = 1_000
MAX_CATEGORIES = 100
OTHER = "(other)"
MISSING = "(missing)"


def reference_statistics(
    X: pd.DataFrame, signature: Signature, random_state: int = 0
) -> dict[str, Any]:
    """Per-feature statistics of the training inputs, to measure drift against later.

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features)
        Training inputs in model dtypes (:func:`mlserve.training.signature.model_frame`).
    signature : dict
    random_state : int
        Seed of the reference sample.

    Returns
    -------
    dict
        ``{"n_rows", "features": {name: {"kind": "numeric", "edges", "shares",
        "missing", "sample"} | {"kind": "categorical", "shares", "missing"}}}``.
    """
    rng = np.random.default_rng(random_state)
    features: dict[str, Any] = {}
    for spec in signature["inputs"]:
        column = X[spec["name"]]
        if spec["type"] == "string":
            features[spec["name"]] = _categorical_reference(column)
        else:
            features[spec["name"]] = _numeric_reference(column, rng)
    return {"n_rows": len(X), "features": features}


def _numeric_reference(column: pd.Series, rng: np.random.Generator) -> dict[str, Any]:
    values = column.to_numpy(dtype=np.float64)
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return {"kind": "numeric", "edges": [], "shares": [1.0], "missing": 1.0, "sample": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    shares = bin_shares(present, edges)
    size = min(REFERENCE_SAMPLE_ROWS, len(present))
    sample = rng.choice(present, size=size, replace=False)
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "shares": shares.tolist(),
        "missing": float(1 - len(present) / len(values)),
        "sample": sorted(sample.tolist()),
    }


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def _categorical_reference(column: pd.Series) -> dict[str, Any]:
    text = column.where(column.notna(), MISSING).astype(str)
    shares = text.value_counts(normalize=True)
    kept = shares.head(MAX_CATEGORIES)
    result = {str(k): float(v) for k, v in kept.items()}
    if len(shares) > MAX_CATEGORIES:
        result[OTHER] = float(shares.iloc[MAX_CATEGORIES:].sum())
    return {"kind": "categorical", "shares": result, "missing": float(column.isna().mean())}
