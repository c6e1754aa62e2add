"""Unit tests for mlserve.training.signature: infer_signature, model_frame, to_json_scalar."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlserve.training.signature import (
    MAX_CATEGORIES_LISTED,
    infer_signature,
    model_frame,
    to_json_scalar,
)


@pytest.fixture
def features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1.5, None, 3.0, 4.0],
            "i": np.array([1, 2, 3, 4], dtype="int64"),
            "b": [True, False, True, False],
            "s": pd.Series(["z", "a", None, "a"], dtype=object),
        }
    )


def test_infer_signature_inputs_types_nullable_and_categories(features: pd.DataFrame) -> None:
    target = pd.Series([0.1, 0.2, 0.3, 0.4], name="y")
    signature = infer_signature(features, target, "regression", classes=None)
    assert signature["inputs"] == [
        {"name": "n", "type": "number", "nullable": True, "imputed": True},
        {"name": "i", "type": "integer", "nullable": False, "imputed": True},
        {"name": "b", "type": "boolean", "nullable": False, "imputed": True},
        {
            "name": "s",
            "type": "string",
            "nullable": True,
            "imputed": True,
            "categories": ["a", "z"],
        },
    ]
    assert signature["output"] == {"name": "y", "type": "number"}


def test_infer_signature_regression_ignores_classes(features: pd.DataFrame) -> None:
    target = pd.Series([1, 2, 3, 4], name="y")
    signature = infer_signature(features, target, "regression", classes=[1, 2, 3, 4])
    assert signature["output"] == {"name": "y", "type": "number"}


@pytest.mark.parametrize(
    ("target", "classes", "expected_type", "expected_classes"),
    [
        (
            pd.Series(["no", "yes", "no", "yes"], dtype=object),
            np.array(["no", "yes"]),
            "string",
            ["no", "yes"],
        ),
        (pd.Series([0, 1, 2, 1]), np.array([0, 1, 2]), "integer", [0, 1, 2]),
        (pd.Series([True, False, True, True]), np.array([False, True]), "boolean", [False, True]),
    ],
    ids=["string", "integer", "boolean"],
)
def test_infer_signature_classification_output(
    features: pd.DataFrame,
    target: pd.Series,
    classes: np.ndarray,
    expected_type: str,
    expected_classes: list[object],
) -> None:
    signature = infer_signature(features, target.rename("label"), "classification", classes)
    assert signature["output"] == {
        "name": "label",
        "type": expected_type,
        "classes": expected_classes,
    }
    assert [type(c) for c in signature["output"]["classes"]] == [type(c) for c in expected_classes]


def test_infer_signature_classification_without_classes_is_number(features: pd.DataFrame) -> None:
    signature = infer_signature(features, pd.Series([0, 1, 0, 1], name="t"), "classification", None)
    assert signature["output"] == {"name": "t", "type": "number"}


def test_infer_signature_is_json_serialisable(features: pd.DataFrame) -> None:
    target = pd.Series([0, 1, 0, 1], name="t")
    signature = infer_signature(features, target, "classification", np.array([0, 1]))
    assert json.loads(json.dumps(signature)) == signature


def test_infer_signature_categories_are_sorted_strings() -> None:
    frame = pd.DataFrame({"c": pd.Series(["10", "9", "b", "A", "b", None], dtype=object)})
    signature = infer_signature(frame, pd.Series(range(6), name="y"), "regression", None)
    assert signature["inputs"][0]["categories"] == ["10", "9", "A", "b"]


def test_infer_signature_categories_capped() -> None:
    rng = np.random.default_rng(7)
    values = [f"v{i:05d}" for i in range(MAX_CATEGORIES_LISTED + 50)]
    frame = pd.DataFrame({"c": pd.Series(rng.permutation(values), dtype=object)})
    signature = infer_signature(frame, pd.Series(range(len(values)), name="y"), "regression", None)
    categories = signature["inputs"][0]["categories"]
    assert len(categories) == MAX_CATEGORIES_LISTED
    assert categories == sorted(values)[:MAX_CATEGORIES_LISTED]


def test_infer_signature_integer_names_become_strings() -> None:
    frame = pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]})
    signature = infer_signature(frame, pd.Series([1.0, 2.0], name=5), "regression", None)
    assert [spec["name"] for spec in signature["inputs"]] == ["0", "1"]
    assert signature["output"]["name"] == "5"


def test_infer_signature_pandas_string_dtype_is_string() -> None:
    frame = pd.DataFrame({"s": pd.Series(["x", None, "y"], dtype="string")})
    signature = infer_signature(frame, pd.Series([1.0, 2.0, 3.0], name="y"), "regression", None)
    assert signature["inputs"] == [
        {"name": "s", "type": "string", "nullable": True, "imputed": True, "categories": ["x", "y"]}
    ]


# --------------------------------------------------------------------------- model_frame


def _signature(features: pd.DataFrame) -> dict[str, object]:
    return infer_signature(features, pd.Series([0.0] * len(features), name="y"), "regression", None)


def test_model_frame_casts_numeric_and_boolean_to_float(features: pd.DataFrame) -> None:
    signature = _signature(features)
    request = pd.DataFrame(
        {"s": ["a", None], "b": [True, None], "i": ["7", None], "n": [1, 2]}, dtype=object
    )
    result = model_frame(request, signature)
    assert list(result.columns) == ["n", "i", "b", "s"]
    assert result.dtypes.to_dict() == {
        "n": np.float64,
        "i": np.float64,
        "b": np.float64,
        "s": object,
    }
    assert result["n"].tolist() == [1.0, 2.0]
    assert result["i"].iloc[0] == 7.0
    assert np.isnan(result["i"].iloc[1])
    assert result["b"].iloc[0] == 1.0
    assert np.isnan(result["b"].iloc[1])
    assert result["s"].iloc[0] == "a" and np.isnan(result["s"].iloc[1])


def test_model_frame_missing_text_is_nan_in_object_column(features: pd.DataFrame) -> None:
    signature = _signature(features)
    request = pd.DataFrame({"n": [1.0, 1.0], "i": [1, 1], "b": [False, False], "s": [np.nan, "z"]})
    result = model_frame(request, signature)
    assert result["s"].dtype == object
    assert np.isnan(result["s"].iloc[0]) and result["s"].iloc[1] == "z"
    assert result["b"].tolist() == [0.0, 0.0]


def test_model_frame_unparseable_number_becomes_nan(features: pd.DataFrame) -> None:
    signature = _signature(features)
    request = pd.DataFrame({"n": ["abc"], "i": [3], "b": [True], "s": ["a"]}, dtype=object)
    result = model_frame(request, signature)
    assert np.isnan(result["n"].iloc[0])
    assert result["i"].iloc[0] == 3.0


def test_model_frame_drops_extra_columns_and_keeps_index(features: pd.DataFrame) -> None:
    signature = _signature(features)
    request = features.assign(extra=["x"] * 4).set_axis([10, 11, 12, 13])
    result = model_frame(request, signature)
    assert list(result.columns) == ["n", "i", "b", "s"]
    assert list(result.index) == [10, 11, 12, 13]
    assert result["b"].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_model_frame_missing_column_raises_key_error(features: pd.DataFrame) -> None:
    signature = _signature(features)
    with pytest.raises(KeyError, match="'s'"):
        model_frame(features.drop(columns=["s"]), signature)


# --------------------------------------------------------------------------- to_json_scalar


@pytest.mark.parametrize(
    ("value", "expected", "expected_type"),
    [
        (np.int64(3), 3, int),
        (np.int32(-2), -2, int),
        (np.float32(1.5), 1.5, float),
        (np.float64(0.25), 0.25, float),
        (np.bool_(True), True, bool),
        (np.str_("abc"), "abc", str),
        ("plain", "plain", str),
        (7, 7, int),
        (None, None, type(None)),
    ],
)
def test_to_json_scalar_converts_numpy_scalars(
    value: object, expected: object, expected_type: type
) -> None:
    result = to_json_scalar(value)
    assert result == expected
    assert type(result) is expected_type
