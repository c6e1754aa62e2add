"""Duplicate object keys are refused wherever they are; the fast check is a sound bound."""

from __future__ import annotations

import json

import pytest

from mlserve.api.strictjson import count_keys, parse_json
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
