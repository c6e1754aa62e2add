"""Reading a Parquet upload: the footer judged first, then bounded batches.

The footer gives rows, columns, column types and a lower bound of the decoded
size (:func:`decoded_size`) before any row group is read; the batches read stop
as soon as the real rows or bytes pass a limit, since a footer can lie.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlserve.datasets.limits import UploadLimits, check_columns, too_many_rows
from mlserve.errors import UnsupportedMediaType, ValidationFailed


def open_parquet(file: IO[bytes], limits: UploadLimits) -> pq.ParquetFile:
    """Open a Parquet upload and judge its footer (:func:`check_footer`) and pandas metadata.

    Raises
    ------
    UnsupportedMediaType
        Not a readable Parquet file.
    ValidationFailed
        Column names that are not UTF-8; too many rows, columns or uncompressed bytes; a
        column whose type is not numbers, booleans, UTF-8 text, dates or timestamps
        (``details.column``); an invalid ``pandas`` metadata block.
    """
    try:
        parquet = pq.ParquetFile(file, pre_buffer=False)  # one row group read at a time
        schema = parquet.schema_arrow
    except UnicodeDecodeError as exc:  # found by the fuzz target: a non-UTF-8 column path
        raise ValidationFailed(
            "the Parquet file's column names are not UTF-8 text", {"field": "file"}
        ) from exc
    except (pa.ArrowException, OSError) as exc:
        raise UnsupportedMediaType(
            "file is not a readable Parquet file", {"field": "file"}
        ) from exc
    check_footer(parquet.metadata, schema, limits)
    _check_pandas_metadata(schema)
    return parquet


def parquet_frames(
    parquet: pq.ParquetFile, limits: UploadLimits, batch_rows: int
) -> Iterator[pd.DataFrame]:
    """The upload's rows, ``batch_rows`` at a time, as pandas (with the file's metadata).

    Each batch is checked in full and against the limits (a footer can lie) before it is
    converted, column by column, each Arrow column freed once converted
    (``split_blocks``, ``self_destruct``).

    Yields
    ------
    DataFrame of shape (at most batch_rows, n_columns)

    Raises
    ------
    UnsupportedMediaType, ValidationFailed
        Unreadable data, invalid values, a limit passed, pandas metadata that does not
        match the columns.
    """
    schema = parquet.schema_arrow
    for batch in _bounded_batches(parquet, limits, batch_rows):
        table = pa.Table.from_batches([batch], schema=schema)
        try:
            yield table.to_pandas(split_blocks=True, self_destruct=True)
        except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
            raise ValidationFailed(
                f"the Parquet file's pandas metadata does not match its columns ({exc!s:.200})",
                {"field": "file", "metadata": "pandas"},
            ) from exc


def fallback_types(schema: pa.Schema) -> dict[str, pa.DataType]:
    """The Arrow type to store each column as, when a first batch holds none of its values
    (text as ``string``, dictionaries as their values' type, the rest as read)."""
    types: dict[str, pa.DataType] = {}
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        types[str(field.name)] = pa.string() if text else kind
    return types


def check_footer(metadata: pq.FileMetaData, schema: pa.Schema, limits: UploadLimits) -> None:
    """Refuse from the footer alone: rows, columns, uncompressed bytes, column types.

    Raises
    ------
    ValidationFailed
    """
    check_columns([str(n) for n in schema.names], limits.max_columns)
    size = decoded_size(metadata, schema)
    if size > limits.max_uncompressed_bytes:
        raise _too_big(size, limits.max_uncompressed_bytes)
    if metadata.num_rows > limits.max_rows:
        raise too_many_rows(limits.max_rows)
    for field in schema:
        if not _readable(field.type):
            raise ValidationFailed(
                f"column {field.name!r} has Parquet type {field.type}; mlserve reads numbers, "
                "booleans, UTF-8 text, dates and timestamps",
                {"field": "file", "column": field.name, "type": str(field.type)},
            )


def decoded_size(metadata: pq.FileMetaData, schema: pa.Schema) -> int:
    """A lower bound of the bytes the file decodes to, from its footer alone.

    The larger of the row groups' uncompressed page sizes (which dictionary and
    run-length encoding keep small for repeated values) and rows x the width of
    a row in memory (fixed-width types at their width, text and dictionaries at
    8 bytes of offsets or indices per cell).
    """
    pages = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    row_width = sum(_cell_bytes(field.type) for field in schema)
    return max(pages, metadata.num_rows * row_width)


def _cell_bytes(kind: pa.DataType) -> int:
    try:
        return max(1, kind.bit_width // 8)
    except ValueError:  # not fixed width
        return 8


def _too_big(size: int, limit: int) -> ValidationFailed:
    return ValidationFailed(
        f"file decodes to {size} bytes or more, over max_dataset_uncompressed_bytes={limit}",
        {"field": "file", "uncompressed_bytes": size, "limit": limit},
    )


def _readable(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _readable(kind.value_type) and not pa.types.is_dictionary(kind.value_type)
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
    )


def _check_pandas_metadata(schema: pa.Schema) -> None:
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(
            "the Parquet file's pandas metadata is not valid JSON",
            {"field": "file", "metadata": "pandas"},
        ) from exc
    columns = document.get("columns") if isinstance(document, dict) else None
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and "name" in c and "field_name" in c for c in columns
    ):
        raise ValidationFailed(
            "the Parquet file's pandas metadata lacks column names",
            {"field": "file", "metadata": "pandas"},
        )


def _valid(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch, checked in full (offsets, and UTF-8 in text columns, which the Parquet
    reader does not check; found by the fuzz target: pandas failed later on the text)."""
    try:
        batch.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ValidationFailed(
            f"the Parquet file holds invalid values ({exc!s:.200})", {"field": "file"}
        ) from exc
    return batch


def _bounded_batches(
    parquet: pq.ParquetFile, limits: UploadLimits, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    rows = size = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            rows += batch.num_rows
            size += batch.nbytes
            if rows > limits.max_rows:
                raise too_many_rows(limits.max_rows)
            if size > limits.max_uncompressed_bytes:
                raise _too_big(size, limits.max_uncompressed_bytes)
            yield _valid(batch)
    except (pa.ArrowException, OSError) as exc:
        raise UnsupportedMediaType(
            f"the Parquet file's data could not be read ({exc!s:.200})", {"field": "file"}
        ) from exc
