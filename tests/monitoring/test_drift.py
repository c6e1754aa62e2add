"""PSI and KS against reference statistics (mlserve.monitoring.drift)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlserve.monitoring.drift import drift_report, psi
from mlserve.training.reference import reference_statistics

SIGNATURE = {
    "inputs": [
        {"name": "x", "type": "number", "nullable": False},
        {"name": "c", "type": "string", "nullable": False},
    ]
}


@pytest.fixture
def reference() -> dict:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
    return reference_statistics(frame, SIGNATURE, random_state=0)


def test_psi_by_hand() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    expected = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.7, 0.3])) == pytest.approx(expected)


def test_reference_holds_deciles_and_a_bounded_sample(reference: dict) -> None:
    x = reference["features"]["x"]
    assert len(x["edges"]) == 9 and len(x["sample"]) == 1000
    assert sum(x["shares"]) == pytest.approx(1.0) and max(x["shares"]) < 0.11
    assert reference["features"]["c"]["shares"].keys() == {"a", "b"}


def test_same_distribution_is_stable_and_a_shift_is_flagged(reference: dict) -> None:
    rng = np.random.default_rng(1)
    same = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    report = drift_report(reference, same)
    assert report["drifted"] == [] and report["features"]["x"]["level"] == "stable"
    shifted = pd.DataFrame({"x": rng.normal(1.0, size=2000), "c": ["z"] * 2000})
    report = drift_report(reference, shifted)
    assert report["drifted"] == ["c", "x"]
    x = report["features"]["x"]
    sample = np.asarray(reference["features"]["x"]["sample"])
    want = stats.ks_2samp(shifted["x"], sample)
    assert x["ks_statistic"] == pytest.approx(want.statistic) and x["ks_drift"]
    assert report["features"]["c"]["unseen_share"] == 1.0


def test_a_small_window_flags_nothing(reference: dict) -> None:
    shifted = pd.DataFrame({"x": np.full(99, 5.0), "c": ["z"] * 99})
    report = drift_report(reference, shifted)
    assert report["enough_rows"] is False and report["drifted"] == []
    assert report["features"]["x"]["psi"] > 0.25  # reported, not flagged
