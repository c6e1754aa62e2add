"""JSON text with orjson: numpy arrays and scalars as numbers, non-finite floats as null.

One encoder for every JSON mlserve writes itself: HTTP answers (:mod:`mlserve.api.jsonio`)
and the prediction log's columns (:mod:`mlserve.monitoring.prediction_log`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):  # object arrays (text labels); orjson does numeric ones
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise ``value`` (dicts, lists, numpy arrays, datetimes) to JSON bytes.

    Non-finite floats become ``null`` (orjson's behaviour), so output is always
    valid JSON (RFC 8259 has no NaN or Infinity).

    Raises
    ------
    TypeError
        A value orjson and the fallback cannot represent.
    """
    return orjson.dumps(value, default=_default, option=OPTIONS)
