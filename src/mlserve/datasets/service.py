"""Datasets: read and validate uploads, infer schema and statistics, store durably.

An upload (CSV or Parquet) is parsed and checked by :mod:`mlserve.datasets.upload`
(not empty, not ragged, not binary, no duplicate column names, within the row,
column and size limits, readable column types), then stored as Parquet in the
artifact store under a server-generated key, with its metadata and per-column
statistics in one SQL row.
"""

from __future__ import annotations

import io
import math
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from mlserve.context import Context
from mlserve.datasets.release import release_memory
from mlserve.datasets.stats import column_summaries
from mlserve.datasets.upload import UploadLimits, normalise, parse_upload
from mlserve.errors import NotFound, ValidationFailed
from mlserve.store.documents import ColumnSummary
from mlserve.store.orm import Dataset, new_id

NAME_MAX_LENGTH = 200
SLICE_ROWS = 100_000  # rows converted to Arrow at once when a dataset is stored


def check_name(name: str, field: str = "name") -> str:
    """Return a stripped dataset or model name, or raise ``ValidationFailed``.

    Names are data, never paths; control characters (NUL included, which
    PostgreSQL cannot store in text) are refused.
    """
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"{field} must be 1 to {NAME_MAX_LENGTH} characters", {"field": field}
        )
    if has_control_characters(name):
        raise ValidationFailed(f"{field} must not contain control characters", {"field": field})
    return name


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a C0 control character or DEL (tab included)."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def create_dataset(ctx: Context, name: str | None, filename: str, stream: IO[bytes]) -> Dataset:
    """Parse, validate and store an upload; return its dataset row.

    The upload is read from ``stream`` in passes (a seekable file, such as the
    temporary file the request body was spooled to; anything else is read into memory
    first), never as one bytes object. The Parquet file is written atomically before
    the row is committed; if the commit fails the file is removed, so no row points at
    a missing file. Whatever the outcome, the memory the upload took is given back to
    the operating system (:func:`mlserve.datasets.release.release_memory`).

    Raises
    ------
    ValidationFailed, UnsupportedMediaType
        See :func:`parse_upload`.
    """
    try:
        return _create_dataset(ctx, name, filename, stream)
    finally:
        release_memory()


def _create_dataset(ctx: Context, name: str | None, filename: str, stream: IO[bytes]) -> Dataset:
    if has_control_characters(filename):
        raise ValidationFailed(
            "the file name must not contain control characters", {"field": "file"}
        )
    source = stream if stream.seekable() else io.BytesIO(stream.read())
    frame, source_format = parse_upload(
        filename, source, ctx.settings.max_dataset_columns, UploadLimits.of(ctx.settings)
    )
    dataset_name = check_name(name or filename.rsplit("/", 1)[-1] or "dataset")
    dataset_id = new_id()
    summaries = column_summaries(frame)  # before anything is written: it may refuse
    stored = ctx.store.put_bytes(f"datasets/{dataset_id}.parquet", to_parquet(frame))
    row = Dataset(
        id=dataset_id,
        name=dataset_name,
        filename=filename[:255],
        source_format=source_format,
        n_rows=len(frame),
        n_columns=frame.shape[1],
        size_bytes=stored.size_bytes,
        artifact_key=stored.key,
        sha256=stored.sha256,
        columns=summaries,
    )
    try:
        with ctx.db.session() as session:
            session.add(row)
    except BaseException:
        ctx.store.delete(stored.key)
        raise
    return row


def to_parquet(frame: pd.DataFrame, slice_rows: int = SLICE_ROWS) -> bytes:
    """``frame`` (n_rows, n_columns) as a Parquet file, converted to Arrow ``slice_rows``
    rows at a time (one row group each), so that no whole Arrow copy of the table is
    held beside it (``pa.Schema.from_pandas`` of the whole frame would make one: 625 MiB
    for a million rows of 420 bytes); the schema is inferred from the first slice, and a
    column missing there from its first present values.

    Raises
    ------
    ValidationFailed
        A column Arrow cannot store (mixed Python types, say).
    """
    buffer = io.BytesIO()
    try:
        schema = _schema(frame, slice_rows)
        with pq.ParquetWriter(buffer, schema) as writer:
            for start in range(0, len(frame), slice_rows):
                part = frame.iloc[start : start + slice_rows]
                writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
    except (pa.ArrowException, ValueError) as exc:
        raise ValidationFailed(
            f"the table cannot be stored as Parquet ({exc!s:.200})", {"field": "file"}
        ) from exc
    return buffer.getvalue()


