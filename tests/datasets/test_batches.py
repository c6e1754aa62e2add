"""Uploads read, stored and summarised in batches (issue 14 item 6): one type per column
over the whole file, the stored table and its statistics equal to those of the whole
table read at once."""

from __future__ import annotations

import io
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.datasets import csvtypes, service, upload
from mlserve.datasets import summaries as stored_stats
from mlserve.datasets.csvtypes import BatchKind
from mlserve.datasets.stats import column_summaries
from mlserve.datasets.summaries import stored_summaries
from mlserve.datasets.tables import write_parquet
from tests.conftest import make_settings
from tests.titanic import titanic_frame


def kinds(*codes: str) -> list[BatchKind]:
    """Batch kinds from codes such as ``"i"`` or ``"f?"`` (``?``: a value was missing)."""
    return [BatchKind(kind=c[0], missing=c.endswith("?") or c == "e") for c in codes]


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (("i", "i"), "int64"),
        (("i", "f"), "float64"),
        (("i", "i?"), "float64"),
        (("i", "e"), "float64"),  # a batch with every value missing
        (("e", "e"), "float64"),
        (("b", "b"), "bool"),
        (("b", "e"), "bool_object"),
        (("b", "b?"), "bool_object"),
        (("b", "i"), "text"),
        (("i", "O"), "text"),
        (("O", "f?"), "text"),
        (("u",), "uint64"),
        (("u", "i"), "float64"),
    ],
)
def test_one_type_per_column_as_pandas_decides_for_a_whole_file(
    codes: tuple[str, ...], expected: str
) -> None:
    assert csvtypes.unify(kinds(*codes)) == expected


def whole_file(data: bytes) -> pd.DataFrame:
    return upload.normalise(pd.read_csv(io.BytesIO(data), encoding="utf-8-sig"))


def in_batches(data: bytes, batch_rows: int) -> tuple[list[pd.DataFrame], upload.UploadBatches]:
    batches = upload.upload_batches("t.csv", data, 20, batch_rows=batch_rows)
    return list(batches.frames), batches


# Each column changes what pandas infers from one batch of 3 rows to the next.
TRICKY_CSV = (
    b"count,late_missing,code,flag,late_flag_missing,empty_first,ratio\n"
    b"1,10,7,True,True,,0.5\n"
    b"2,11,8,False,False,,1\n"
    b"3,12,9,True,True,,2\n"
    b"4,,007,False,,x,3\n"
    b"5,14,A12,True,False,y,4.25\n"
    b"6,15,,False,True,,5\n"
    b"7,16,9,True,False,z,6\n"
)


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 100])
def test_batches_have_the_types_and_values_of_the_whole_file(batch_rows: int) -> None:
    frames, batches = in_batches(TRICKY_CSV, batch_rows)
    assert {tuple(map(str, f.dtypes)) for f in frames} == {tuple(map(str, frames[0].dtypes))}
    together = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(together, whole_file(TRICKY_CSV))
    assert together["code"].tolist()[:5] == ["7", "8", "9", "007", "A12"]  # text as written
    assert str(batches.arrow_types["empty_first"]) == "string"
    assert str(batches.arrow_types["late_flag_missing"]) == "bool"


def stored_and_summarised(
    frames: list[pd.DataFrame], types: dict, batch_rows: int
) -> tuple[pd.DataFrame, list]:
    """The frames written, read back, and summarised both ways: text columns counted
    while written (as uploads are) and read back from the file (checked equal)."""
    with tempfile.TemporaryFile() as file:
        passes: dict[str, stored_stats.TextPass] = {}
        text = {str(n) for n in frames[0].columns if frames[0][n].dtype == object}
        text -= {n for n, kind in types.items() if kind != pa.string()}
        written = write_parquet(stored_stats.observe(frames, passes, text), file, types)
        assert written.n_rows == sum(len(f) for f in frames)
        file.seek(0)
        stored = upload.normalise(pq.read_table(file).to_pandas())
        assert pq.ParquetFile(file).num_row_groups == sum(1 for f in frames if len(f))
        counted_while_written = stored_summaries(file, batch_rows, passes)
        read_back = stored_summaries(file, batch_rows)
        assert counted_while_written == read_back
        return stored, read_back


@pytest.mark.parametrize("batch_rows", [2, 3, 100])
def test_stored_table_and_statistics_equal_the_whole_tables(batch_rows: int) -> None:
    frames, batches = in_batches(TRICKY_CSV, batch_rows)
    stored, summaries = stored_and_summarised(frames, batches.arrow_types, batch_rows)
    whole = whole_file(TRICKY_CSV)
    pd.testing.assert_frame_equal(stored, whole)
    assert summaries == column_summaries(whole)


