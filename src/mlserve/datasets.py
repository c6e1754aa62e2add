"""Datasets: read and validate uploads, infer schema and statistics, store durably.

An upload (CSV or Parquet) is parsed with pandas, checked (not empty, not ragged,
no duplicate column names, within the column limit), then stored as Parquet in the
artifact store under a server-generated key, with its metadata and per-column
statistics in one SQL row.
"""

from __future__ import annotations

import csv
import io
import math
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import NotFound, UnsupportedMediaType, ValidationFailed
from mlserve.models import Dataset, new_id
from mlserve.stats import column_summaries

PARQUET_MAGIC = b"PAR1"
CSV_SNIFF_BYTES = 64 * 1024
NAME_MAX_LENGTH = 200


def detect_format(filename: str, head: bytes) -> str:
    """Return ``"parquet"`` or ``"csv"`` from the file's first bytes and name.

    Raises
    ------
    UnsupportedMediaType
        If the bytes are neither Parquet nor UTF-8 text.
    """
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if filename.lower().endswith(".parquet"):
        raise UnsupportedMediaType("file is named .parquet but is not Parquet", {"field": "file"})
    try:
        head[:CSV_SNIFF_BYTES].decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character may be cut at the sniff boundary.
        if exc.start < len(head[:CSV_SNIFF_BYTES]) - 4:
            raise UnsupportedMediaType(
                "file is neither CSV (UTF-8 text) nor Parquet", {"field": "file"}
            ) from exc
    return "csv"


def check_csv_shape(data: bytes, max_columns: int) -> None:
    """Reject a CSV with no header, duplicate or empty column names, or ragged rows.

    Raises
    ------
    ValidationFailed
        With ``details.field`` ``"file"`` (and ``line`` for a ragged row).
    """
    text = io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")
    reader = csv.reader(text)
    try:
        _check_csv_rows(reader, max_columns)
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
        raise ValidationFailed(
            f"line {reader.line_num}: {exc}", {"field": "file", "line": reader.line_num}
        ) from exc


def _check_csv_rows(reader: Any, max_columns: int) -> None:
    header = next(reader, None)
    if not header or all(not h.strip() for h in header):
        raise ValidationFailed("file is empty: no header row", {"field": "file"})
    _check_columns(header, max_columns)
    width = len(header)
    for row in reader:
        if row and len(row) != width:
            raise ValidationFailed(
                f"line {reader.line_num} has {len(row)} fields, the header has {width}",
                {"field": "file", "line": reader.line_num, "expected": width, "found": len(row)},
            )


def _check_columns(columns: list[str], max_columns: int) -> None:
    if len(columns) > max_columns:
        raise ValidationFailed(
            f"file has {len(columns)} columns, over max_dataset_columns={max_columns}",
            {"field": "file", "columns": len(columns), "limit": max_columns},
        )
    seen: set[str] = set()
    for index, name in enumerate(columns):
        if not str(name).strip():
            raise ValidationFailed(
                f"column {index + 1} has an empty name", {"field": "file", "column": index + 1}
            )
        if name in seen:
            raise ValidationFailed(
                f"duplicate column name {name!r}", {"field": "file", "column": name}
            )
        seen.add(name)


def parse_upload(filename: str, data: bytes, max_columns: int) -> tuple[pd.DataFrame, str]:
    """Parse an uploaded file into a DataFrame.

    Parameters
    ----------
    filename : str
        Client-side file name (used only as a format hint and label).
    data : bytes
        The whole file.
    max_columns : int
        Most columns accepted.

    Returns
    -------
    frame : DataFrame of shape (n_rows, n_columns)
    source_format : {"csv", "parquet"}

    Raises
    ------
    ValidationFailed
        Empty file, no rows, ragged CSV (names the line), duplicate columns.
    UnsupportedMediaType
        Not CSV or Parquet.
    """
    if not data.strip():
        raise ValidationFailed("file is empty", {"field": "file"})
    source_format = detect_format(filename, data[:CSV_SNIFF_BYTES])
    if source_format == "parquet":
        frame = _read_parquet(data)
        _check_columns([str(c) for c in frame.columns], max_columns)
    else:
        check_csv_shape(data, max_columns)
        try:
            frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
        except (pd.errors.ParserError, ValueError) as exc:
            raise ValidationFailed(f"CSV could not be parsed: {exc}", {"field": "file"}) from exc
    if frame.empty:
        raise ValidationFailed("file has a header but no data rows", {"field": "file"})
    return _normalise(frame), source_format


def _read_parquet(data: bytes) -> pd.DataFrame:
    try:
        table = pq.ParquetFile(io.BytesIO(data)).read()
    except (pa.ArrowException, OSError) as exc:
        raise UnsupportedMediaType(
            "file is not a readable Parquet file", {"field": "file"}
        ) from exc
    names = [str(n) for n in table.column_names]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValidationFailed(f"duplicate column name {dup!r}", {"field": "file", "column": dup})
    return table.to_pandas()


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as str; text columns as Python ``object`` strings."""
    frame.columns = [str(c) for c in frame.columns]
    for name in frame.columns:
        if not (
            pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])
        ):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame.reset_index(drop=True)


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

    The Parquet file is written atomically before the row is committed; if the
    commit fails the file is removed, so no row points at a missing file.

    Raises
    ------
    ValidationFailed, UnsupportedMediaType
        See :func:`parse_upload`.
    """
    data = stream.read()
    if has_control_characters(filename):
        raise ValidationFailed(
            "the file name must not contain control characters", {"field": "file"}
        )
    frame, source_format = parse_upload(filename, data, ctx.settings.max_dataset_columns)
    dataset_name = check_name(name or filename.rsplit("/", 1)[-1] or "dataset")
    dataset_id = new_id()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    stored = ctx.store.put_bytes(f"datasets/{dataset_id}.parquet", buffer.getvalue())
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
        columns=column_summaries(frame),
    )
    try:
        with ctx.db.session() as session:
            session.add(row)
    except BaseException:
        ctx.store.delete(stored.key)
        raise
    return row


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
    return _normalise(pd.read_parquet(io.BytesIO(data)))


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
    frame = _normalise(table.to_pandas())
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


def column_index(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Map column name -> its stored summary."""
    return {col["name"]: col for col in dataset.columns}
