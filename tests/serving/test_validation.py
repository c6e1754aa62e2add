"""InstanceValidator's three paths (columnar, single row, row by row) agree on every input."""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.errors import ValidationFailed
from mlserve.serving.onnx import MISSING_TEXT
from mlserve.serving.validation import InstanceValidator, _Decline
from mlserve.training.signature import model_frame

SIGNATURE = {
    "inputs": [
        {"name": "num", "type": "number", "nullable": False},
        {"name": "int", "type": "integer", "nullable": False},
        {"name": "flag", "type": "boolean", "nullable": False},
        {"name": "text", "type": "string", "nullable": False},
        {"name": "num_n", "type": "number", "nullable": True},
        {"name": "int_n", "type": "integer", "nullable": True},
        {"name": "flag_n", "type": "boolean", "nullable": True},
        {"name": "text_n", "type": "string", "nullable": True},
    ],
    "output": {"name": "y", "type": "number"},
}
FEATURES = [f["name"] for f in SIGNATURE["inputs"]]
KINDS = {f["name"]: (f["type"], f["nullable"]) for f in SIGNATURE["inputs"]}

# Values JSON can carry that the signature accepts, per type.
VALID: dict[str, list[Any]] = {
    "number": [0.0, -0.0, 1.5, -2.25, 7, -3, 10**30, 2**53 + 1, 1e308, 5e-324, 0.1],
    "integer": [0, 3, -4, 3.0, -7.0, 1e20, 10**30, 2**63, 2**53 + 1],
    "boolean": [True, False],
    "string": ["", "a", "b", "zzz", "é", "  spaced ", "日本", "\U0001f600", "0", "null"],
}
# Values the signature refuses, per type (None only where the feature is not nullable).
INVALID: dict[str, list[Any]] = {
    "number": [
        math.nan,
        math.inf,
        -math.inf,
        True,
        False,
        "1.5",
        10**400,
        -(10**400),
        [1.0],
        {"v": 1},
        np.int64(3),
    ],
    "integer": [3.5, -0.5, math.nan, math.inf, True, "3", 10**400, [3], 1e-300],
    "boolean": [1, 0, 1.0, "true", math.nan, [True]],
    "string": [1, 0.5, True, ["a"], "a\x00b", MISSING_TEXT, "\x00", b"bytes"],
}
# Accepted by the row-by-row path but not plain JSON types: the fast paths must decline.
ODD_VALID: dict[str, list[Any]] = {
    "number": [np.float64(2.5), np.float64(-0.0)],
    "integer": [np.float64(4.0)],
    "boolean": [],
    "string": [np.str_("np-text")],
}


def _valid_value(rng: random.Random, name: str, odd: bool = False) -> Any:
    kind, nullable = KINDS[name]
    if nullable and rng.random() < 0.2:
        return None
    if odd and ODD_VALID[kind] and rng.random() < 0.5:
        return rng.choice(ODD_VALID[kind])
    if kind == "number" and rng.random() < 0.5:
        return rng.uniform(-1e6, 1e6)
    if kind == "integer" and rng.random() < 0.5:
        return rng.randint(-(10**9), 10**9)
    return rng.choice(VALID[kind])


def _valid_row(rng: random.Random, odd: bool = False) -> dict[str, Any]:
    names = list(FEATURES)
    if rng.random() < 0.3:
        rng.shuffle(names)
    return {name: _valid_value(rng, name, odd) for name in names}


def _mutate(rng: random.Random, row: dict[str, Any]) -> Any:
    """One way of breaking (or oddly re-packing) a row."""
    name = rng.choice(FEATURES)
    kind, nullable = KINDS[name]
    choice = rng.randrange(8)
    if choice <= 2:
        return {**row, name: rng.choice(INVALID[kind])}
    if choice == 3:
        if nullable:
            return {**row, name: rng.choice(INVALID[kind])}
        return {**row, name: None}
    if choice == 4:
        return {k: v for k, v in row.items() if k != name}
    if choice == 5:
        extra = rng.choice(["extra", "NUM", "num ", ""])
        if rng.random() < 0.5:  # same width: one feature replaced by an unknown one
            row = {k: v for k, v in row.items() if k != name}
        return {**row, extra: 1.0}
    if choice == 6:
        return rng.choice([[1.0, 2, True, "a"], None, "row", 5, OrderedDict(row)])
    return {**row, name: rng.choice(ODD_VALID[kind] or INVALID[kind])}


