"""Converters for skl2onnx: the text encoders of mlserve's preprocessing, in float64.

Each text feature's value becomes its category's position with one ``LabelEncoder``
node (ai.onnx.ml: string keys, int64 values; values not seen in training get one past
the last category), then one ``Gather`` reads that row of a float64 table holding what
``transform`` gives each category, and in its last row what it gives an unseen value
(the table's values are exact). A one-column table is written as the ``LabelEncoder``'s
float64 values instead (``values_tensor``, ai.onnx.ml 4), one node less:

- ``OneHotEncoder``: rows of 0 and 1, one block of columns per feature. Infrequent values
  (``min_frequency`` / ``max_categories``) map to the feature's infrequent column, as do
  unseen values with ``handle_unknown="infrequent_if_exist"``; otherwise unseen values
  give all zeros. skl2onnx 1.20.0's own converter raises ``NotImplementedError:
  Infrequent categories are not implemented``.
- ``OrdinalEncoder``: the code as float64, NaN for unseen values
  (``unknown_value=np.nan``).
- ``TargetEncoder``: the learned encodings (``encodings_``; one column per class for a
  multiclass target), and for unseen values the target mean (``target_mean_``), as
  scikit-learn's ``transform`` does. skl2onnx 1.20.0 has no converter for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import numpy_helper
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from mlserve.serving.onnx_converters import Graph, UnsupportedModel


def _mapping(encoder: Any, i: int) -> np.ndarray:
    """Output code of each of feature ``i``'s known categories (infrequent grouped)."""
    mappings = getattr(encoder, "_default_to_infrequent_mappings", None)
    if mappings is not None and mappings[i] is not None:
        return np.asarray(mappings[i], dtype=np.int64)
    return np.arange(len(encoder.categories_[i]), dtype=np.int64)


def _encoded(g: Graph, x: str, i: int, categories: Any, table: np.ndarray) -> str:
    """(N, width) float64: row ``code`` of ``table`` for column ``i`` of the string tensor ``x``.

    ``table`` has one row per category, in ``categories`` order, then the unseen row.
    A one-column table is the ``LabelEncoder``'s own float64 values (ai.onnx.ml 4).
    """
    keys = [str(c) for c in categories]
    if table.shape[1] == 1:
        column = g("Gather", x, g.const(np.array([i], dtype=np.int64), "column"), axis=1)
        return g(
            "LabelEncoder",
            column,
            ml=True,
            keys_strings=keys,
            values_tensor=numpy_helper.from_array(table[:-1, 0]),
            default_tensor=numpy_helper.from_array(table[-1:, 0]),
        )
    column = g("Gather", x, g.const(np.array(i, dtype=np.int64), "column"), axis=1)  # (N,)
    codes = g(
        "LabelEncoder",
        column,
        ml=True,
        keys_strings=keys,
        values_int64s=list(range(len(categories))),
        default_int64=len(categories),
    )
    return g("Gather", g.const(table, "encodings"), codes, axis=0)


def _text_input(g: Graph, operator: Any) -> str:
    x = g.features(operator)
    if not isinstance(operator.raw_operator.categories_[0][0], str):
        raise UnsupportedModel("encoders of non-text columns are not supported")
    return x


def _n_infrequent(encoder: Any, i: int) -> bool:
    infrequent = getattr(encoder, "infrequent_categories_", None)
    return infrequent is not None and infrequent[i] is not None


def convert_one_hot(scope: Any, operator: Any, container: Any) -> None:
    """``OneHotEncoder.transform`` (``drop=None``), dense float64 (N, total columns).

    Raises
    ------
    UnsupportedModel
        ``drop`` set, or non-text categories.
    """
    g, encoder = Graph(scope, container), operator.raw_operator
    if encoder.drop is not None:
        raise UnsupportedModel("OneHotEncoder(drop=...) is not supported")
    x, blocks = _text_input(g, operator), []
    for i, categories in enumerate(encoder.categories_):
        width = int(encoder._n_features_outs[i])
        eye = np.eye(width, dtype=np.float64)
        unseen = np.zeros((1, width), dtype=np.float64)
        if encoder.handle_unknown == "infrequent_if_exist" and _n_infrequent(encoder, i):
            unseen = eye[[width - 1]]
        table = np.vstack([eye[_mapping(encoder, i)], unseen])
        blocks.append(_encoded(g, x, i, categories, table))
    g("Concat", *blocks, out=operator.outputs[0].full_name, axis=1)


def convert_ordinal(scope: Any, operator: Any, container: Any) -> None:
    """``OrdinalEncoder.transform`` with ``unknown_value=np.nan``: float64 (N, F).

    Raises
    ------
    UnsupportedModel
        Another ``handle_unknown`` / ``unknown_value``, or non-text categories.
    """
    g, encoder = Graph(scope, container), operator.raw_operator
    unknown = encoder.unknown_value
    if encoder.handle_unknown != "use_encoded_value" or not (
        isinstance(unknown, float) and np.isnan(unknown)
    ):
        raise UnsupportedModel("OrdinalEncoder without unknown_value=nan is not supported")
    x, blocks = _text_input(g, operator), []
    for i, categories in enumerate(encoder.categories_):
        codes = np.append(_mapping(encoder, i).astype(np.float64), np.nan)
        blocks.append(_encoded(g, x, i, categories, codes.reshape(-1, 1)))
    g("Concat", *blocks, out=operator.outputs[0].full_name, axis=1)


def convert_target_encoder(scope: Any, operator: Any, container: Any) -> None:
    """``TargetEncoder.transform`` (after fitting): float64 (N, F) or (N, F * n_classes)."""
    g, encoder = Graph(scope, container), operator.raw_operator
    x, blocks = _text_input(g, operator), []
    width = _target_width(encoder)
    means = np.atleast_1d(np.asarray(encoder.target_mean_, dtype=np.float64))
    for i, categories in enumerate(encoder.categories_):
        columns = [encoder.encodings_[i * width + c] for c in range(width)]
        table = np.vstack([np.column_stack(columns), means.reshape(1, width)])
        blocks.append(_encoded(g, x, i, categories, table))
    g("Concat", *blocks, out=operator.outputs[0].full_name, axis=1)


def _target_width(encoder: Any) -> int:
    return len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1


def _width(encoder: Any) -> int:
    if isinstance(encoder, OneHotEncoder):
        return int(sum(encoder._n_features_outs))
    if isinstance(encoder, TargetEncoder):
        return len(encoder.categories_) * _target_width(encoder)
    return len(encoder.categories_)


def shape_encoder(operator: Any) -> None:
    """Output: float64 (N, encoded columns)."""
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([n, _width(operator.raw_operator)])


CONVERTERS: dict[type, Any] = {
    OneHotEncoder: convert_one_hot,
    OrdinalEncoder: convert_ordinal,
    TargetEncoder: convert_target_encoder,
}
SHAPE_CALCULATORS: dict[type, Any] = dict.fromkeys(CONVERTERS, shape_encoder)
