"""Column roles (mlserve.datasets.roles): id-like, constant, high-cardinality, free text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlserve.datasets.roles import HIGH_CARDINALITY_MIN_VALUES, column_role, role_from_summary
from mlserve.datasets.stats import column_summaries, logical_type
from tests.titanic import titanic_frame

N = 100
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("series", "role", "reason"),
    [
        (pd.Series(np.arange(N)), "id", "monotone integer index"),
        (pd.Series(np.arange(N)[::-1] * 3 + 7), "id", "monotone integer index"),
        (pd.Series(RNG.permutation(N)), "id", "unique per row"),
        (pd.Series([f"u{i}" for i in RNG.permutation(N)]), "id", "unique per row"),
        (pd.Series([5] * N), "constant", "1 distinct value"),
        (pd.Series([None] * N, dtype=object), "constant", "0 distinct values"),
        (pd.Series(["x"] * (N - 1) + [None]), "constant", "1 distinct value"),
        (pd.Series([f"t{i % 60}" for i in range(N)]), "high_cardinality", "60 distinct"),
        (
            pd.Series([f"the quick brown fox number {i} jumps" for i in range(N)]),
            "free_text",
            "7.0 words",
        ),
        (pd.Series(RNG.random(N)), "feature", ""),  # unique floats are measurements
        (pd.Series([f"c{i % 50}" for i in range(N)]), "feature", ""),  # 50: not above
        (pd.Series(RNG.integers(0, 5, N)), "feature", ""),
        (pd.Series(np.arange(10)), "feature", ""),  # too few rows to call it an id
    ],
    ids=[
        "row-number",
        "decreasing-index",
        "shuffled-unique-int",
        "unique-text",
        "constant",
        "all-missing",
        "constant-with-missing",
        "high-cardinality",
        "free-text",
        "unique-floats",
        "at-threshold",
        "small-ints",
        "tiny-table",
    ],
)
def test_column_role(series: pd.Series, role: str, reason: str) -> None:
    got, why = column_role(series, logical_type(series))
    assert got == role
    assert reason in why


def test_threshold_is_documented_value() -> None:
    assert HIGH_CARDINALITY_MIN_VALUES == 50


def test_titanic_roles() -> None:
    roles = {s["name"]: s["role"] for s in column_summaries(titanic_frame())}
    assert roles == {
        "PassengerId": "id",
        "Survived": "feature",
        "Pclass": "feature",
        "Name": "id",
        "Sex": "feature",
        "Age": "feature",
        "SibSp": "feature",
        "Parch": "feature",
        "Ticket": "high_cardinality",
        "Fare": "feature",
        "Cabin": "high_cardinality",
        "Embarked": "feature",
    }


@pytest.mark.parametrize(
    ("summary", "role"),
    [
        ({"name": "a", "type": "integer", "dtype": "int64", "missing": 0, "unique": 30}, "id"),
        ({"name": "a", "type": "string", "dtype": "object", "missing": 0, "unique": 30}, "id"),
        (
            {"name": "a", "type": "number", "dtype": "float64", "missing": 0, "unique": 30},
            "feature",
        ),
        ({"name": "a", "type": "integer", "dtype": "int64", "missing": 0, "unique": 1}, "constant"),
        ({"name": "a", "type": "string", "dtype": "object", "missing": 1, "unique": 29}, "feature"),
    ],
    ids=["int-unique", "text-unique", "float-unique", "constant", "text-with-missing"],
)
def test_role_from_old_summary(summary: dict, role: str) -> None:  # type: ignore[type-arg]
    assert role_from_summary(summary, 30)[0] == role  # type: ignore[arg-type]


def test_stored_role_wins() -> None:
    summary = {"name": "a", "type": "integer", "dtype": "int64", "missing": 0, "unique": 30}
    summary |= {"role": "feature", "role_reason": ""}
    assert role_from_summary(summary, 30) == ("feature", "")  # type: ignore[arg-type]
