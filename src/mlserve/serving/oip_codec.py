"""Open Inference Protocol (V2) REST bodies: JSON tensors and the binary tensor data extension.

Follows the KServe "Open Inference Protocol" REST specification and its "Binary
Tensor Data Extension" (also Triton's): a request body is a JSON object, optionally
followed by the raw bytes of the inputs whose ``parameters.binary_data_size`` is set,
in input order; the JSON part's length is the ``Inference-Header-Content-Length``
header. Tensor data is little-endian, row-major; a ``BYTES`` element is a 4-byte
little-endian length followed by its bytes. Outputs asked with ``binary_data`` (or all
of them with the request parameter ``binary_data_output``) come back the same way.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from mlserve.errors import BadRequest, MalformedJSON, ValidationFailed
from mlserve.serving.import_onnx import DATATYPES, numpy_dtype

HEADER = "Inference-Header-Content-Length"


@dataclass(kw_only=True, slots=True)
class InferInput:
    """One decoded input tensor: ``data`` has ``shape`` and the datatype's numpy dtype.

    ``values`` is the JSON list of a 1-D tensor as sent (None otherwise); its array is
    then built on first use of ``data`` (a tabular model reads the list).
    """

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray | None = None
    values: list[Any] | None = None

    @property
    def data(self) -> np.ndarray:
        """The tensor as an array of ``shape``.

        Raises
        ------
        ValidationFailed
            JSON values that are not of the datatype.
        """
        if self.array is None:
            dtype = numpy_dtype(self.datatype)
            self.array = _from_json(self.values, dtype, math.prod(self.shape), self.name)
        return self.array


@dataclass(kw_only=True)
class InferRequest:
    """A decoded ``$inference_request``.

    Attributes
    ----------
    id : str or None
        Echoed in the response.
    parameters : dict
    inputs : list of InferInput
    outputs : dict of str to bool or None
        Output name -> whether it is wanted as binary data; None: every output, as
        ``binary_data_output`` says.
    binary_default : bool
        The request parameter ``binary_data_output``.
    """

    id: str | None
    parameters: dict[str, Any]
    inputs: list[InferInput]
    outputs: dict[str, bool] | None
    binary_default: bool = False


@dataclass(kw_only=True)
class InferResponse:
    """A ``$inference_response`` to encode: output name -> array, in order."""

    model_name: str
    model_version: str
    id: str | None
    parameters: dict[str, Any]
    outputs: dict[str, np.ndarray]
    datatypes: dict[str, str] = field(default_factory=dict)


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Decode an infer request body.

    Parameters
    ----------
    body : bytes
    header_length : str or None
        The ``Inference-Header-Content-Length`` header (None: the body is all JSON).

    Raises
    ------
    BadRequest
        A header length that is not an integer within the body, or binary sizes that
        do not add up to the bytes after the JSON.
    MalformedJSON
        The JSON part does not parse.
    ValidationFailed
        A missing field, an unknown datatype, data that does not fit the shape;
        ``details["input"]`` names the input.
    """
    json_part, binary = body, b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            length = -1
        if not 0 <= length <= len(body):
            raise BadRequest(f"{HEADER} {header_length!r} does not fit a body of {len(body)} bytes")
        json_part, binary = body[:length], body[length:]
    try:
        document = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the JSON part of the body does not parse: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise ValidationFailed("the request needs an inputs list", {"field": "inputs"})
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValidationFailed("parameters must be an object", {"field": "parameters"})
    inputs, offset = [], 0
    for item in document["inputs"]:
        decoded, offset = _input(item, binary, offset)
        inputs.append(decoded)
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes after the JSON belong to no input")
    request_id = document.get("id")
    return InferRequest(
        id=None if request_id is None else str(request_id),
        parameters=parameters,
        inputs=inputs,
        outputs=_outputs(document.get("outputs")),
        binary_default=bool(parameters.get("binary_data_output", False)),
    )


def _input(item: Any, binary: bytes, offset: int) -> tuple[InferInput, int]:
    plain = _plain_json_input(item)
    if plain is not None:
        return plain, offset
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValidationFailed("each input needs a name", {"field": "inputs"})
    name = item["name"]
    shape, datatype = item.get("shape"), item.get("datatype")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValidationFailed(f"input {name!r}: shape must be a list of sizes", {"input": name})
    try:
        dtype = numpy_dtype(str(datatype))
    except KeyError:
        raise ValidationFailed(
            f"input {name!r}: unknown datatype {datatype!r}", {"input": name}
        ) from None
    parameters = _parameters(item, "input")
    size = parameters.get("binary_data_size")
    count = math.prod(shape)
    decoded = InferInput(name=name, datatype=str(datatype), shape=shape)
    data = item.get("data")
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size {size!r} exceeds the body")
        decoded.array = _from_bytes(binary[offset : offset + size], dtype, count, name)
        offset += size
    elif (
        len(shape) == 1
        and type(data) is list
        and len(data) == count
        and (
            all(type(v) is str for v in data)
            if dtype.kind == "O"
            else not any(type(v) is list for v in data)
        )
    ):
        decoded.values = data  # its array is built if a tensor model needs it
        return decoded, offset
    else:
        decoded.array = _from_json(data, dtype, count, name)
    if decoded.array.shape != tuple(shape):
        decoded.array = decoded.array.reshape(shape)
    return decoded, offset


