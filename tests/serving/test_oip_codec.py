"""The V2 request decoder: its one-pass path for plain JSON inputs agrees with the full one,
and binary BYTES tensors decode element by element."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from mlserve.errors import BadRequest, MlserveError, ValidationFailed
from mlserve.serving.oip import _rows
from mlserve.serving.oip_codec import InferRequest, _input, _plain_json_input, decode_request

INPUTS: list[Any] = [
    {"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, 2]},
    {"name": "x", "shape": [1], "datatype": "FP32", "data": [None]},
    {"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a", "é"]},
    {"name": "t", "shape": [0], "datatype": "BYTES", "data": []},
    {"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]},
    {"name": "i", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]},
    # Not plain: decoded (or refused) by the full path alone.
    {"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a", 1]},
    {"name": "x", "shape": [2], "datatype": "FP64", "data": [[1.0], [2.0]]},
    {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]},
    {"name": "x", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0]},
    {"name": "x", "shape": [2], "datatype": "FP65", "data": [1.0, 2.0]},
    {"name": "x", "shape": [True], "datatype": "FP64", "data": [1.0]},
    {"name": "x", "shape": [-1], "datatype": "FP64", "data": []},
    {"name": "x", "shape": "2", "datatype": "FP64", "data": [1.0, 2.0]},
    {"name": 3, "shape": [1], "datatype": "FP64", "data": [1.0]},
    {"name": "x", "shape": [1], "datatype": None, "data": [1.0]},
    {"name": "x", "shape": [1], "datatype": "FP64", "data": "1"},
    ["x"],
]


def decoded(item: Any) -> Any:
    """What decoding gives: the tensor's fields, or the error's type and message."""
    try:
        tensor, offset = _input(item, b"", 0)
    except MlserveError as exc:
        return type(exc).__name__, exc.message
    values = tensor.values if tensor.values is not None else tensor.data.tolist()
    return tensor.name, tensor.datatype, tensor.shape, values, offset


@pytest.mark.parametrize("item", INPUTS, ids=[str(i) for i in range(len(INPUTS))])
def test_plain_inputs_decode_as_the_full_path_does(item: Any) -> None:
    full = {**item, "parameters": {}} if isinstance(item, dict) else item  # never plain
    assert _plain_json_input(full) is None
    assert decoded(item) == decoded(full)
    plain = _plain_json_input(item)
    if plain is not None:  # the one-pass path keeps the list as sent
        assert plain.values is item["data"]


def test_the_plain_path_is_taken_for_one_json_row() -> None:
    assert all(_plain_json_input(item) is not None for item in INPUTS[:6])
    assert all(_plain_json_input(item) is None for item in INPUTS[6:])


@pytest.mark.parametrize("n_rows", [1, 2, 3])
def test_rows_of_json_tensors_are_records_in_input_order(n_rows: int) -> None:
    rng = np.random.default_rng(n_rows)
    x = rng.normal(size=n_rows).tolist()
    text = [f"c{i}" for i in range(n_rows)]
    body = {
        "inputs": [
            {"name": "x", "shape": [n_rows], "datatype": "FP64", "data": x},
            {"name": "c", "shape": [n_rows], "datatype": "BYTES", "data": text},
        ]
    }
    request: InferRequest = decode_request(orjson.dumps(body), None)
    records, inputs = _rows(request)
    assert records == [{"x": x[i], "c": text[i]} for i in range(n_rows)]
    assert inputs == {"x": x, "c": text}


def _bytes_body(
    elements: list[bytes], raw_tail: bytes = b"", shape: int | None = None
) -> tuple[bytes, bytes]:
    raw = b"".join(struct.pack("<I", len(e)) + e for e in elements) + raw_tail
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "t",
                    "datatype": "BYTES",
                    "shape": [len(elements) if shape is None else shape],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    return head, head + raw


@pytest.mark.parametrize(
    ("elements", "expected"),
    [
        (
            [b"NEAR BAY", b"INLAND", b"NEAR BAY", b"NEAR BAY"],
            ["NEAR BAY", "INLAND"] + ["NEAR BAY"] * 2,
        ),
        ([b"\xc3\xa9", b"", b"\xff"], ["\u00e9", "", "\ufffd"]),  # invalid UTF-8 is replaced
    ],
    ids=["repeated", "utf8"],
)
def test_binary_bytes_elements_decode_in_order(elements: list[bytes], expected: list[str]) -> None:
    head, body = _bytes_body(elements)
    request = decode_request(body, str(len(head)))
    assert request.inputs[0].data.tolist() == expected
    assert all(type(v) is str for v in request.inputs[0].data.tolist())


@pytest.mark.parametrize(
    "tail",
    [b"\x05\x00", b"\x05\x00\x00\x00abcd"],  # a length cut short; one past the end
    ids=["short-length", "length-past-end"],
)
def test_binary_bytes_truncated_elements_are_refused(tail: bytes) -> None:
    head, body = _bytes_body([b"ab"], raw_tail=tail, shape=2)
    with pytest.raises(BadRequest, match="truncated BYTES element"):
        decode_request(body, str(len(head)))


def test_binary_bytes_short_are_refused() -> None:
    head, body = _bytes_body([b"ab", b"cd"], shape=3)
    with pytest.raises(ValidationFailed, match="2 elements for a shape of 3"):
        decode_request(body, str(len(head)))