def _batch(rng: random.Random) -> Any:
    size = rng.choice([1, 1, 1, 2, 3, 5, 8])
    rows: list[Any] = [_valid_row(rng) for _ in range(size)]
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        index = rng.randrange(size)
        rows[index] = _mutate(rng, rows[index]) if isinstance(rows[index], dict) else rows[index]
    if rng.random() < 0.02:
        return rng.choice([[], tuple(rows), {"instances": rows}, None])
    return rows


def _describe(array: np.ndarray) -> tuple[str, tuple[int, ...], list[Any]]:
    """A comparable view of an array: dtype, shape and each value's type and exact value."""
    values: list[Any] = []
    for value in array.tolist():
        if isinstance(value, float):
            values.append(("float", "nan" if math.isnan(value) else value.hex()))
        else:
            values.append((type(value).__name__, value))
    return array.dtype.str, array.shape, values


def _outcome(validator: InstanceValidator, instances: Any, json_values: bool = False) -> Any:
    try:
        columns = validator.columns(instances, json_values=json_values)
    except ValidationFailed as exc:
        return ("error", exc.message, exc.details)
    return ("ok", [(name, _describe(values)) for name, values in columns.items()])


def _row_by_row(monkeypatch: pytest.MonkeyPatch, validator: InstanceValidator) -> None:
    def decline(instances: Any, json_values: bool) -> Any:
        raise _Decline

    monkeypatch.setattr(validator, "_fast", decline)


