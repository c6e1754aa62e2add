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

    An integer beyond 64 bits (orjson refuses it; msgspec's decoding of a request body
    keeps it, :mod:`mlserve.api.typedjson`) is written as the float orjson reads that
    literal as, ``null`` beyond a double's range.

    Raises
    ------
    TypeError
        A value orjson and the fallback cannot represent.
    """
    try:
        return orjson.dumps(value, default=_default, option=OPTIONS)
    except TypeError:
        wide = _wide_ints_as_floats(value)
        if wide is value:  # no such integer: something else was refused
            raise
        return orjson.dumps(wide, default=_default, option=OPTIONS)


def _wide_ints_as_floats(value: Any) -> Any:
    """``value`` with every ``int`` outside [-2**63, 2**64) as a float (``None`` past a
    double); ``value`` itself, not a copy, where it holds none."""
    if type(value) is int and not -(2**63) <= value < 2**64:
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, dict):
        items = {k: _wide_ints_as_floats(v) for k, v in value.items()}
        return items if any(items[k] is not v for k, v in value.items()) else value
    if isinstance(value, list | tuple):
        converted = [_wide_ints_as_floats(v) for v in value]
        return (
            converted if any(c is not v for c, v in zip(converted, value, strict=True)) else value
        )
    return value
