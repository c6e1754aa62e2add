"""Unit tests for the pure parts of mlserve.datasets.service: detect_format, parse_upload,
check_name.

create_dataset / get_dataset need a Context (database + store) and are covered elsewhere.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlserve.datasets.service import NAME_MAX_LENGTH, check_name
from mlserve.datasets.upload import CSV_SNIFF_BYTES, detect_format, parse_upload
from mlserve.errors import UnsupportedMediaType, ValidationFailed


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _frame_parquet_bytes(frame: pd.DataFrame, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, **kwargs)
    return buffer.getvalue()


# --------------------------------------------------------------------------- detect_format


@pytest.mark.parametrize(
    ("filename", "head", "expected"),
    [
        ("data.csv", b"a,b\n1,2\n", "csv"),
        ("data.txt", b"a,b\n1,2\n", "csv"),
        ("noextension", "naïve,b\n1,2\n".encode(), "csv"),
        ("data.parquet", b"PAR1\x00\x01rest", "parquet"),
        # The magic bytes win over a misleading name.
        ("data.csv", b"PAR1\x00\x01rest", "parquet"),
    ],
)
def test_detect_format_recognises_csv_and_parquet(
    filename: str, head: bytes, expected: str
) -> None:
    assert detect_format(filename, head) == expected


@pytest.mark.parametrize("filename", ["data.parquet", "DATA.PARQUET", "dir/x.Parquet"])
def test_detect_format_parquet_name_without_magic_is_rejected(filename: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=r"named \.parquet but is not Parquet") as info:
        detect_format(filename, b"a,b\n1,2\n")
    assert info.value.details == {"field": "file"}
    assert info.value.status_code == 415


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xfe\x00a\x00b" * 10,  # UTF-16 with BOM
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        b"a,b\n1,\xe9\n" + b"x" * 100,  # Latin-1 e-acute, well before the end
    ],
    ids=["utf16", "png", "latin1"],
)
def test_detect_format_binary_or_non_utf8_is_rejected(head: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="neither CSV"):
        detect_format("upload.csv", head)


def test_detect_format_tolerates_multibyte_char_cut_at_sniff_boundary() -> None:
    # "é" is 2 bytes in UTF-8; put its first byte at the last position of the sniff window.
    head = b"a" * (CSV_SNIFF_BYTES - 1) + "é".encode()
    assert len(head) == CSV_SNIFF_BYTES + 1
    assert detect_format("big.csv", head) == "csv"


def test_detect_format_invalid_byte_just_before_boundary_window_is_rejected() -> None:
    head = b"a" * (CSV_SNIFF_BYTES - 10) + b"\xff" + b"a" * 20
    with pytest.raises(UnsupportedMediaType):
        detect_format("big.csv", head)


# --------------------------------------------------------------------------- parse_upload: CSV


def test_parse_upload_csv_types_and_missing_values() -> None:
    data = b"a,b,c,d\n1,x,2.5,true\n2,,3.5,false\n3,y,,true\n"
    frame, source_format = parse_upload("f.csv", data, max_columns=10)
    assert source_format == "csv"
    assert list(frame.columns) == ["a", "b", "c", "d"]
    assert frame.shape == (3, 4)
    assert frame["a"].dtype == np.int64
    assert frame["b"].dtype == object
    assert frame["c"].dtype == np.float64
    assert frame["d"].dtype == bool
    # Missing text is None (not NaN); missing numbers are NaN.
    assert frame["b"].tolist() == ["x", None, "y"]
    assert frame["c"].iloc[2] != frame["c"].iloc[2]
    assert frame["d"].tolist() == [True, False, True]
    assert isinstance(frame.index, pd.RangeIndex)


def test_parse_upload_csv_strips_utf8_bom_and_keeps_unicode() -> None:
    data = "\ufeffcity,temp\nZürich,3\n東京,12\n".encode()
    frame, _ = parse_upload("f.csv", data, max_columns=10)
    assert list(frame.columns) == ["city", "temp"]
    assert frame["city"].tolist() == ["Zürich", "東京"]


def test_parse_upload_csv_quoted_fields_with_commas_and_newlines() -> None:
    data = b'a,b\n"1,5","he said ""hi"""\n2,"two\nlines"\n'
    frame, _ = parse_upload("f.csv", data, max_columns=10)
    assert frame["a"].tolist() == ["1,5", "2"]
    assert frame["b"].tolist() == ['he said "hi"', "two\nlines"]


