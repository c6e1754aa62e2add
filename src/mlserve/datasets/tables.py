"""Storing a table as Parquet, batch by batch, without a whole Arrow copy of it.

Every batch becomes one row group, converted to Arrow on its own with the schema of
the first batch (``pa.Schema.from_pandas`` of a whole frame alone took 625 MiB for a
million rows of 420 bytes). A column the first batch holds no value of takes the
type its reader decided for the whole file (``arrow_types``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlserve.errors import ValidationFailed


@dataclass(frozen=True, kw_only=True)
class WrittenTable:
    """What :func:`write_parquet` wrote: rows and the column names, in order."""

    n_rows: int
    columns: list[str]


def write_parquet(
    frames: Iterable[pd.DataFrame], file: IO[bytes], arrow_types: dict[str, pa.DataType]
) -> WrittenTable:
    """Write ``frames`` (each of shape (n_rows_i, n_columns), the same columns) to ``file``
    as one Parquet file, one row group per non-empty frame.

    Parameters
    ----------
    frames : iterable of DataFrame
        Normalised batches (:func:`mlserve.datasets.upload.normalise`); read one at a time.
    file : writable binary file
    arrow_types : dict of str to pyarrow.DataType
        Type of a column the first frame holds no value of (else Arrow's ``null``).

    Returns
    -------
    WrittenTable
        Rows written (0 when every frame was empty: nothing is written then) and columns.

    Raises
    ------
    ValidationFailed
        A column Arrow cannot store (mixed Python types, say).
    """
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    rows = 0
    columns: list[str] = []
    try:
        for frame in frames:
            columns = [str(name) for name in frame.columns]
            if not len(frame):
                continue
            if writer is None or schema is None:
                schema = _schema(frame, arrow_types)
                writer = pq.ParquetWriter(file, schema)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            rows += len(frame)
    except (pa.ArrowException, ValueError) as exc:
        raise ValidationFailed(
            f"the table cannot be stored as Parquet ({exc!s:.200})", {"field": "file"}
        ) from exc
    finally:
        if writer is not None:
            writer.close()
    return WrittenTable(n_rows=rows, columns=columns)


def _schema(frame: pd.DataFrame, arrow_types: dict[str, pa.DataType]) -> pa.Schema:
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(schema):
        kind = arrow_types.get(field.name)
        if pa.types.is_null(field.type) and kind is not None:
            schema = schema.set(i, field.with_type(kind))
    return schema
