"""The one JSON encoder: numpy values, and integers beyond 64 bits written as orjson reads them."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from mlserve.store.jsoncodec import dumps

WRITTEN = {
    "numpy": ({"a": np.arange(3), "b": np.float32(0.5), "c": np.array(["x"], dtype=object)},
              b'{"a":[0,1,2],"b":0.5,"c":["x"]}'),
    "non-finite floats": ([float("nan"), float("inf")], b"[null,null]"),
    "64-bit limits": ([-(2**63), 2**64 - 1], b"[-9223372036854775808,18446744073709551615]"),
    "beyond 64 bits": ({"v": [2**64, -(2**63) - 1, (10**30,)]},
                       b'{"v":[1.8446744073709552e+19,-9.223372036854776e+18,[1e+30]]}'),
    "beyond a double": ([10**400, 1], b"[null,1]"),
}  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), WRITTEN.values(), ids=WRITTEN.keys())
def test_values_are_written_as_json(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected


@pytest.mark.parametrize("literal", ["18446744073709551616", "-9223372036854775809", "1" * 30])
def test_a_wide_integer_is_written_as_the_float_orjson_reads(literal: str) -> None:
    assert orjson.loads(dumps([int(literal)])) == orjson.loads(f"[{literal}]")


def test_other_values_are_still_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": [2**70, object()]})
