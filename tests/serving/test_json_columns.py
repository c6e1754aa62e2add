"""Whole columns of JSON values: what the one-pass checks take, and what they decline."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlserve.serving.json_columns import Decline, json_column

BINARY = [0, 1] * 50  # every value a 0 or a 1: the types are looked at everywhere

TAKEN: dict[str, tuple[str, bool, list[Any], list[float]]] = {
    "floats": ("number", False, [0.5, -2.0, 1e300], [0.5, -2.0, 1e300]),
    "ints and floats": ("number", False, [3, 2.5, 2**53 + 1], [3.0, 2.5, float(2**53 + 1)]),
    "a binary feature": ("integer", False, BINARY, [float(v) for v in BINARY]),
    "zeros and ones among others": ("number", False, [0, 1.0, 7.5] * 3, [0.0, 1.0, 7.5] * 3),
    "a null where allowed": ("number", True, [1.5, None], [1.5, math.nan]),
}


@pytest.mark.parametrize("json_values", [True, False])
@pytest.mark.parametrize(
    ("kind", "nullable", "values", "expected"), TAKEN.values(), ids=TAKEN.keys()
)
def test_numbers_are_taken_by_both_checks(
    kind: str, nullable: bool, values: list[Any], expected: list[float], json_values: bool
) -> None:
    column, has_null = json_column(kind, nullable, values, None, json_values=json_values)
    assert column.dtype == np.float64
    np.testing.assert_array_equal(column, np.array(expected))
    assert has_null == (None in values)


DECLINED: dict[str, tuple[str, bool, list[Any]]] = {
    "true among numbers": ("number", False, [2.5, 7.0, True, 9.0]),
    "false among zeros and ones": ("integer", False, [*BINARY, False]),
    "text that reads as a number": ("number", False, [1.5, "2.5"]),
    "a null where none is allowed": ("number", False, [1.5, None]),
    "an integer beyond a double": ("number", False, [1.0, 10**400]),
    "a fraction for an integer": ("integer", False, [1, 2.5]),
    "a list": ("number", False, [1.0, [2.0]]),
    "NUL in text": ("string", False, ["a", "b\x00"]),
    "a number among text": ("string", False, ["a", 1]),
}


@pytest.mark.parametrize("json_values", [True, False])
@pytest.mark.parametrize(("kind", "nullable", "values"), DECLINED.values(), ids=DECLINED.keys())
def test_what_the_signature_refuses_is_declined(
    kind: str, nullable: bool, values: list[Any], json_values: bool
) -> None:
    with pytest.raises(Decline):
        json_column(kind, nullable, values, None, json_values=json_values)


def test_a_numpy_integer_is_declined_by_the_general_check() -> None:
    """Without ``json_values`` the general check runs; with it, only JSON types may come."""
    with pytest.raises(Decline):
        json_column("number", False, [1.5, np.int64(3)], None, json_values=False)


@pytest.mark.parametrize("missing_text", [math.nan, "\x00"])
def test_text_with_nulls_holds_the_missing_marker(missing_text: Any) -> None:
    column, has_null = json_column("string", True, ["a", None, "b"], missing_text, json_values=True)
    assert has_null and column.dtype == object
    assert column[0] == "a" and column[2] == "b" and column[1] is missing_text