def _schema(frame: pd.DataFrame, slice_rows: int) -> pa.Schema:
    schema = pa.Schema.from_pandas(frame.iloc[:slice_rows], preserve_index=False)
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type):
            present = frame[field.name].dropna().iloc[:slice_rows]
            if len(present):
                kind = pa.array(present, from_pandas=True).type
                schema = schema.set(i, field.with_type(kind))
    return schema


def same_content(ctx: Context, dataset: Dataset) -> list[str]:
    """Ids of the other datasets whose stored file has the same sha256, oldest first
    (the same table uploaded again: a hint, since either can be used)."""
    with ctx.db.session() as session:
        query = (
            select(Dataset.id)
            .where(Dataset.sha256 == dataset.sha256, Dataset.id != dataset.id)
            .order_by(Dataset.created_at)
        )
        return list(session.scalars(query))


def create_dataset_from_frame(ctx: Context, name: str, frame: pd.DataFrame) -> Dataset:
    """Store an in-memory DataFrame as a dataset (used by ``--demo``)."""
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return create_dataset(ctx, name, f"{name}.csv", buffer)


def get_dataset(ctx: Context, dataset_id: str) -> Dataset:
    """Return the dataset ``dataset_id``.

    Raises
    ------
    NotFound
        If there is no such dataset.
    """
    found = find_dataset(ctx, dataset_id)
    if found is None:
        raise NotFound.of("dataset", dataset_id)
    return found


def find_dataset(ctx: Context, dataset_id: str) -> Dataset | None:
    """Return the dataset ``dataset_id`` or ``None``."""
    with ctx.db.session() as session:
        return session.get(Dataset, dataset_id)


def list_datasets(ctx: Context, limit: int = 100, offset: int = 0) -> list[Dataset]:
    """Return datasets, newest first."""
    with ctx.db.session() as session:
        query = select(Dataset).order_by(Dataset.created_at.desc()).limit(limit).offset(offset)
        return list(session.scalars(query))


def read_frame(ctx: Context, dataset: Dataset) -> pd.DataFrame:
    """Load a stored dataset, checking its sha256 first.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)

    Raises
    ------
    NotFound, Conflict
        If the file is missing or fails its digest check.
    """
    data = ctx.store.get_bytes(dataset.artifact_key, expected_sha256=dataset.sha256)
    return normalise(pd.read_parquet(io.BytesIO(data)))


def preview(ctx: Context, dataset: Dataset, n_rows: int) -> dict[str, Any]:
    """The first ``n_rows`` rows of a stored dataset, JSON-ready.

    Only the first record batch of the Parquet file is decoded (after the whole
    file's sha256 is checked).

    Parameters
    ----------
    n_rows : int
        Rows wanted (fewer when the dataset is shorter).

    Returns
    -------
    dict
        ``columns`` (names), ``rows`` (one list of values per row, in column
        order: numbers, booleans and text as JSON values, missing and non-finite
        values as ``None``, anything else as its text) and ``n_rows`` (rows of
        the whole dataset).

    Raises
    ------
    NotFound, Conflict
        If the file is missing or fails its digest check.
    """
    data = ctx.store.get_bytes(dataset.artifact_key, expected_sha256=dataset.sha256)
    parquet = pq.ParquetFile(io.BytesIO(data))
    batch = next(parquet.iter_batches(batch_size=n_rows), None)
    table = (
        pa.Table.from_batches([batch]) if batch is not None else parquet.schema_arrow.empty_table()
    )
    frame = normalise(table.to_pandas())
    return {
        "columns": list(frame.columns),
        "rows": [[_json_cell(v) for v in row] for row in frame.itertuples(index=False)],
        "n_rows": dataset.n_rows,
    }


def _json_cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def column_index(dataset: Dataset) -> dict[str, ColumnSummary]:
    """Map column name -> its stored summary."""
    return {col["name"]: col for col in dataset.columns}
