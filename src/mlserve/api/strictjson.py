"""Parsing JSON request bodies strictly: one value per object key.

RFC 8259 (section 4) leaves the meaning of duplicate object keys to each parser
and RFC 7493 (I-JSON, section 2.3) forbids them: a proxy or audit tool that keeps
the first key and a server that keeps the last read two different requests.
orjson keeps the last, so every JSON body mlserve reads goes through
:func:`parse_json`, which refuses a duplicate key anywhere in the document.

The check costs little on the prediction path: orjson parses the body, the keys
of the parsed objects are counted, and only when the body holds more ``:`` bytes
than that count (colons inside strings, or keys that collapsed) is it parsed a
second time with the standard library's ``object_pairs_hook`` to find the
duplicate. Every object key is followed by exactly one structural colon, so
``body.count(b":") == keys`` proves there is no duplicate.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from mlserve.errors import MalformedJSON

# Above this size numpy counts a byte about 6x faster than ``bytes.count``'s loop (199 KB
# of records: 13 against 69 microseconds); below it numpy's fixed cost is more.
NUMPY_COUNT_BYTES = 4096
COLON = ord(":")


def parse_json(body: bytes | str, *, lenient: bool = True) -> Any:
    """Parse ``body`` with orjson and refuse duplicate object keys.

    With ``lenient``, what orjson refuses is parsed again by the standard
    library: ``NaN`` and ``Infinity`` tokens (not JSON, but sent by Python's
    ``json``) become floats, so that the signature validator can refuse them
    naming the row and field, and integers beyond 64 bits become ints.

    Parameters
    ----------
    body : bytes or str
        The request body.
    lenient : bool
        ``False`` refuses whatever orjson refuses (the schema-validated bodies).

    Returns
    -------
    Any
        The parsed document.

    Raises
    ------
    MalformedJSON
        Not JSON, lone surrogates, or a duplicate key (``details.key`` names it).
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not lenient:
            raise MalformedJSON(f"request body is not valid JSON: {str(exc)[:200]}") from exc
        return _parse_slow(raw)
    if colons(raw) > count_keys(document):
        _parse_slow(raw)
    return document


def colons(raw: bytes) -> int:
    """How many ``:`` bytes ``raw`` holds (numpy's vectorised comparison for large bodies)."""
    if len(raw) < NUMPY_COUNT_BYTES:
        return raw.count(b":")
    return int(np.count_nonzero(np.frombuffer(raw, dtype=np.uint8) == COLON))


def count_keys(document: Any) -> int:
    """A lower bound of the object keys in ``document``, exact for the usual bodies.

    Objects are entered whole. A list is entered only when its first item is a
    list or an object; a list of objects (records) counts each object's keys
    without looking into its values. What is not counted (objects inside
    records, a container after a scalar) can only make :func:`parse_json` run
    its exact check.
    """
    keys = 0
    stack = [document]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            keys += len(item)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list and item:
            first = type(item[0])
            if first is dict:
                keys += sum([len(row) for row in item if type(row) is dict])
            elif first is list:
                stack.extend(item)
    return keys


def _parse_slow(raw: bytes) -> Any:
    try:
        document = json.loads(raw, parse_constant=float, object_pairs_hook=_unique)
        # Lone surrogates ("\ud800") are not text: refuse them here, not in a later encoder.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except MalformedJSON:
        raise
    except (ValueError, RecursionError) as exc:
        text = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise MalformedJSON(f"request body is not valid JSON: {text[:200]}") from exc
    return document


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise MalformedJSON(
            f"duplicate key {key[:100]!r} in a JSON object (RFC 7493: keys must be unique)",
            {"key": key[:100]},
        )
    return document
