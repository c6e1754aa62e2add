"""The guard of online updates (mlserve.guard)."""

from __future__ import annotations

import pytest

from mlserve.guard import Guard, reason

WINDOW = {"first_sample_id": 1, "last_sample_id": 50, "n_samples": 50}


@pytest.mark.parametrize(
    ("metric", "candidate", "production", "tolerance", "passed"),
    [
        ("rmse", 100.0, 100.0, 0.0, True),
        ("rmse", 101.9, 100.0, 0.02, True),
        ("rmse", 102.1, 100.0, 0.02, False),
        ("rmse", 100.1, 100.0, 0.0, False),
        ("accuracy", 0.90, 0.90, 0.0, True),
        ("accuracy", 0.883, 0.90, 0.02, True),  # 0.90 - 0.018
        ("accuracy", 0.881, 0.90, 0.02, False),
        ("accuracy", 0.95, 0.90, 0.0, True),
    ],
)
def test_guard_allows_the_tolerance_as_a_fraction_of_production(
    metric: str, candidate: float, production: float, tolerance: float, passed: bool
) -> None:
    guard = Guard(metric, candidate, production, 3, tolerance, WINDOW)
    assert guard.passed is passed
    view = guard.view()
    assert view["passed"] is passed and view["production_version"] == 3
    verdict = "is no worse than" if passed else "is worse than"
    assert verdict in reason(view) and "(version 3:" in reason(view)
