"""Unit tests for mlserve.datasets.stats: logical types and per-column summaries."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from mlserve.datasets.stats import (
    MAX_HISTOGRAM_BINS,
    TOP_CATEGORIES,
    column_summaries,
    column_summary,
    histogram,
    logical_type,
)


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([True, False, True]), "boolean"),
        (pd.Series([True, None, False], dtype="boolean"), "boolean"),
        (pd.Series([1, 2, 3]), "integer"),
        (pd.Series([1, 2, 3], dtype="int8"), "integer"),
        (pd.Series([1, 2, 3], dtype="uint32"), "integer"),
        (pd.Series([1, None, 3], dtype="Int64"), "integer"),
        (pd.Series([1.5, 2.5]), "number"),
        # Whole numbers with a missing value are stored as float: stays "number".
        (pd.Series([1.0, None, 3.0]), "number"),
        (pd.Series([1.0, 2.0], dtype="float32"), "number"),
        (pd.Series(["a", "b"]), "string"),
        (pd.Series(["a", None], dtype=object), "string"),
        (pd.Series(["a", "b"], dtype="category"), "string"),
        (pd.Series(pd.to_datetime(["2020-01-01", "2021-06-30"])), "string"),
    ],
    ids=[
        "bool",
        "nullable-bool",
        "int64",
        "int8",
        "uint32",
        "nullable-Int64",
        "float",
        "float-with-nan",
        "float32",
        "str",
        "object",
        "category",
        "datetime",
    ],
)
def test_logical_type_maps_dtype(series: pd.Series, expected: str) -> None:
    assert logical_type(series) == expected


def test_column_summary_numeric_statistics_match_hand_computation() -> None:
    values = [2.0, 4.0, None, 4.0, 5.0]
    summary = column_summary("x", pd.Series(values))
    present = [v for v in values if v is not None]
    assert summary["name"] == "x"
    assert summary["type"] == "number"
    assert summary["dtype"] == "float64"
    assert summary["missing"] == 1
    assert summary["unique"] == 3
    assert summary["min"] == 2.0
    assert summary["max"] == 5.0
    assert summary["mean"] == pytest.approx(15.0 / 4)
    # Sample standard deviation (ddof=1), as pandas computes it.
    assert summary["std"] == pytest.approx(statistics.stdev(present))
    assert "top" not in summary


def test_column_summary_integer_column_reports_python_floats() -> None:
    summary = column_summary("n", pd.Series([3, 1, 2], dtype="int64"))
    assert summary["type"] == "integer"
    assert summary["dtype"] == "int64"
    assert (summary["min"], summary["max"], summary["mean"], summary["std"]) == (1.0, 3.0, 2.0, 1.0)
    for key in ("min", "max", "mean", "std"):
        assert type(summary[key]) is float


def test_column_summary_single_value_has_no_std() -> None:
    summary = column_summary("one", pd.Series([7]))
    assert summary["std"] is None
    assert summary["min"] == summary["max"] == summary["mean"] == 7.0
    assert summary["unique"] == 1


def test_column_summary_nullable_integer_ignores_missing() -> None:
    summary = column_summary("n", pd.Series([4, None, 6], dtype="Int64"))
    assert summary["type"] == "integer"
    assert summary["missing"] == 1
    assert summary["mean"] == 5.0
    assert summary["std"] == pytest.approx(math.sqrt(2.0))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_column_summary_non_finite_values_become_none() -> None:
    summary = column_summary("x", pd.Series([1.0, np.inf]))
    assert summary["min"] == 1.0
    assert summary["max"] is None
    assert summary["mean"] is None
    assert summary["std"] is None


def test_column_summary_string_column_top_counts_most_frequent_first() -> None:
    series = pd.Series(["b", "a", "b", None, "c", "b", "a"], dtype=object)
    summary = column_summary("s", series)
    assert summary["type"] == "string"
    assert summary["missing"] == 1
    assert summary["unique"] == 3
    assert summary["top"] == [
        {"value": "b", "count": 3},
        {"value": "a", "count": 2},
        {"value": "c", "count": 1},
    ]
    assert "mean" not in summary


def test_column_summary_top_is_capped_at_ten_categories() -> None:
    rng = np.random.default_rng(0)
    letters = [chr(ord("a") + i) for i in range(15)]
    # Letter i appears 20 - i times, so the top ten are a..j with counts 20..11.
    values = [letter for i, letter in enumerate(letters) for _ in range(20 - i)]
    series = pd.Series(rng.permutation(np.array(values, dtype=object)))
    summary = column_summary("s", series)
    assert TOP_CATEGORIES == 10
    assert summary["unique"] == 15
    assert summary["top"] == [{"value": letters[i], "count": 20 - i} for i in range(10)]


def test_column_summary_boolean_column_uses_top_not_mean() -> None:
    summary = column_summary("flag", pd.Series([True, False, True, True]))
    assert summary["type"] == "boolean"
    assert summary["unique"] == 2
    assert summary["top"] == [{"value": "True", "count": 3}, {"value": "False", "count": 1}]
    assert "mean" not in summary


def test_column_summary_all_missing_column_counts_missing() -> None:
    summary = column_summary("empty", pd.Series([None, None, None], dtype="float64"))
    assert summary["type"] == "number"
    assert summary["missing"] == 3
    assert summary["unique"] == 0


def test_column_summary_values_are_plain_python_types() -> None:
    summary = column_summary("s", pd.Series(["x", "x", "y"]))
    assert type(summary["missing"]) is int
    assert type(summary["unique"]) is int
    assert all(type(item["count"]) is int for item in summary["top"])
    assert all(type(item["value"]) is str for item in summary["top"])


def test_column_summaries_follow_column_order_and_stringify_names() -> None:
    frame = pd.DataFrame({"b": [1, 2], "a": ["x", "y"], 3: [0.5, 1.5]})
    summaries = column_summaries(frame)
    assert [s["name"] for s in summaries] == ["b", "a", "3"]
    assert [s["type"] for s in summaries] == ["integer", "string", "number"]


def test_column_summaries_of_frame_without_columns_is_empty() -> None:
    assert column_summaries(pd.DataFrame()) == []


# --------------------------------------------------------------------------- histograms


def test_histogram_of_few_values_is_numpys_auto_rule() -> None:
    values = np.random.default_rng(1).gamma(2.0, size=60)
    result = histogram(values)
    assert result is not None
    counts, edges = np.histogram(values, bins="auto")
    assert len(counts) <= MAX_HISTOGRAM_BINS
    assert result["edges"] == edges.tolist()
    assert result["counts"] == counts.tolist()


def test_histogram_of_many_values_is_capped_at_twenty_equal_bins() -> None:
    values = np.random.default_rng(2).normal(size=50_000)
    assert len(np.histogram_bin_edges(values, bins="auto")) - 1 > MAX_HISTOGRAM_BINS
    result = histogram(values)
    assert result is not None
    assert MAX_HISTOGRAM_BINS == 20
    assert len(result["counts"]) == 20 and len(result["edges"]) == 21
    assert result["edges"][0] == values.min() and result["edges"][-1] == values.max()
    widths = np.diff(result["edges"])
    assert widths == pytest.approx(np.full(20, widths[0]))
    assert sum(result["counts"]) == 50_000


def test_column_summary_histogram_counts_sum_to_non_missing_values() -> None:
    values = [1.0, 2.0, None, 2.5, 7.0, None, 3.0]
    summary = column_summary("x", pd.Series(values, dtype="float64"))
    bins = summary["histogram"]
    assert sum(bins["counts"]) == len(values) - summary["missing"] == 5
    assert len(bins["edges"]) == len(bins["counts"]) + 1
    assert bins["edges"][0] == 1.0 and bins["edges"][-1] == 7.0
    assert all(type(e) is float for e in bins["edges"])
    assert all(type(c) is int for c in bins["counts"])


def test_column_summary_integer_histogram_ignores_missing() -> None:
    summary = column_summary("n", pd.Series([4, None, 6, 6], dtype="Int64"))
    counts, edges = np.histogram([4.0, 6.0, 6.0], bins="auto")
    assert summary["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
    assert sum(summary["histogram"]["counts"]) == 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_column_summary_histogram_leaves_infinities_out() -> None:
    summary = column_summary("x", pd.Series([1.0, np.inf, 2.0, -np.inf, 3.0]))
    assert sum(summary["histogram"]["counts"]) == 3
    assert summary["histogram"]["edges"][0] == 1.0 and summary["histogram"]["edges"][-1] == 3.0


def test_column_summary_constant_column_has_one_bin() -> None:
    summary = column_summary("c", pd.Series([5.0, 5.0, 5.0]))
    assert summary["histogram"] == {"edges": [4.5, 5.5], "counts": [3]}


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([None, None], dtype="float64"),
        pd.Series(["a", "b"]),
        pd.Series([True, False]),
    ],
    ids=["all-missing", "text", "boolean"],
)
def test_column_summary_without_numbers_has_no_histogram(series: pd.Series) -> None:
    assert "histogram" not in column_summary("x", series)


def test_histogram_of_no_finite_value_is_none() -> None:
    assert histogram([np.nan, np.inf]) is None
    assert histogram([]) is None
