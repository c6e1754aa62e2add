"""A CSV upload read in batches, one type per column decided over the whole file.

pandas infers a column's type from the values it reads; read in batches, one batch
may hold only integers where the next holds a missing value (``float64``) or text.
So the file is read twice: the first pass records what pandas inferred for every
batch (:func:`batch_kind`), :func:`unify` decides one type per column as pandas would
for the whole file, and the second pass reads text columns as text (``dtype=object``:
Python strings as written, so ``"007"`` stays ``"007"`` in a column that also holds
names) and casts the other
batches to the decided type. Only one batch is held at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

import pandas as pd
import pyarrow as pa

from mlserve.errors import ValidationFailed

ColumnType = Literal["int64", "uint64", "float64", "bool", "bool_object", "text"]
# The Arrow type of a column a first batch leaves all-missing (Arrow's "null" type).
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "bool_object": pa.bool_(),
    "text": pa.string(),
}


@dataclass(frozen=True, kw_only=True)
class BatchKind:
    """What pandas inferred for one column of one batch.

    Attributes
    ----------
    kind : str
        numpy's kind character of the batch's dtype (``"i"``, ``"u"``, ``"f"``,
        ``"b"``, ``"O"`` for text), or ``"e"`` when every value was missing.
    missing : bool
        Whether a value was missing.
    """

    kind: str
    missing: bool


def batch_kind(series: pd.Series) -> BatchKind:
    """What pandas inferred for ``series`` (one column of one batch, n_rows values)."""
    missing = bool(series.isna().any())
    if not len(series) or bool(series.isna().all()):
        return BatchKind(kind="e", missing=missing)
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        return BatchKind(kind="b", missing=missing)  # True/False with missing values
    return BatchKind(kind=series.dtype.kind, missing=missing)


def unify(kinds: list[BatchKind]) -> ColumnType:
    """One type for a column from what pandas inferred batch by batch.

    The rules are pandas' for a whole file: integers stay ``int64`` unless a value is
    missing or a batch holds decimals (then ``float64``); ``True``/``False`` columns are
    ``bool`` without missing values and Python objects with them (``bool_object``);
    every other mix (numbers and text, booleans and numbers) is text, read as
    written. A column missing everywhere is ``float64`` (all ``NaN``).
    """
    present = {k.kind for k in kinds if k.kind != "e"}
    missing = any(k.missing for k in kinds)
    if not present:
        return "float64"
    if present == {"b"}:
        return "bool_object" if missing else "bool"
    if present == {"u"} and not missing:
        return "uint64"
    if present <= {"i", "u", "f"}:
        return "float64" if missing or present != {"i"} else "int64"
    return "text"


def _reader(file: IO[bytes], batch_rows: int, text: list[str]) -> Iterator[pd.DataFrame]:
    file.seek(0)
    try:
        yield from pd.read_csv(
            file,
            encoding="utf-8-sig",
            chunksize=batch_rows,
            dtype=dict.fromkeys(text, object),  # text as written, no Arrow copy
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise ValidationFailed(f"CSV could not be parsed: {exc}", {"field": "file"}) from exc


def column_types(file: IO[bytes], batch_rows: int) -> dict[str, ColumnType]:
    """First pass: one type per column of the CSV in ``file`` (see :func:`unify`).

    Raises
    ------
    ValidationFailed
        pandas cannot parse the file.
    """
    seen: dict[str, list[BatchKind]] = {}
    for batch in _reader(file, batch_rows, []):
        for name in batch.columns:
            seen.setdefault(name, []).append(batch_kind(batch[name]))
    return {name: unify(kinds) for name, kinds in seen.items()}


def typed_batches(
    file: IO[bytes], batch_rows: int, types: dict[str, ColumnType]
) -> Iterator[pd.DataFrame]:
    """Second pass: the CSV in batches of ``batch_rows`` rows, each column of its type.

    Yields
    ------
    DataFrame of shape (at most batch_rows, n_columns)
        Text columns as Python ``str`` objects (missing values ``NaN``), ``bool_object`` columns as
        Python objects, the others as their numpy type.
    """
    text = [name for name, kind in types.items() if kind == "text"]
    for batch in _reader(file, batch_rows, text):
        for name, kind in types.items():
            if kind == "float64" and batch[name].dtype != "float64":
                batch[name] = batch[name].astype("float64")
            elif kind == "bool_object":
                batch[name] = batch[name].astype(object)
        yield batch
