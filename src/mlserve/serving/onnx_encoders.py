"""Converters for skl2onnx: the text encoders of mlserve's preprocessing, in float64.

Each text feature's value becomes an integer code with one ``LabelEncoder`` node
(ai.onnx.ml: string keys, int64 values, a default for values not seen in training),
then:

- ``OneHotEncoder``: ``Equal(code, [0, 1, ..., n_columns - 1])`` cast to float64, one
  block of columns per feature. Infrequent values (``min_frequency`` / ``max_categories``)
  map to the feature's infrequent column, as do unseen values with
  ``handle_unknown="infrequent_if_exist"``; otherwise unseen values give all zeros.
  skl2onnx 1.20.0's own converter raises ``NotImplementedError: Infrequent categories
  are not implemented``.
- ``OrdinalEncoder``: the code as float64, NaN for unseen values
  (``unknown_value=np.nan``).
- ``TargetEncoder``: ``Gather`` of the code's row in a float64 table of the learned
  encodings (``encodings_``; one column per class for a multiclass target), whose last
  row, reached by unseen values, is the target mean (``target_mean_``), as
  scikit-learn's ``transform`` does. skl2onnx 1.20.0 has no converter for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from mlserve.serving.onnx_converters import Graph, UnsupportedModel


def _mapping(encoder: Any, i: int) -> np.ndarray:
    """Output code of each of feature ``i``'s known categories (infrequent grouped)."""
    mappings = getattr(encoder, "_default_to_infrequent_mappings", None)
    if mappings is not None and mappings[i] is not None:
        return np.asarray(mappings[i], dtype=np.int64)
    return np.arange(len(encoder.categories_[i]), dtype=np.int64)


def _codes(g: Graph, x: str, i: int, *, categories: Any, values: np.ndarray, default: int) -> str:
    """(N, 1) int64 code of column ``i`` of the string tensor ``x``."""
    column = g("Gather", x, g.const(np.array([i], dtype=np.int64), "column"), axis=1)
    return g(
        "LabelEncoder",
        column,
        ml=True,
        keys_strings=[str(c) for c in categories],
        values_int64s=[int(v) for v in values],
        default_int64=int(default),
    )


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
        to_infrequent = encoder.handle_unknown == "infrequent_if_exist" and _n_infrequent(
            encoder, i
        )
        default = width - 1 if to_infrequent else -1
        codes = _codes(g, x, i, categories=categories, values=_mapping(encoder, i), default=default)
        hits = g("Equal", codes, g.const(np.arange(width, dtype=np.int64), "columns"))
        blocks.append(g("Cast", hits, to=11))  # TensorProto.DOUBLE
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
        codes = _codes(g, x, i, categories=categories, values=_mapping(encoder, i), default=-1)
        as_float = g("Cast", codes, to=11)
        unseen = g("Less", codes, g.const(np.array([0], dtype=np.int64), "zero"))
        blocks.append(g("Where", unseen, g.const(np.array([np.nan]), "nan"), as_float))
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
        n = len(categories)
        codes = _codes(
            g, x, i, categories=categories, values=np.arange(n, dtype=np.int64), default=n
        )
        rows = g("Gather", g.const(table, "encodings"), codes, axis=0)  # (N, 1, width)
        shape = g.const(np.array([-1, width], dtype=np.int64), "shape")
        blocks.append(g("Reshape", rows, shape))
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
