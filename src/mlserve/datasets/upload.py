"""Reading an uploaded file within limits: format sniffing, CSV shape, Parquet footer.

Nothing here trusts the file. A CSV must be UTF-8 text without NUL bytes or other
binary control characters, must not be a text pickle, and is counted row by row
against the limits. A Parquet file is read by :mod:`mlserve.datasets.parquet`
(footer first). Every refusal is a 4xx naming the column or the limit.

An upload is read from a seekable binary file (the spooled temporary file the WSGI
layer wrote the request body to) in blocks, pass after pass, and never copied whole
into memory as bytes; ``bytes`` are accepted too (wrapped in a ``BytesIO``).
"""

from __future__ import annotations

import csv
import io
import pickletools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd
import pyarrow as pa

from mlserve.datasets.csvtypes import ARROW_TYPES, column_types, typed_batches
from mlserve.datasets.limits import UploadLimits, check_columns, too_many_rows
from mlserve.datasets.parquet import fallback_types, open_parquet, parquet_frames
from mlserve.errors import UnsupportedMediaType, ValidationFailed
from mlserve.store.artifacts import file_blocks

PARQUET_MAGIC = b"PAR1"
CSV_SNIFF_BYTES = 64 * 1024
BATCH_ROWS = 100_000  # rows parsed, stored and summarised at a time
Source = bytes | IO[bytes]
# C0 controls other than tab, line feed, vertical tab, form feed and carriage return.
BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f]")


def detect_format(filename: str, head: bytes) -> str:
    """Return ``"parquet"`` or ``"csv"`` from the file's first bytes and name.

    Raises
    ------
    UnsupportedMediaType
        If the bytes are neither Parquet nor UTF-8 text, or the text holds NUL
        bytes or other binary control characters (``\\x00``-``\\x08``,
        ``\\x0e``-``\\x1f``).
    """
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if filename.lower().endswith(".parquet"):
        raise UnsupportedMediaType("file is named .parquet but is not Parquet", {"field": "file"})
    sniff = head[:CSV_SNIFF_BYTES]
    try:
        sniff.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character may be cut at the sniff boundary.
        if exc.start < len(sniff) - 4:
            raise UnsupportedMediaType(
                "file is neither CSV (UTF-8 text) nor Parquet", {"field": "file"}
            ) from exc
    found = BINARY_CONTROL.search(sniff)
    if found is not None:
        what = "NUL byte" if found.group() == b"\x00" else f"control byte {found.group()!r}"
        raise UnsupportedMediaType(
            f"file is binary, not CSV text: {what} at byte {found.start()}",
            {"field": "file", "byte": found.start()},
        )
    return "csv"


def as_file(source: Source) -> IO[bytes]:
    """``source`` as a seekable binary file, at its start."""
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    source.seek(0)
    return source


def check_csv_text(source: Source) -> None:
    """Refuse a NUL byte anywhere, and a file that is a text pickle (protocols 0 and 1).

    The file is scanned in blocks of 1 MiB (:func:`mlserve.store.artifacts.file_blocks`).
    The pickle test walks opcodes with :func:`pickletools.genops`, which decodes and
    never builds objects; CSV text fails it at its first byte or two.

    Raises
    ------
    UnsupportedMediaType
    """
    file = as_file(source)
    offset = 0
    for block in file_blocks(file):
        nul = block.find(b"\x00")
        if nul >= 0:
            at = offset + nul
            raise UnsupportedMediaType(
                f"file is binary, not CSV text: NUL byte at byte {at}",
                {"field": "file", "byte": at},
            )
        offset += len(block)
    if looks_like_pickle(file):
        raise UnsupportedMediaType(
            "file is a Python pickle, not CSV; mlserve never reads pickles", {"field": "file"}
        )


def looks_like_pickle(source: Source) -> bool:
    """Whether ``source`` is a whole pickle opcode stream ending in ``STOP`` (nothing run)."""
    file = as_file(source)
    end = file.seek(0, io.SEEK_END)
    file.seek(max(0, end - 4096))
    if not file.read().rstrip().endswith(b"."):
        return False
    file.seek(0)
    try:
        for opcode, _, position in pickletools.genops(file):
            if opcode.name == "STOP":
                return not any(block.strip() for block in file_blocks(file, (position or 0) + 1))
    except Exception:  # any decoding failure means "not a pickle"
        return False
    return False


def is_blank(source: Source) -> bool:
    """Whether ``source`` holds nothing but whitespace."""
    return not any(block.strip() for block in file_blocks(as_file(source)))