def test_parse_upload_csv_crlf_and_blank_lines() -> None:
    frame, _ = parse_upload("f.csv", b"a,b\r\n1,2\r\n\r\n3,4\r\n", max_columns=10)
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_parse_upload_csv_exactly_at_column_limit_is_accepted() -> None:
    frame, _ = parse_upload("f.csv", b"a,b,c\n1,2,3\n", max_columns=3)
    assert frame.shape == (1, 3)


@pytest.mark.parametrize(
    ("data", "max_columns", "message", "details"),
    [
        (b"", 10, "file is empty", {"field": "file"}),
        (b"  \n\t\n", 10, "file is empty", {"field": "file"}),
        (b",,\n1,2,3\n", 10, "no header row", {"field": "file"}),
        (b"a,b\n", 10, "header but no data rows", {"field": "file"}),
        (
            b"a,b\n1,2\n3,4,5\n",
            10,
            "line 3 has 3 fields, the header has 2",
            {"field": "file", "line": 3, "expected": 2, "found": 3},
        ),
        (
            b"a,b,c\n1,2,3\n4,5\n",
            10,
            "line 3 has 2 fields, the header has 3",
            {"field": "file", "line": 3, "expected": 3, "found": 2},
        ),
        (b"a,b,a\n1,2,3\n", 10, "duplicate column name 'a'", {"field": "file", "column": "a"}),
        (b"a,,c\n1,2,3\n", 10, "column 2 has an empty name", {"field": "file", "column": 2}),
        (b"a, ,c\n1,2,3\n", 10, "column 2 has an empty name", {"field": "file", "column": 2}),
        (
            b"a,b,c\n1,2,3\n",
            2,
            "3 columns, over max_dataset_columns=2",
            {"field": "file", "columns": 3, "limit": 2},
        ),
    ],
    ids=[
        "empty",
        "whitespace-only",
        "blank-header",
        "header-only",
        "ragged-long-row",
        "ragged-short-row",
        "duplicate-column",
        "empty-column-name",
        "blank-column-name",
        "too-many-columns",
    ],
)
def test_parse_upload_csv_invalid_is_rejected(
    data: bytes, max_columns: int, message: str, details: dict[str, object]
) -> None:
    with pytest.raises(ValidationFailed, match=message) as info:
        parse_upload("f.csv", data, max_columns=max_columns)
    assert info.value.details == details
    assert info.value.status_code == 422


def test_parse_upload_csv_ragged_row_line_counts_quoted_newlines() -> None:
    # The quoted field spans lines 2-3, so the ragged row is physical line 4.
    data = b'a,b\n1,"x\ny"\n1,2,3\n'
    with pytest.raises(ValidationFailed, match="line 4 has 3 fields") as info:
        parse_upload("f.csv", data, max_columns=10)
    assert info.value.details["line"] == 4


def test_parse_upload_non_utf8_text_is_unsupported() -> None:
    data = "name,city\nRené,Orléans\n".encode("latin-1")
    with pytest.raises(UnsupportedMediaType, match="neither CSV"):
        parse_upload("f.csv", data, max_columns=10)


def test_parse_upload_parquet_name_with_csv_content_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"named \.parquet"):
        parse_upload("f.parquet", b"a,b\n1,2\n", max_columns=10)


# --------------------------------------------------------------------------- parse_upload: Parquet


