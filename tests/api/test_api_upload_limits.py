"""Hostile uploads (issue 13, items 1, 2 and 10): each is a 4xx naming the column or the
limit, and nothing is stored (no row, no file).

Parquet files are judged by their footer before any row group is read: rows, columns,
uncompressed size and column types. CSV files are counted while read. A text pickle or
a file with NUL bytes is not CSV.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import make_settings, upload

LIMITS = {"max_dataset_rows": 1_000, "max_dataset_uncompressed_bytes": 1024**2}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_dataset_columns=50, **LIMITS)


def _parquet(table: pa.Table, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **kwargs)
    return buffer.getvalue()


def _with_pandas_metadata(meta: bytes) -> bytes:
    table = pa.table({"x": [1, 2], "y": [0.5, 1.5]})
    return _parquet(table.replace_schema_metadata({b"pandas": meta}))


def _pandas_meta_without_name() -> bytes:
    table = pa.Table.from_pandas(pa.table({"x": [1, 2]}).to_pandas())
    meta = json.loads(table.schema.metadata[b"pandas"])
    for column in meta["columns"]:
        column.pop("name")
    return json.dumps(meta).encode()


def _unchecked_text(values: list[bytes]) -> pa.Array:
    """A string array of raw bytes, built without pyarrow's UTF-8 check."""
    offsets = np.cumsum([0, *map(len, values)]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


HOSTILE_PARQUET = {
    "map column": (
        lambda: _parquet(
            pa.table({"ok": [1], "m": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64()))})
        ),
        "'m'",
    ),
    "binary non-UTF-8 column": (
        lambda: _parquet(pa.table({"ok": [1, 2], "raw": pa.array([b"\xff\xfe", b"\x80"])})),
        "'raw'",
    ),
    "list column": (lambda: _parquet(pa.table({"l": [[1, 2], [3]]})), "'l'"),
    "struct column": (lambda: _parquet(pa.table({"s": [{"a": 1}]})), "'s'"),
    "pandas metadata without name": (
        lambda: _with_pandas_metadata(_pandas_meta_without_name()),
        "pandas metadata",
    ),
    "pandas metadata not JSON": (lambda: _with_pandas_metadata(b"{not json"), "pandas metadata"),
    "pandas metadata a list": (lambda: _with_pandas_metadata(b"[1, 2]"), "pandas metadata"),
    "rows over max_dataset_rows": (
        lambda: _parquet(pa.table({"x": np.zeros(1_001)})),
        "max_dataset_rows=1000",
    ),
    "decompression bomb": (  # 200,000 rows x 2 int64: 3.2 MB decoded, a few KB on disk
        lambda: _parquet(
            pa.table({"a": np.zeros(200_000, np.int64), "b": np.zeros(200_000, np.int64)}),
            compression="zstd",
            row_group_size=50_000,
        ),
        "max_dataset_uncompressed_bytes=1048576",
    ),
    # Found by the atheris upload target in CI (crash-fc132083...): pyarrow's column paths
    # raised UnicodeDecodeError from the footer, a crash rather than an answer.
    "column name not UTF-8": (
        lambda: _parquet(pa.table({"zq": [1, 2]}), store_schema=False).replace(b"zq", b"z\xfb"),
        "not UTF-8",
    ),
    # Found by the upload target in CI (crash-ae7bdd8a...): the Parquet reader does not
    # check UTF-8 in text values, and pandas failed on them after the upload was read.
    "text value not UTF-8": (
        lambda: _parquet(
            pa.table({"sex": _unchecked_text([b"ok", b"f\xff\xfeale"]), "x": [1.0, 2.0]})
        ),
        "Invalid UTF8",
    ),
    "columns over max_dataset_columns": (
        lambda: _parquet(pa.table({f"c{i}": [1] for i in range(51)})),
        "max_dataset_columns=50",
    ),
}


@pytest.mark.parametrize(("make", "named"), HOSTILE_PARQUET.values(), ids=HOSTILE_PARQUET.keys())
def test_hostile_parquet_is_422_naming_the_problem_and_stores_nothing(
    client: FlaskClient, ctx: Context, make: Any, named: str
) -> None:
    before = stored_state(ctx)
    response = upload(client, make(), "hostile.parquet")
    assert_error(response, 422, "validation_error")
    assert named in response.get_json()["error"]["message"]
    assert stored_state(ctx) == before


def test_parquet_bomb_is_refused_by_its_footer_alone(client: FlaskClient) -> None:
    """Rows x 8 bytes from the footer, though the zeros' pages are a few bytes each."""
    data = _parquet(pa.table({"a": np.zeros(200_000, dtype=np.int64)}), compression="zstd")
    pages = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).total_byte_size
    response = upload(client, data, "bomb.parquet")
    details = assert_error(response, 422, "validation_error")
    assert details["uncompressed_bytes"] == 200_000 * 8 > 100 * pages


def test_parquet_of_readable_types_within_limits_is_accepted(client: FlaskClient) -> None:
    table = pa.table(
        {
            "i": pa.array([1, 2], pa.int32()),
            "f": [0.5, None],
            "b": [True, False],
            "t": ["a", None],
            "cat": pa.array(["x", "y"]).dictionary_encode(),
            "at": pa.array([0, 1], pa.timestamp("ms")),
        }
    )
    response = upload(client, _parquet(table), "ok.parquet")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["n_rows"] == 2


BINARY_CSV = {
    "NUL byte": (b"a,b\n1,2\n3,\x004\n", "NUL byte"),
    "NUL byte past the sniff window": (b"a,b\n" + b"1,2\n" * 20_000 + b"\x00\n", "NUL byte"),
    "escape byte": (b"a,b\n1,\x1b2\n", "control byte"),
    "pickle protocol 0": (pickle.dumps({"a": [1, 2]}, protocol=0), "pickle"),
    "pickle protocol 1": (pickle.dumps({"a": [1, 2]}, protocol=1), "NUL byte"),
}


@pytest.mark.parametrize(("data", "named"), BINARY_CSV.values(), ids=BINARY_CSV.keys())
def test_binary_looking_csv_is_415(
    client: FlaskClient, ctx: Context, data: bytes, named: str
) -> None:
    before = stored_state(ctx)
    response = upload(client, data, "data.csv")
    assert_error(response, 415, "unsupported_media_type")
    assert named in response.get_json()["error"]["message"]
    assert stored_state(ctx) == before


def test_csv_over_max_dataset_rows_is_422(client: FlaskClient, ctx: Context) -> None:
    before = stored_state(ctx)
    data = b"x,y\n" + b"1,2\n" * 1_001
    details = assert_error(upload(client, data, "long.csv"), 422, "validation_error")
    assert details["limit"] == 1_000
    assert stored_state(ctx) == before
    assert upload(client, b"x,y\n" + b"1,2\n" * 1_000, "ok.csv").status_code == 201


def test_csv_with_tabs_dots_and_colons_is_still_csv(client: FlaskClient) -> None:
    data = b"a\tb,c\n1.\t2,12:30\n.,x\n"
    response = upload(client, data, "ok.csv")
    assert response.status_code == 201, response.get_json()