@pytest.mark.parametrize("missing_text", [math.nan, MISSING_TEXT], ids=["nan", "onnx-marker"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_paths_equal_row_by_row_path(
    monkeypatch: pytest.MonkeyPatch, seed: int, missing_text: Any
) -> None:
    rng = random.Random(seed)
    batches = [_batch(rng) for _ in range(1500)]
    fast = InstanceValidator(SIGNATURE, missing_text=missing_text)
    slow = InstanceValidator(SIGNATURE, missing_text=missing_text)
    _row_by_row(monkeypatch, slow)
    outcomes = {"ok": 0, "error": 0}
    for instances in batches:
        got, expected = _outcome(fast, instances), _outcome(slow, instances)
        assert got == expected, instances
        outcomes[got[0]] += 1
    # Both kinds of outcome occur often enough for the comparison to mean something.
    assert outcomes["ok"] > 400 and outcomes["error"] > 400, outcomes


def _as_parsed_json(batch: Any) -> Any:
    """``batch`` as a JSON parser gives it back (NaN and infinity kept, as the lenient
    parse keeps them), or ``None`` where it holds what JSON cannot carry."""
    try:
        return json.loads(json.dumps(batch))
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_one_pass_number_check_equals_the_row_by_row_path(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """``json_values``: the same outcome on every batch of JSON types, many rows long so
    that whole columns go through the one-pass check, booleans among the numbers."""
    rng = random.Random(seed)
    fast = InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT)
    slow = InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT)
    _row_by_row(monkeypatch, slow)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(600):
        rows: list[Any] = [_valid_row(rng) for _ in range(rng.choice([2, 9, 40]))]
        for _ in range(rng.choice([0, 0, 1])):
            index = rng.randrange(len(rows))
            rows[index] = _mutate(rng, rows[index])
        batch = _as_parsed_json(rows)
        if batch is None:
            continue
        got, expected = _outcome(fast, batch, True), _outcome(slow, batch)
        assert got == expected, batch
        outcomes[got[0]] += 1
    assert outcomes["ok"] > 150 and outcomes["error"] > 100, outcomes


@pytest.mark.parametrize("json_values", [False, True])
@pytest.mark.parametrize("size", [1, 2, 7])
def test_fast_paths_take_plain_json_batches(size: int, json_values: bool) -> None:
    """Valid batches of plain JSON types never fall back to the row-by-row path."""
    rng = random.Random(size)
    validator = InstanceValidator(SIGNATURE)
    declined = []
    original = validator._fast

    def spy(instances: list[Any], json_values: bool) -> Any:
        try:
            return original(instances, json_values)
        except _Decline:
            declined.append(instances)
            raise

    validator._fast = spy  # type: ignore[method-assign]
    for _ in range(300):
        validator.columns([_valid_row(rng) for _ in range(size)], json_values=json_values)
    assert declined == []


@pytest.mark.parametrize("size", [1, 4])
def test_odd_but_valid_types_fall_back_and_match(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    rng = random.Random(10 + size)
    validator = InstanceValidator(SIGNATURE)
    slow = InstanceValidator(SIGNATURE)
    _row_by_row(monkeypatch, slow)
    for _ in range(200):
        rows = [_valid_row(rng, odd=True) for _ in range(size)]
        assert _outcome(validator, rows) == _outcome(slow, rows)
    rows = [{**_valid_row(rng), "num": np.float64(2.5)} for _ in range(size)]
    assert validator.columns(rows)["num"].tolist() == [2.5] * size


@pytest.mark.parametrize(
    ("rows", "field", "row", "pattern"),
    [
        # The first failing row is named, whichever path the batch started on.
        ([{"num": math.nan}], "num", 0, "expected a finite number, got nan"),
        ([{}, {"int": 2.5}], "int", 1, "whole number, got 2.5"),
        ([{}, {}, {"text": "a\x00"}], "text", 2, "NUL characters are not allowed"),
        ([{"text_n": MISSING_TEXT}], "text_n", 0, "NUL characters"),
        ([{}, {"flag": None}, {"num": "x"}], "flag", 1, "null is not allowed"),
        ([{"num_n": math.inf}, {}], "num_n", 0, "finite number, got inf"),
        ([{}, {"int_n": 10**400}], "int_n", 1, "whole number"),
        ([{"flag_n": 1}], "flag_n", 0, "true or false, got 1"),
    ],
    ids=["nan", "fraction", "nul", "onnx-marker", "null-first", "inf", "huge-int", "bool-int"],
)
def test_first_failing_row_and_field_named(
    rows: list[dict[str, Any]], field: str, row: int, pattern: str
) -> None:
    base = {
        "num": 1.0,
        "int": 2,
        "flag": True,
        "text": "a",
        "num_n": None,
        "int_n": None,
        "flag_n": None,
        "text_n": None,
    }
    instances = [{**base, **changes} for changes in rows]
    with pytest.raises(ValidationFailed, match=pattern) as caught:
        InstanceValidator(SIGNATURE).columns(instances)
    assert caught.value.details == {"field": field, "row": row}
    assert caught.value.message.startswith(f"instances[{row}].{field}: ")


# --------------------------------------------------------------------------- missing text


@pytest.mark.parametrize("size", [1, 3], ids=["single-row", "columnar"])
def test_missing_text_marker_stands_for_null_text(size: int) -> None:
    rng = random.Random(5)
    rows = [{**_valid_row(rng), "text_n": None, "num_n": None} for _ in range(size)]
    marked = InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT).columns(rows)
    assert marked["text_n"].dtype == object
    assert marked["text_n"].tolist() == [MISSING_TEXT] * size
    assert np.isnan(marked["num_n"]).all()
    default = InstanceValidator(SIGNATURE).columns(rows)
    assert all(isinstance(v, float) and math.isnan(v) for v in default["text_n"])
    assert [v for v in marked["text"]] == [v for v in default["text"]]


def test_frame_holds_missing_text_in_object_column() -> None:
    validator = InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT)
    rows = [_valid_row(random.Random(1)) | {"text_n": None}, _valid_row(random.Random(2))]
    rows[1]["text_n"] = "q"
    frame = validator.frame(validator.columns(rows))
    assert list(frame.columns) == FEATURES
    assert frame["text_n"].dtype == object
    assert frame["text_n"].tolist() == [MISSING_TEXT, "q"]


# --------------------------------------------------------------------------- columns_from_frame


@pytest.mark.parametrize("missing_text", [math.nan, MISSING_TEXT], ids=["nan", "onnx-marker"])
@pytest.mark.parametrize("seed", [0, 1])
def test_columns_from_frame_equals_columns(seed: int, missing_text: Any) -> None:
    rng = random.Random(seed)
    validator = InstanceValidator(SIGNATURE, missing_text=missing_text)
    for size in (1, 2, 9, 40):
        rows = [_valid_row(rng) for _ in range(size)]
        columns = validator.columns(rows)
        expected = [(name, _describe(values)) for name, values in columns.items()]
        # A frame of model input dtypes as training prepares it ...
        prepared = model_frame(pd.DataFrame(rows), SIGNATURE)
        from_training = validator.columns_from_frame(prepared)
        assert [(n, _describe(v)) for n, v in from_training.items()] == expected
        # ... and the frame the scikit-learn runtime builds from the columns.
        round_trip = validator.columns_from_frame(validator.frame(columns))
        assert [(n, _describe(v)) for n, v in round_trip.items()] == expected