@pytest.fixture(params=[0, stored_stats.FEW_DISTINCT], ids=["second-pass", "one-pass"])
def few_distinct(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Top values found in a second pass over the column (0), or kept from the first."""
    monkeypatch.setattr(stored_stats, "FEW_DISTINCT", request.param)
    return int(request.param)


def titanic_csv() -> bytes:
    return titanic_frame().to_csv(index=False).encode()


@pytest.mark.parametrize("batch_rows", [37, 800])
def test_titanic_statistics_in_batches_equal_the_whole_tables(
    batch_rows: int, few_distinct: int
) -> None:
    data = titanic_csv()
    frames, batches = in_batches(data, batch_rows)
    _, summaries = stored_and_summarised(frames, batches.arrow_types, batch_rows)
    assert summaries == column_summaries(whole_file(data))
    roles = {s["name"]: s["role"] for s in summaries}
    assert roles["PassengerId"] == roles["Name"] == "id"
    assert roles["Ticket"] == "high_cardinality"


def test_top_values_are_counted_over_the_whole_column_not_batch_by_batch(
    few_distinct: int,
) -> None:
    # "rare" is never the most frequent value of any batch of 4, yet is overall:
    # merging each batch's own top values would miss it. Ties keep first appearance.
    values = ["a", "a", "rare", "x", "b", "b", "rare", "y", "c", "c", "rare", "z"]
    values += ["q", "p", "q", "p"]
    frame = upload.normalise(pd.DataFrame({"t": values}))
    frames = [frame.iloc[i : i + 4] for i in range(0, len(frame), 4)]
    _, summaries = stored_and_summarised(frames, {}, 4)
    top = [(t["value"], t["count"]) for t in summaries[0]["top"]]
    assert top[0] == ("rare", 3)
    assert top[1:6] == [("a", 2), ("b", 2), ("c", 2), ("q", 2), ("p", 2)]
    assert summaries == column_summaries(frame)


@pytest.mark.parametrize(
    "column",
    [
        [None] * 6,  # text missing everywhere
        ["one"] * 5 + [None],  # constant
        [f"a fairly long sentence number {i} of free text" for i in range(6)],
    ],
)
def test_text_columns_of_few_or_no_values(column: list[str | None], few_distinct: int) -> None:
    frame = upload.normalise(pd.DataFrame({"t": pd.Series(column, dtype=object)}))
    frames = [frame.iloc[:2], frame.iloc[2:]]
    _, summaries = stored_and_summarised(frames, {"t": csvtypes.ARROW_TYPES["text"]}, 2)
    assert summaries == column_summaries(frame)


def test_parquet_upload_in_batches_equals_the_whole_file() -> None:
    frame = titanic_frame()
    data = frame.to_parquet(index=False)
    frames, batches = in_batches(data, 64)
    assert batches.source_format == "parquet" and len(frames) == 13
    stored, summaries = stored_and_summarised(frames, batches.arrow_types, 64)
    whole = upload.normalise(pd.read_parquet(io.BytesIO(data)))
    pd.testing.assert_frame_equal(stored, whole)
    assert summaries == column_summaries(whole)


def test_upload_memory_grows_with_the_batch_not_the_file(tmp_path: Path) -> None:
    """Python's allocations (text as Python strings, numpy arrays) peak at a fraction of
    the file (the 1 MiB blocks of the text check, one batch, 8 to 33 bytes of hash a
    text value); reading the table whole holds every note as a ``str``, more than the file."""
    rng = np.random.default_rng(7)
    words = np.array(["house", "near", "the", "quiet", "bay", "street", "old", "view"])
    rows = 50_000
    notes = [" ".join(rng.choice(words, 40)) for _ in range(rows)]
    frame = pd.DataFrame({"x": rng.normal(size=rows), "note": notes})
    data = frame.to_csv(index=False).encode()
    ctx = context_of(create_app(make_settings(tmp_path, dataset_batch_rows=1_000)))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        row = service.create_dataset(ctx, "notes", "notes.csv", io.BytesIO(data))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        ctx.db.dispose()
    assert row.n_rows == rows
    assert peak < 0.5 * len(data), (peak, len(data))
    tracemalloc.start()
    try:
        upload.parse_upload("notes.csv", data, 10)
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert whole_peak > len(data)
