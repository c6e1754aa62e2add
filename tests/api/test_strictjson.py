"""Duplicate object keys are refused wherever they are; the fast check is a sound bound."""

from __future__ import annotations

import json

import pytest

from mlserve.api.strictjson import colons, count_keys, parse_json
from mlserve.errors import MalformedJSON

DUPLICATES = {
    "top": ('{"a": 1, "a": 2}', "a"),
    "nested": ('{"x": {"b": 1, "b": 1}}', "b"),
    "in a list of rows": ('{"instances": [{"a": 1}, {"a": 1, "a": 2}]}', "a"),
    "after a scalar": ('{"instances": [1, {"c": 1, "c": 2}]}', "c"),
    "with NaN": ('{"d": NaN, "d": 1}', "d"),
    "escaped spelling": ('{"e": 1, "\\u0065": 2}', "e"),
}


@pytest.mark.parametrize(("text", "key"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_duplicate_keys_are_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(MalformedJSON, match="duplicate key") as caught:
        parse_json(text.encode())
    assert caught.value.details == {"key": key}


VALID = {
    "colons in strings": '{"t": "12:30:00", "u": ["a:b", {"v": ":"}]}',
    "columnar": '{"inputs": {"a": [1, 2, 3], "b": ["x", "y", null]}}',
    "records": '{"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}',
    "same key at two levels": '{"a": {"a": {"a": 1}}}',
    "scalar": "3",
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_documents_without_duplicates_parse_as_json_does(text: str) -> None:
    assert parse_json(text.encode()) == json.loads(text)
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("document", "keys"),
    [
        ({"a": 1, "b": {"c": [1, 2]}}, 3),
        ({"rows": [{"a": {"b": 1}}]}, 2),  # records: values not entered
        ([{"a": 1}, {"b": 2, "c": 3}], 3),
        ([1, {"a": 1}], 0),  # a lower bound: the object after a scalar is not entered
        ([], 0),
    ],
)
def test_count_keys_is_a_lower_bound(document: object, keys: int) -> None:
    assert count_keys(document) == keys


def test_lenient_parse_takes_nan_and_strict_parse_refuses_it() -> None:
    assert parse_json(b'{"a": NaN}')["a"] != parse_json(b'{"a": NaN}')["a"]
    with pytest.raises(MalformedJSON, match="not valid JSON"):
        parse_json(b'{"a": NaN}', lenient=False)


@pytest.mark.parametrize("text", [b"", b"{", b'{"a": "\\ud800"}', b"[" * 5000 + b"]" * 5000])
def test_not_json_is_malformed(text: bytes) -> None:
    with pytest.raises(MalformedJSON, match="not valid JSON"):
        parse_json(text)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 200_000])
def test_colons_counts_every_colon_at_any_size(size: int) -> None:
    raw = bytes(b":x\xff"[i % 3] for i in range(size))
    assert colons(raw) == raw.count(b":") == (size + 2) // 3


def test_a_duplicate_key_in_a_large_body_is_refused() -> None:
    rows = [{"a": i, "b": "text"} for i in range(1000)]
    body = json.dumps({"instances": rows}).encode()
    assert len(body) > 4096
    assert parse_json(body) == {"instances": rows}
    with pytest.raises(MalformedJSON, match="duplicate key"):
        parse_json(body[:-3] + b', "a": 2}]}')