def check_csv_shape(source: Source, max_columns: int, max_rows: int | None = None) -> None:
    """Reject a CSV with no header, duplicate or empty column names, ragged rows, or too many.

    The file is read row by row (never decoded whole), so a refusal comes at the
    first row past a limit.

    Raises
    ------
    ValidationFailed
        With ``details.field`` ``"file"`` (and ``line`` for a ragged row,
        ``limit`` for a cap).
    """
    file = as_file(source)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    try:
        _check_csv_rows(reader, max_columns, max_rows)
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
        raise ValidationFailed(
            f"line {reader.line_num}: {exc}", {"field": "file", "line": reader.line_num}
        ) from exc
    finally:
        text.detach()  # the upload's file stays open for the next pass


def _check_csv_rows(reader: Any, max_columns: int, max_rows: int | None) -> None:
    header = next(reader, None)
    if not header or all(not h.strip() for h in header):
        raise ValidationFailed("file is empty: no header row", {"field": "file"})
    check_columns(header, max_columns)
    width = len(header)
    rows = 0
    for row in reader:
        if row and len(row) != width:
            raise ValidationFailed(
                f"line {reader.line_num} has {len(row)} fields, the header has {width}",
                {"field": "file", "line": reader.line_num, "expected": width, "found": len(row)},
            )
        rows += bool(row)
        if max_rows is not None and rows > max_rows:
            raise too_many_rows(max_rows)


@dataclass(frozen=True, kw_only=True)
class UploadBatches:
    """An upload checked and opened, its rows still to be read.

    Attributes
    ----------
    source_format : {"csv", "parquet"}
    arrow_types : dict of str to pyarrow.DataType
        The type each column is stored as when a first batch holds none of its values.
    frames : iterator of DataFrame of shape (at most batch_rows, n_columns)
        The rows, normalised (:func:`normalise`), each column of one type in every batch.
    """

    source_format: str
    arrow_types: dict[str, pa.DataType]
    frames: Iterator[pd.DataFrame]


def upload_batches(
    filename: str,
    data: Source,
    max_columns: int,
    limits: UploadLimits | None = None,
    batch_rows: int = BATCH_ROWS,
) -> UploadBatches:
    """Check an uploaded file and open it for reading ``batch_rows`` rows at a time.

    A CSV is checked whole first (text, pickle, shape and row count, in passes over
    the file), then its column types are decided over the whole file
    (:func:`mlserve.datasets.csvtypes.column_types`); a Parquet file's footer is judged
    first and each batch as it is read.

    Parameters
    ----------
    filename : str
        Client-side file name (used only as a format hint and label).
    data : bytes or seekable binary file
        The whole file (read in passes, from its start).
    max_columns : int
        Most columns accepted.
    limits : UploadLimits, optional
        Row and size limits (default: :class:`UploadLimits` defaults).
    batch_rows : int
        Rows per batch.

    Raises
    ------
    ValidationFailed
        Empty file, ragged CSV (names the line), duplicate columns, a limit passed, a
        Parquet column of a type mlserve does not read; reading the frames may raise
        it too (a Parquet batch past a limit or holding invalid values).
    UnsupportedMediaType
        Not CSV or Parquet; binary text or a pickle.
    """
    limits = limits or UploadLimits(max_columns=max_columns)
    file = as_file(data)
    if is_blank(file):
        raise ValidationFailed("file is empty", {"field": "file"})
    source_format = detect_format(filename, as_file(file).read(CSV_SNIFF_BYTES))
    if source_format == "parquet":
        parquet = open_parquet(as_file(file), limits)
        types = fallback_types(parquet.schema_arrow)
        frames = parquet_frames(parquet, limits, batch_rows)
    else:
        check_csv_text(file)
        check_csv_shape(file, max_columns, limits.max_rows)
        kinds = column_types(file, batch_rows)
        types = {name: ARROW_TYPES[kind] for name, kind in kinds.items()}
        frames = typed_batches(file, batch_rows, kinds)
    return UploadBatches(
        source_format=source_format,
        arrow_types=types,
        frames=(normalise(frame) for frame in frames),
    )


def parse_upload(
    filename: str, data: Source, max_columns: int, limits: UploadLimits | None = None
) -> tuple[pd.DataFrame, str]:
    """Parse an uploaded file into one DataFrame (the batches of :func:`upload_batches`).

    Returns
    -------
    frame : DataFrame of shape (n_rows, n_columns)
    source_format : {"csv", "parquet"}

    Raises
    ------
    ValidationFailed
        As :func:`upload_batches`; a file with a header but no data rows.
    UnsupportedMediaType
        As :func:`upload_batches`.
    """
    batches = upload_batches(filename, data, max_columns, limits)
    frames = [frame for frame in batches.frames if len(frame)]
    if not frames:
        raise no_rows()
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, batches.source_format


def no_rows() -> ValidationFailed:
    """The error of a file with a header but no data rows."""
    return ValidationFailed("file has a header but no data rows", {"field": "file"})


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as str; text columns as Python ``object`` strings."""
    frame.columns = [str(c) for c in frame.columns]
    for name in frame.columns:
        if not (
            pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])
        ):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame.reset_index(drop=True)