def _plain_json_input(item: Any) -> InferInput | None:
    """The usual tabular input, decoded in one pass: a 1-D tensor whose JSON ``data``
    lists its values, with no ``parameters``. ``None`` for anything else, which
    :func:`_input` decodes (and refuses) in full; an input accepted here is one it
    would accept, with the same result."""
    if type(item) is not dict or "parameters" in item:
        return None
    name, shape, datatype, data = (
        item.get("name"),
        item.get("shape"),
        item.get("datatype"),
        item.get("data"),
    )
    if type(name) is not str or type(shape) is not list or len(shape) != 1:
        return None
    if type(data) is not list or type(shape[0]) is not int or shape[0] != len(data):
        return None
    if type(datatype) is not str or datatype not in DATATYPES:
        return None
    dtype = DATATYPES[datatype]
    types = set(map(type, data))
    if not (types <= _TEXT if dtype.kind == "O" else list not in types):
        return None
    return InferInput(name=name, datatype=datatype, shape=shape, values=data)


_TEXT = frozenset({str})


def _from_bytes(raw: bytes, dtype: np.dtype, count: int, name: str) -> np.ndarray:
    if dtype.kind == "O":
        values = _bytes_elements(raw, name)
        if len(values) != count:
            raise ValidationFailed(
                f"input {name!r}: {len(values)} elements for a shape of {count}", {"input": name}
            )
        return np.array(values, dtype=object)
    if len(raw) != count * dtype.itemsize:
        raise ValidationFailed(
            f"input {name!r}: {len(raw)} bytes for {count} elements of {dtype}", {"input": name}
        )
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)


_LENGTH = struct.Struct("<I")


def _bytes_elements(raw: bytes, name: str) -> list[str]:
    """The elements of a binary ``BYTES`` tensor: each a 4-byte little-endian length and
    that many bytes, decoded as UTF-8 (invalid bytes replaced). Equal elements are
    decoded once (a categorical feature repeats a few values).

    Raises
    ------
    BadRequest
        A length prefix cut short, or a length that runs past the end of ``raw``.
    """
    values: list[str] = []
    append = values.append
    decoded: dict[bytes, str] = {}
    known = decoded.get
    unpack, at, end = _LENGTH.unpack_from, 0, len(raw)
    try:
        while at < end:
            (n,) = unpack(raw, at)
            at += 4
            element = raw[at : at + n]
            at += n
            text = known(element)
            if text is None:
                text = decoded[element] = element.decode("utf-8", "replace")
            append(text)
    except struct.error:  # fewer than 4 bytes left for a length
        at = end + 1
    if at > end:
        raise BadRequest(f"input {name!r}: truncated BYTES element")
    return values


def _from_json(data: Any, dtype: np.dtype, count: int, name: str) -> np.ndarray:
    if not isinstance(data, list):
        raise ValidationFailed(f"input {name!r}: data must be a list", {"input": name})
    try:
        if dtype.kind == "O":
            array = np.array(_flat(data), dtype=object)
            if not all(isinstance(v, str) for v in array):
                raise TypeError("BYTES data must be strings")
        else:
            array = np.array(data, dtype=dtype)
            if array.ndim != 1:
                array = array.reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationFailed(f"input {name!r}: {exc}", {"input": name}) from exc
    if array.size != count:
        raise ValidationFailed(
            f"input {name!r}: {array.size} values for a shape of {count} elements",
            {"input": name},
        )
    return array


def _flat(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in data:
        out.extend(_flat(value) if isinstance(value, list) else [value])
    return out


def _outputs(items: Any) -> dict[str, bool] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise ValidationFailed("outputs must be a list", {"field": "outputs"})
    wanted: dict[str, bool] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValidationFailed("each output needs a name", {"field": "outputs"})
        parameters = _parameters(item, "output")
        wanted[item["name"]] = bool(parameters.get("binary_data", False))
    return wanted


def _parameters(item: dict[str, Any], kind: str) -> dict[str, Any]:
    """An input's or output's (``kind``) ``parameters`` object ({} when absent).

    Raises
    ------
    ValidationFailed
        ``parameters`` is there but not a JSON object.
    """
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        name = item["name"]
        details = {"input": name} if kind == "input" else {"field": "outputs", "output": name}
        raise ValidationFailed(f"{name!r}: parameters must be an object", details)
    return parameters


def encode_response(response: InferResponse, binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """The response body, and the JSON part's length when binary outputs follow it.

    Parameters
    ----------
    response : InferResponse
    binary : dict of str to bool
        Output name -> whether it is sent as binary data.
    """
    outputs, chunks = [], []
    for name, array in response.outputs.items():
        datatype = response.datatypes[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary.get(name):
            raw = _to_bytes(array, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = array.reshape(-1).tolist()
        outputs.append(entry)
    document: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = response.parameters
    head = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


def _to_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            raw = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=numpy_dtype(datatype).newbyteorder("<")).tobytes()
