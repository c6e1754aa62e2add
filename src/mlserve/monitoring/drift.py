"""Input drift: reference statistics stored at training time, PSI and KS against recent inputs.

At training time every version stores, per feature, the statistics its inputs
are compared with later (:func:`mlserve.training.reference.reference_statistics`):
for numeric features the decile edges of the training values, the share of values in each of the ten
bins, and a bounded random sample of the values (for the two-sample
Kolmogorov-Smirnov test); for text features the frequency of each category.

:func:`drift_report` compares a window of recent inputs with them:

- population stability index (PSI) per feature, ``sum((a - e) * ln(a / e))``
  over the bins (numeric) or categories (text), ``e`` the reference share and
  ``a`` the window's, both floored at :data:`PSI_FLOOR`. Thresholds: below 0.1
  stable, 0.1 to 0.25 moderate shift, 0.25 and above significant shift, the rule
  of thumb of credit scoring (Siddiqi 2006, *Credit Risk Scorecards*, ch. 8;
  its statistical properties in Yurdakul 2018, "Statistical properties of the
  population stability index"). A feature is flagged ``drift`` at 0.25, and
  only when the window holds at least :data:`MIN_WINDOW_ROWS` rows (with fewer,
  most of the ten bins are empty and PSI is large whatever the distribution).
- for numeric features, the two-sample Kolmogorov-Smirnov statistic and its
  p-value (``scipy.stats.ks_2samp``, exact or asymptotic as scipy chooses) of the
  window against the stored reference sample; ``ks_drift`` when the p-value is
  below :data:`KS_ALPHA`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlserve.training.reference import (
    MISSING,
    OTHER,
    REFERENCE_SAMPLE_ROWS,
    bin_shares,
)

PSI_FLOOR = 1e-4
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
KS_ALPHA = 0.01
MIN_WINDOW_ROWS = 100  # below this, PSI over ten bins is mostly empty bins: nothing is flagged
THRESHOLDS = {
    "psi": {
        "moderate": PSI_MODERATE,
        "significant": PSI_SIGNIFICANT,
        "drift_at": PSI_SIGNIFICANT,
        "source": "Siddiqi 2006, Credit Risk Scorecards (rule of thumb: <0.1 stable, "
        "0.1-0.25 moderate, >=0.25 significant shift)",
    },
    "min_window_rows": MIN_WINDOW_ROWS,
    "ks": {
        "alpha": KS_ALPHA,
        "source": "two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp) against a "
        f"random reference sample of at most {REFERENCE_SAMPLE_ROWS} training values; "
        "drift when p < alpha",
    },
}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins.

    Both are floored at :data:`PSI_FLOOR` so that an empty bin gives a large,
    finite term (Siddiqi 2006).
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _level(value: float) -> str:
    if value >= PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if value >= PSI_MODERATE else "stable"


def feature_drift(reference: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    """PSI (and for numeric features KS) of one feature's window against its reference.

    Parameters
    ----------
    reference : dict
        One entry of :func:`reference_statistics`' ``features``.
    values : Series of shape (n_window,)
        The window's values of the feature (numbers, or text; ``None`` missing).
    """
    if reference["kind"] == "categorical":
        text = values.where(values.notna(), MISSING).astype(str)
        known = reference["shares"]
        mapped = text.where(text.isin(known), OTHER)
        observed = mapped.value_counts(normalize=True)
        labels = sorted(set(known) | set(observed.index))
        expected = np.array([known.get(k, 0.0) for k in labels])
        actual = np.array([float(observed.get(k, 0.0)) for k in labels])
        value = psi(expected, actual)
        return {
            "kind": "categorical",
            "psi": value,
            "level": _level(value),
            "drift": bool(value >= PSI_SIGNIFICANT),
            "unseen_share": float(observed.get(OTHER, 0.0)) if OTHER not in known else None,
        }
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    present = numbers[~np.isnan(numbers)]
    missing = float(np.isnan(numbers).mean()) if len(numbers) else None
    result: dict[str, Any] = {"kind": "numeric", "missing": missing}
    if len(present) == 0 or not reference["sample"]:
        result.update(psi=None, level=None, drift=False, ks_statistic=None, ks_pvalue=None)
        return result
    edges = np.asarray(reference["edges"])
    value = psi(np.asarray(reference["shares"]), bin_shares(present, edges))
    test = stats.ks_2samp(present, np.asarray(reference["sample"]))
    result.update(
        psi=value,
        level=_level(value),
        drift=bool(value >= PSI_SIGNIFICANT),
        ks_statistic=float(test.statistic),
        ks_pvalue=_finite(float(test.pvalue)),
        ks_drift=bool(test.pvalue < KS_ALPHA),
    )
    return result


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def drift_report(reference: dict[str, Any], window: pd.DataFrame) -> dict[str, Any]:
    """Drift of every feature of ``window`` (n_window, n_features) against ``reference``.

    Returns
    -------
    dict
        ``{"features": {name: feature_drift(...)}, "drifted": [names flagged],
        "thresholds": THRESHOLDS}``.
    """
    features = {
        name: feature_drift(ref, window[name] if name in window else pd.Series([], dtype=object))
        for name, ref in reference["features"].items()
    }
    enough = len(window) >= MIN_WINDOW_ROWS
    if not enough:
        for values in features.values():
            values["drift"] = False
            values["ks_drift"] = False
    return {
        "features": features,
        "drifted": sorted(name for name, f in features.items() if f["drift"]),
        "enough_rows": enough,
        "thresholds": THRESHOLDS,
    }
