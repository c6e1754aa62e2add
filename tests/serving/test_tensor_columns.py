"""Columns taken from decoded tensors as they are (V2 binary) equal what the JSON-list
path gives for the same values, or are declined (mlserve.serving.tensor_columns)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlserve.errors import ValidationFailed
from mlserve.serving.onnx_model import MISSING_TEXT
from mlserve.serving.tensor_columns import array_column
from mlserve.serving.validation import InstanceValidator

NAN, INF = float("nan"), float("inf")
SIGNATURE: Any = {
    "inputs": [
        {"name": "x", "type": "number", "nullable": True},
        {"name": "strict", "type": "number", "nullable": False},
        {"name": "count", "type": "integer", "nullable": False},
        {"name": "flag", "type": "boolean", "nullable": False},
        {"name": "text", "type": "string", "nullable": False},
    ],
    "output": {"name": "y", "type": "number"},
}
GOOD: dict[str, np.ndarray] = {
    "x": np.array([1.5, NAN]),
    "strict": np.array([0.0, -2.5]),
    "count": np.array([3, 4], dtype=np.int64),
    "flag": np.array([True, False]),
    "text": np.array(["a", "b"], dtype=object),
}


def _as_lists(arrays: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """What the JSON-list path receives for these tensors (oip._rows: NaN becomes None)."""
    out = {}
    for name, array in arrays.items():
        values = array.tolist()
        if array.dtype.kind == "f":
            values = [None if v != v else v for v in values]
        out[name] = values
    return out


def _list_path(validator: InstanceValidator, arrays: dict[str, np.ndarray]) -> Any:
    try:
        return validator.columns_from_inputs(_as_lists(arrays))
    except ValidationFailed as exc:
        return exc


@pytest.fixture(scope="module")
def validator() -> InstanceValidator:
    return InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT)


# (feature, replacement array, taken as is?)
CASES = [
    ("x", np.array([1.5, NAN]), True),
    ("x", np.array([1, 2], dtype=np.int32), True),
    ("x", np.array([1.0, INF]), False),  # the list path refuses infinity
    ("strict", np.array([NAN, 1.0]), False),  # null where none is allowed
    ("count", np.array([3.0, 4.0]), True),  # whole numbers as floats
    ("count", np.array([3.5, 4.0]), False),
    ("count", np.array([7, 9], dtype=np.uint8), True),
    ("flag", np.array([1.0, 0.0]), False),  # the list path wants true/false
    ("flag", np.array([False, True]), True),
    ("text", np.array(["a", "b\x00"], dtype=object), False),  # NUL is refused
    ("text", np.array([b"a", b"b"], dtype=object), False),
    ("text", np.array([1.0, 2.0]), False),
]


@pytest.mark.parametrize(("feature", "array", "taken"), CASES)
def test_taken_columns_equal_the_list_path_and_the_rest_are_declined(
    validator: InstanceValidator, feature: str, array: np.ndarray, taken: bool
) -> None:
    arrays = {**GOOD, feature: array}
    columns = validator.columns_from_arrays(arrays)
    expected = _list_path(validator, arrays)
    if not taken:
        assert columns is None
        return
    assert columns is not None
    assert not isinstance(expected, ValidationFailed), expected
    assert columns.keys() == expected.keys()
    for name, column in columns.items():
        assert column.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(column, expected[name])


@pytest.mark.parametrize(
    "arrays",
    [
        {k: v for k, v in GOOD.items() if k != "x"},  # a feature missing
        {**GOOD, "extra": np.array([1.0, 2.0])},
        {**GOOD, "x": np.array([1.0, 2.0, 3.0])},  # lengths differ
        {**GOOD, "x": np.array([[1.0, 2.0]])},  # not 1-D
        {k: v[:0] for k, v in GOOD.items()},  # no rows
    ],
    ids=["missing", "extra", "lengths", "2-D", "empty"],
)
def test_the_wrong_set_of_tensors_is_declined(
    validator: InstanceValidator, arrays: dict[str, np.ndarray]
) -> None:
    assert validator.columns_from_arrays(arrays) is None


def test_a_float_column_is_a_copy_of_the_tensor() -> None:
    tensor = np.frombuffer(np.array([1.0, 2.0]).tobytes())  # read-only, as decoded
    column = array_column("number", False, tensor)
    assert column is not None and column is not tensor and column.flags.writeable
