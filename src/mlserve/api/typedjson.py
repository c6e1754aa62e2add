"""Records bodies decoded straight into columns, for large prediction batches.

A ``{"instances": [{feature: value, ...}, ...]}`` body of 1,000 rows costs more to
parse with orjson (one dict per row, every key a new string) than ONNX Runtime
takes to predict it. msgspec decodes the same body into one struct type per
signature (the keys matched against the feature names, not stored per row), and
the rows are turned into ``{feature: [value, ...]}``, the columnar ``inputs`` that
:func:`mlserve.serving.predict` checks a whole column at a time.

Nothing here decides what is valid: every value keeps the Python type orjson gives
it (the fields are typed ``Any``), and :meth:`InstanceValidator.columns_from_inputs`
checks it exactly as it checks a columnar body. This module only declines: a body
it cannot take whole (another field, a row with a missing or unknown key, a
duplicate key anywhere, a value holding an object, no rows, anything msgspec
refuses) gets ``None`` and goes the usual way (:func:`mlserve.api.strictjson.parse_json`
and the records check), which answers it, or names the error.

One difference: an integer literal outside [-2**63, 2**64) is a Python ``int`` here
and a ``float`` from orjson. Both check and predict as the same float64, and the one
JSON encoder (:func:`mlserve.store.jsoncodec.dumps`, the prediction log's) writes such
an integer as that float.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from mlserve.api.strictjson import colons

_OPTIONS = ("extra", "routing_key")  # the body's fields beside "instances"


@lru_cache(maxsize=256)
def records_decoder(features: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """A decoder of ``{"instances": [...], "extra"?, "routing_key"?}`` bodies whose rows
    carry exactly ``features`` (cached per feature tuple).

    The row struct's fields are named ``f0``, ``f1``, ... and renamed to the features, so
    that any feature name (spaces, keywords, non-ASCII) works; unknown fields are refused
    in rows and at the top level.
    """
    row = msgspec.defstruct(
        "Row",
        [(f"f{index}", Any) for index in range(len(features))],
        rename={f"f{index}": name for index, name in enumerate(features)},
        forbid_unknown_fields=True,
        gc=False,  # a row refers only to values decoded inside it: no cycle to track
    )
    body = msgspec.defstruct(
        "RecordsBody",
        [
            ("instances", list[row]),  # type: ignore[valid-type]
            ("extra", Any, msgspec.UNSET),
            ("routing_key", Any, msgspec.UNSET),
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(body)


def records_as_inputs(body: bytes, features: tuple[str, ...]) -> dict[str, Any] | None:
    """``body``'s rows as columns, or None where the usual path must read it.

    Parameters
    ----------
    body : bytes
        A prediction request body (JSON).
    features : tuple of str
        The signature's feature names, in signature order.

    Returns
    -------
    dict or None
        ``{"inputs": {feature: list of n_rows values}}`` plus ``extra`` and
        ``routing_key`` where the body has them: the document :func:`parse_json`
        would give with the rows turned into columns. None when the body is not
        exactly rows of ``features`` (see the module's docstring).
    """
    if not features:
        return None
    try:
        document = records_decoder(features).decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    rows = document.instances
    present = {
        name: value for name in _OPTIONS if (value := getattr(document, name)) is not msgspec.UNSET
    }
    # One structural colon per key: more means a duplicate key (msgspec keeps the last,
    # as orjson does) or colons in text or nested objects; the usual path sorts those out.
    if not rows or colons(body) != len(rows) * len(features) + 1 + len(present):
        return None
    columns = zip(*map(msgspec.structs.astuple, rows), strict=True)
    return {"inputs": dict(zip(features, map(list, columns), strict=True)), **present}