WARNED_SIGNATURE = {
    "inputs": [
        {"name": "num", "type": "number", "nullable": False, "imputed": True},
        {"name": "text", "type": "string", "nullable": True, "categories": ["a", "b"]},
        {"name": "free", "type": "string", "nullable": True},
    ],
    "output": {"name": "y", "type": "number"},
}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"num": 1.0, "text": "a", "free": "x"}, []),
        ({"num": None, "text": "a", "free": "x"}, [("num", "null_imputed")]),
        ({"num": 1.0, "text": "c", "free": "x"}, [("text", "unseen_category")]),
        (
            {"num": 1.0, "text": None, "free": None},
            [("text", "null_imputed"), ("free", "null_imputed")],
        ),
        (
            {"num": None, "text": "zz", "free": "never seen"},
            [("num", "null_imputed"), ("text", "unseen_category")],
        ),
    ],
)
@pytest.mark.parametrize("missing_text", [np.nan, MISSING_TEXT])
def test_one_row_warnings_equal_the_general_path(
    row: dict[str, Any], expected: list[tuple[str, str]], missing_text: Any
) -> None:
    from mlserve.serving.warnings import prediction_warnings

    validator = InstanceValidator(WARNED_SIGNATURE, missing_text)  # type: ignore[arg-type]
    columns = validator.columns([row])
    general = prediction_warnings(
        dict(columns),  # a plain dict: the one-row marker does not apply
        {f["name"]: f["type"] for f in WARNED_SIGNATURE["inputs"]},  # type: ignore[index]
        {"text": frozenset({"a", "b"})},
        missing_text,
    )
    assert validator.warnings(columns) == general
    assert [(w["field"], w["warning"]) for w in general] == expected
    # Two copies of the row go through the many-rows path: the same warnings per row.
    twice = validator.warnings(validator.columns([row, row]))
    assert [w for w in twice if w["row"] == 0] == general
    assert len(twice) == 2 * len(general)


BATCH_WARNINGS = [
    ({"num": 1.0, "text": "a", "free": "x"}, []),
    ({"num": None, "text": "b", "free": "y"}, [("num", "null_imputed")]),
    ({"num": 2.0, "text": "c", "free": "z"}, [("text", "unseen_category")]),
    (
        {"num": 3.0, "text": None, "free": None},
        [("text", "null_imputed"), ("free", "null_imputed")],
    ),
]


@pytest.mark.parametrize(
    ("rows", "suspects"),
    [
        ([0, 0, 0], set()),
        ([0, 1, 0], {"num"}),
        ([0, 2], {"text"}),
        ([3, 0], {"text", "free"}),
        ([0, 1, 2, 3], {"num", "text", "free"}),
    ],
)
@pytest.mark.parametrize("body", ["records", "columnar"])
@pytest.mark.parametrize("missing_text", [np.nan, MISSING_TEXT])
def test_batch_warnings_look_at_the_suspect_columns_and_equal_the_general_path(
    rows: list[int], suspects: set[str], body: str, missing_text: Any
) -> None:
    from mlserve.serving.warnings import prediction_warnings

    validator = InstanceValidator(WARNED_SIGNATURE, missing_text)  # type: ignore[arg-type]
    records = [BATCH_WARNINGS[i][0] for i in rows]
    if body == "records":
        columns = validator.columns(records)
    else:
        columns = validator.columns_from_inputs({k: [r[k] for r in records] for k in records[0]})
    assert set(columns.suspects) == suspects  # type: ignore[attr-defined]
    general = prediction_warnings(
        dict(columns),  # a plain dict: every column is looked at
        {f["name"]: f["type"] for f in WARNED_SIGNATURE["inputs"]},  # type: ignore[index]
        {"text": frozenset({"a", "b"})},
        missing_text,
    )
    assert validator.warnings(columns) == general
    expected = [(row, *w) for row, i in enumerate(rows) for w in BATCH_WARNINGS[i][1]]
    assert [(w["row"], w["field"], w["warning"]) for w in general] == expected