def test_parse_upload_parquet_roundtrip_keeps_types() -> None:
    original = pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype="int64"),
            "f": [0.5, None, 2.5],
            "s": ["a", None, "c"],
            "b": [True, False, True],
        }
    )
    frame, source_format = parse_upload("any-name.bin", _frame_parquet_bytes(original), 10)
    assert source_format == "parquet"
    assert list(frame.columns) == ["i", "f", "s", "b"]
    assert frame["i"].tolist() == [1, 2, 3]
    assert frame["i"].dtype == np.int64
    assert frame["f"].dtype == np.float64
    assert np.isnan(frame["f"].iloc[1])
    assert frame["s"].dtype == object
    assert frame["s"].tolist() == ["a", None, "c"]
    assert frame["b"].dtype == bool


def test_parse_upload_parquet_index_is_reset() -> None:
    original = pd.DataFrame({"x": [10, 20, 30]}, index=["r1", "r2", "r3"])
    frame, _ = parse_upload("f.parquet", _frame_parquet_bytes(original, index=True), 10)
    assert isinstance(frame.index, pd.RangeIndex)
    assert list(frame.columns) == ["x"]
    assert frame["x"].tolist() == [10, 20, 30]


def test_parse_upload_parquet_too_many_columns_is_rejected() -> None:
    data = _parquet_bytes(pa.table({"a": [1], "b": [2], "c": [3]}))
    with pytest.raises(ValidationFailed, match="3 columns, over max_dataset_columns=2") as info:
        parse_upload("f.parquet", data, max_columns=2)
    assert info.value.details["limit"] == 2


def test_parse_upload_parquet_duplicate_columns_is_validation_error() -> None:
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    with pytest.raises(ValidationFailed, match="duplicate column name 'a'") as info:
        parse_upload("f.parquet", _parquet_bytes(table), max_columns=10)
    assert info.value.details == {"field": "file", "column": "a"}


def test_parse_upload_parquet_without_rows_is_rejected() -> None:
    data = _parquet_bytes(pa.table({"a": pa.array([], pa.int64())}))
    with pytest.raises(ValidationFailed, match="no data rows"):
        parse_upload("f.parquet", data, max_columns=10)


@pytest.mark.parametrize(
    "data",
    [b"PAR1garbage", b"PAR1" + b"\x00" * 64 + b"PAR1"],
    ids=["no-footer", "bogus-footer"],
)
def test_parse_upload_corrupt_parquet_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="not a readable Parquet file"):
        parse_upload("f.parquet", data, max_columns=10)


def test_parse_upload_truncated_parquet_is_unsupported() -> None:
    data = _frame_parquet_bytes(pd.DataFrame({"a": range(100)}))
    with pytest.raises(UnsupportedMediaType):
        parse_upload("f.parquet", data[: len(data) // 2], max_columns=10)


# --------------------------------------------------------------------------- check_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("iris", "iris"),
        ("  padded name \n", "padded name"),
        ("x" * NAME_MAX_LENGTH, "x" * NAME_MAX_LENGTH),
        ("ünïcödé ✓", "ünïcödé ✓"),
    ],
)
def test_check_name_returns_stripped_name(raw: str, expected: str) -> None:
    assert check_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "\t\n", None, "x" * (NAME_MAX_LENGTH + 1)],
    ids=["empty", "spaces", "whitespace", "none", "too-long"],
)
def test_check_name_invalid_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed, match=f"name must be 1 to {NAME_MAX_LENGTH} characters"):
        check_name(raw)


def test_check_name_reports_the_given_field() -> None:
    with pytest.raises(ValidationFailed, match="model_name must be") as info:
        check_name("", field="model_name")
    assert info.value.details == {"field": "model_name"}


def test_check_name_length_is_counted_after_stripping() -> None:
    name = " " * 10 + "y" * NAME_MAX_LENGTH + " " * 10
    assert check_name(name) == "y" * NAME_MAX_LENGTH
