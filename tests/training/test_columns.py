"""Which columns a job trains on (mlserve.training.columns.choose_features)."""

from __future__ import annotations

from mlserve.datasets.stats import column_summaries
from mlserve.training.columns import choose_features
from tests.titanic import FEATURES, titanic_frame


def _columns() -> dict:  # type: ignore[type-arg]
    return {s["name"]: s for s in column_summaries(titanic_frame())}


def test_defaults_leave_out_id_like_columns_with_reasons() -> None:
    features, decisions = choose_features(_columns(), target="Survived", features=None, n_rows=800)
    assert features == FEATURES
    by_name = {d["name"]: d for d in decisions}
    assert "Survived" not in by_name
    assert by_name["PassengerId"]["used"] is False
    assert by_name["PassengerId"]["reason"].startswith("left out: id column, monotone")
    assert by_name["Name"]["reason"].startswith("left out: id column, unique per row")
    assert by_name["Ticket"] == {
        "name": "Ticket",
        "role": "high_cardinality",
        "used": True,
        "reason": "641 distinct text values (more than 50)",
    }


def test_explicit_features_always_win() -> None:
    features, decisions = choose_features(
        _columns(), target="Survived", features=["PassengerId", "Sex"], n_rows=800
    )
    assert features == ["PassengerId", "Sex"]
    used = {d["name"]: (d["used"], d["reason"]) for d in decisions}
    assert used["PassengerId"] == (True, "named in features")
    assert used["Age"] == (False, "not named in features")
