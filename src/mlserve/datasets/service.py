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
import tempfile
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from mlserve.context import Context
from mlserve.datasets.release import release_memory
from mlserve.datasets.summaries import TextPass, observe, stored_summaries
from mlserve.datasets.tables import write_parquet
from mlserve.datasets.upload import UploadLimits, no_rows, normalise, upload_batches
from mlserve.errors import NotFound, ValidationFailed
from mlserve.store.documents import ColumnSummary
from mlserve.store.orm import Dataset, new_id

NAME_MAX_LENGTH = 200
FULL_COLLECT_BYTES = 16 * 2**20  # a smaller upload skips the full garbage collection (80 ms)


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
    first), never as one bytes object, and parsed, written and summarised a batch at a
    time (:func:`mlserve.datasets.upload.upload_batches`): its rows go to a Parquet
    file on disk (:func:`mlserve.datasets.tables.write_parquet`), the statistics are
    read back from it a column at a time
    (:func:`mlserve.datasets.summaries.stored_summaries`), and the file is copied into
    the store in blocks. It is stored atomically before the row is committed; if the
    commit fails the file is removed, so no row points at a missing file. Whatever the
    outcome, the memory the upload took is given back to the operating system
    (:func:`mlserve.datasets.release.release_memory`; a full garbage collection only
    after a file of :data:`FULL_COLLECT_BYTES` or more).

    Raises
    ------
    ValidationFailed, UnsupportedMediaType
        See :func:`mlserve.datasets.upload.upload_batches`; a file with a header
        but no data rows.
    """
    try:
        return _create_dataset(ctx, name, filename, stream)
    finally:
        size = _size_bytes(stream)
        release_memory(collect_all=size is None or size >= FULL_COLLECT_BYTES)


def _size_bytes(stream: IO[bytes]) -> int | None:
    """The size of a seekable upload in bytes; ``None`` if it cannot be told (closed)."""
    try:
        return stream.seek(0, io.SEEK_END) if stream.seekable() else None
    except (OSError, ValueError):
        return None


def _create_dataset(ctx: Context, name: str | None, filename: str, stream: IO[bytes]) -> Dataset:
    if has_control_characters(filename):
        raise ValidationFailed(
            "the file name must not contain control characters", {"field": "file"}
        )
    source = stream if stream.seekable() else io.BytesIO(stream.read())
    batch_rows = ctx.settings.dataset_batch_rows
    batches = upload_batches(
        filename,
        source,
        ctx.settings.max_dataset_columns,
        UploadLimits.of(ctx.settings),
        batch_rows=batch_rows,
    )
    dataset_name = check_name(name or filename.rsplit("/", 1)[-1] or "dataset")
    dataset_id = new_id()
    with tempfile.TemporaryFile() as parquet:
        text = {name for name, kind in batches.arrow_types.items() if kind == pa.string()}
        passes: dict[str, TextPass] = {}  # text columns counted as they are written
        frames = observe(batches.frames, passes, text)
        written = write_parquet(frames, parquet, batches.arrow_types)
        if not written.n_rows:
            raise no_rows()
        summaries = stored_summaries(parquet, batch_rows, passes)  # before the store: it may refuse
        stored = ctx.store.put_file(f"datasets/{dataset_id}.parquet", parquet)
    row = Dataset(
        id=dataset_id,
        name=dataset_name,
        filename=filename[:255],
        source_format=batches.source_format,
        n_rows=written.n_rows,
        n_columns=len(written.columns),
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
