"""Records bodies decoded into columns: the same values as orjson's rows, or declined."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import orjson
import pytest

from mlserve.api.strictjson import parse_json
from mlserve.api.typedjson import records_as_inputs
from mlserve.errors import MalformedJSON
from mlserve.store.jsoncodec import dumps

FEATURES = ("a", "b c", "class", "é")


def rows_as_columns(text: bytes, features: tuple[str, ...]) -> dict[str, Any]:
    """What the usual path's document holds, with its rows turned into columns."""
    document = parse_json(text)
    rows = document.pop("instances")
    return {"inputs": {name: [row[name] for row in rows] for name in features}, **document}


TAKEN = {
    "one row": '{"instances": [{"a": 1, "b c": 2.5, "class": "x", "é": null}]}',
    "keys in another order": (
        '{"instances": [{"é": true, "class": "y", "b c": -0.0, "a": 3},'
        ' {"a": 1e-3, "b c": 2E+2, "class": "", "é": false}]}'
    ),
    "options": (
        '{"routing_key": "user-7", "instances": [{"a": 1, "b c": 2, "class": "x", "é": 3}],'
        ' "extra": "ignore"}'
    ),
    "invalid values kept for the check": (
        '{"instances": [{"a": "1", "b c": [1, 2], "class": 5, "é": "\\u0000"}], "extra": 1}'
    ),
    "escaped key spelling": '{"instances": [{"\\u0061": 1, "b c": 2, "class": 3, "\\u00e9": 4}]}',
    "64-bit integers": (
        '{"instances": [{"a": 18446744073709551615, "b c": -9223372036854775808,'
        ' "class": 9007199254740993, "é": 1.7976931348623157e308}]}'
    ),
}


@pytest.mark.parametrize("text", TAKEN.values(), ids=TAKEN.keys())
def test_rows_of_exactly_the_features_become_the_same_columns(text: str) -> None:
    got = records_as_inputs(text.encode(), FEATURES)
    assert got is not None
    expected = rows_as_columns(text.encode(), FEATURES)
    assert got == expected
    for name in FEATURES:  # the same types, not only equal values (1 == 1.0 == True)
        assert [type(v) for v in got["inputs"][name]] == [type(v) for v in expected["inputs"][name]]


def test_integers_beyond_64_bits_are_the_same_numbers_and_log_as_orjson_reads_them() -> None:
    """orjson reads them as floats, msgspec as ints: the same float64 once checked, and
    the same JSON where they are written back (the prediction log)."""
    text = (
        '{"instances": [{"a": 18446744073709551616, "b c": 123456789012345678901234567890,'
        ' "class": -9223372036854775809, "é": 1}]}'
    ).encode()
    got = records_as_inputs(text, FEATURES)
    expected = rows_as_columns(text, FEATURES)
    assert got is not None
    assert type(got["inputs"]["a"][0]) is int
    assert type(expected["inputs"]["a"][0]) is float
    for name in FEATURES:
        assert np.array_equal(
            np.array(got["inputs"][name], dtype=np.float64),
            np.array(expected["inputs"][name], dtype=np.float64),
        )
    assert dumps(got) == dumps(expected)
    assert orjson.loads(dumps(got))["inputs"]["b c"] == [1.2345678901234568e29]


ROW = '{"a": 1, "b c": 2, "class": 3, "é": 4}'
DECLINED = {
    "not JSON": "{",
    "not an object": f"[{ROW}]",
    "columnar body": '{"inputs": {"a": [1]}}',
    "instances and inputs": f'{{"instances": [{ROW}], "inputs": {{}}}}',
    "unknown top-level field": f'{{"instances": [{ROW}], "rows": 1}}',
    "no rows": '{"instances": []}',
    "instances not a list": '{"instances": {"a": 1}}',
    "a row as a list": f'{{"instances": [{ROW}, [1, 2, 3, 4]]}}',
    "a missing feature": f'{{"instances": [{ROW}, {{"a": 1, "b c": 2, "class": 3}}]}}',
    "an extra key": f'{{"instances": [{ROW[:-1]}, "z": 0}}]}}',
    "a duplicate key in a row": f'{{"instances": [{ROW[:-1]}, "a": 5}}]}}',
    "a duplicate top-level key": f'{{"instances": [{ROW}], "instances": [{ROW}]}}',
    "escaped duplicate": f'{{"instances": [{ROW[:-1]}, "\\u0061": 5}}]}}',
    "a colon in text": '{"instances": [{"a": "12:30", "b c": 2, "class": 3, "é": 4}]}',
    "an object as a value": '{"instances": [{"a": {"x": 1}, "b c": 2, "class": 3, "é": 4}]}',
    "NaN token": '{"instances": [{"a": NaN, "b c": 2, "class": 3, "é": 4}]}',
    "overflowing number": '{"instances": [{"a": 1e400, "b c": 2, "class": 3, "é": 4}]}',
    "lone surrogate": '{"instances": [{"a": "\\ud800", "b c": 2, "class": 3, "é": 4}]}',
    "byte order mark": f'\ufeff{{"instances": [{ROW}]}}',
    "trailing data": f'{{"instances": [{ROW}]}} 1',
}


@pytest.mark.parametrize("text", DECLINED.values(), ids=DECLINED.keys())
def test_anything_else_is_declined(text: str) -> None:
    assert records_as_inputs(text.encode(), FEATURES) is None


def test_no_features_is_declined() -> None:
    assert records_as_inputs(b'{"instances": [{}]}', ()) is None


def test_a_duplicate_key_declined_here_is_refused_by_the_usual_path() -> None:
    text = DECLINED["a duplicate key in a row"].encode()
    with pytest.raises(MalformedJSON, match="duplicate key 'a'"):
        parse_json(text)


VALUES = [0, 1, -5, 2.5, -0.0, 1e300, 2**63, -(2**63), True, False, None, "", "x", "é", [], [1]]


@pytest.mark.parametrize("seed", range(3))
def test_random_bodies_decode_as_orjson_or_are_declined(seed: int) -> None:
    """Rows of random values, some with a key missing, added, repeated or renamed: every
    body taken gives what the usual path's document gives, and every well-formed one
    (exactly the features, no duplicate, no colon) is taken."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(300):
        rows = []
        well_formed = True
        for _ in range(rng.randint(1, 6)):
            pairs = [(name, rng.choice(VALUES)) for name in FEATURES]
            rng.shuffle(pairs)
            change = rng.random()
            if change < 0.05:
                pairs.pop()
            elif change < 0.1:
                pairs.append(("z", 1))
            elif change < 0.15:
                pairs.append((pairs[0][0], 7))
            elif change < 0.2:
                pairs[0] = (pairs[0][0], "t:1")
            well_formed &= change >= 0.2
            rows.append(
                "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
            )
        text = ('{"instances": [' + ", ".join(rows) + "]}").encode()
        got = records_as_inputs(text, FEATURES)
        assert (got is not None) == well_formed, text
        if got is not None:
            taken += 1
            assert got == rows_as_columns(text, FEATURES)
    assert taken > 100
