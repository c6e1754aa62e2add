"""Statistics of a stored table, a column at a time, never the whole table at once.

A column that is not text (numbers, booleans, dates) is read back from the stored
Parquet file whole, alone (8 bytes a row at most), and summarised by
:func:`mlserve.datasets.stats.column_summary` as an in-memory column is. A text column
could be as large as the file, so it is counted in batches, as the batches are written
(:func:`observe`) or read back, and never held whole: each batch's present values are
hashed (``pandas.util.hash_array``, 64 bits), the distinct values and their counts come
from the hashes of the whole column (8 bytes a value), and the text of the ten most
frequent is kept from the first pass when the column has at most 1,000 distinct values,
else found in a second pass over the stored column. Two different values share a hash
with probability about n^2 / 2^65 for n distinct values (below 1e-6 at five million);
the counts are otherwise exactly pandas' (``nunique``, ``value_counts``: ties in order of
first appearance)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlserve.datasets.roles import WORDS_SAMPLE_ROWS, role_from_counts
from mlserve.datasets.stats import TOP_CATEGORIES, column_summary
from mlserve.datasets.upload import normalise
from mlserve.store.documents import CategoryCount, ColumnSummary

Batches = Callable[[], Iterator[pd.Series]]
FEW_DISTINCT = 1_000  # up to this many distinct texts, the top values need no second pass


class TextPass:
    """The first pass over one text column: rows, hashes, the first 2,000 values, and
    where each distinct value first appears while there are few (:func:`_first_texts`).

    Fed batch by batch, from the stored file or from the batches as they are stored
    (:func:`observe`), which spares reading the column back.
    """

    def __init__(self) -> None:
        self.rows = self.present = 0
        self.sample: list[str] = []
        self.hashes: list[np.ndarray] = []
        self.firsts: dict[int, tuple[int, str]] | None = {}  # hash -> (position, text)

    def add(self, series: pd.Series) -> None:
        """Count one batch (n_rows values, missing ``None`` or ``NaN``) of the column."""
        present = series.dropna()
        self.rows += len(series)
        self.sample.extend(present.iloc[: WORDS_SAMPLE_ROWS - len(self.sample)].tolist())
        self.hashes.append(_hashes(present.to_numpy(dtype=object)))
        self.firsts = _first_texts(self.firsts, self.hashes[-1], present, self.present)
        self.present += len(present)


def observe(
    frames: Iterable[pd.DataFrame], passes: dict[str, TextPass], text: set[str]
) -> Iterator[pd.DataFrame]:
    """``frames`` unchanged, each of the ``text`` columns counted into ``passes`` on the way."""
    for frame in frames:
        for name in text:
            passes.setdefault(name, TextPass()).add(frame[name])
        yield frame


def stored_summaries(
    file: IO[bytes], batch_rows: int, passes: dict[str, TextPass] | None = None
) -> list[ColumnSummary]:
    """Summaries of every column of the Parquet file ``file``, in column order.

    Parameters
    ----------
    file : seekable binary file
        A Parquet file written by :func:`mlserve.datasets.tables.write_parquet`.
    batch_rows : int
        Rows of a text column read at a time.
    passes : dict of str to TextPass, optional
        First passes over text columns already made (:func:`observe`) while the file
        was written; the other text columns are read for theirs.

    Returns
    -------
    list of ColumnSummary
        As :func:`mlserve.datasets.stats.column_summaries` of the whole table.
    """
    parquet = pq.ParquetFile(file, pre_buffer=False)  # else whole columns are read ahead
    summaries = []
    for field in parquet.schema_arrow:
        name = str(field.name)
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            batches = _column_batches(parquet, name, batch_rows)
            summaries.append(text_summary(name, batches, (passes or {}).get(name)))
        else:
            column = normalise(parquet.read(columns=[name]).to_pandas())[name]
            summaries.append(column_summary(name, column))
    return summaries


def _column_batches(parquet: pq.ParquetFile, name: str, batch_rows: int) -> Batches:
    def batches() -> Iterator[pd.Series]:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=[name]):
            yield batch.column(0).to_pandas()

    return batches


def _hashes(values: np.ndarray) -> np.ndarray:
    # categorize=False: hash every value (10x faster on mostly distinct text).
    return pd.util.hash_array(values, categorize=False)


def text_summary(name: str, batches: Batches, first: TextPass | None = None) -> ColumnSummary:
    """Summary of one text column read in batches (see the module docstring).

    Parameters
    ----------
    name : str
    batches : callable returning an iterator of Series
        Each call reads the column again from its start, in batches of text (missing
        values ``None`` or ``NaN``); called for the first pass unless ``first`` is
        given, and again only when the column has more than :data:`FEW_DISTINCT`
        distinct values.
    first : TextPass, optional
        The first pass, if it was made already.

    Returns
    -------
    ColumnSummary
        ``type`` ``"string"``, ``missing``, ``unique``, ``top``, ``role``, ``role_reason``.
    """
    if first is None:
        first = TextPass()
        for series in batches():
            first.add(series)
    distinct, counts = _distinct(first.hashes)
    firsts = first.firsts
    summary: ColumnSummary = {
        "name": name,
        "type": "string",
        "dtype": "object",  # text, as mlserve.datasets.upload.normalise leaves it
        "missing": first.rows - first.present,
        "unique": len(distinct),
        "top": (
            _top(batches, distinct, counts) if firsts is None else _top_of(firsts, distinct, counts)
        ),
    }
    sample = first.sample
    words = float(np.mean([len(text.split()) for text in sample])) if sample else 0.0
    summary["role"], summary["role_reason"] = role_from_counts(
        "string",
        n_rows=first.rows,
        n_present=first.present,
        unique=len(distinct),
        mean_words=words,
    )
    return summary


def _first_texts(
    firsts: dict[int, tuple[int, str]] | None,
    hashed: np.ndarray,
    present: pd.Series,
    offset: int,
) -> dict[int, tuple[int, str]] | None:
    """Where each distinct value first appears and its text, while a column has at most
    :data:`FEW_DISTINCT` of them (``None`` past that: the top values are then found in
    a second pass over the column, :func:`_top`)."""
    if firsts is None:
        return None
    values, at = np.unique(hashed, return_index=True)
    for value, position in zip(values.tolist(), at.tolist(), strict=True):
        if value not in firsts:
            firsts[value] = (offset + position, str(present.iloc[position]))
            if len(firsts) > FEW_DISTINCT:
                return None
    return firsts


def _top_of(
    firsts: dict[int, tuple[int, str]], distinct: np.ndarray, counts: np.ndarray
) -> list[CategoryCount]:
    """The most frequent values when every distinct value's text was kept in one pass."""
    ranked = sorted(
        ((int(c), *firsts[int(h)]) for h, c in zip(distinct, counts, strict=True)),
        key=lambda item: (-item[0], item[1]),
    )
    return [{"value": text, "count": count} for count, _, text in ranked[:TOP_CATEGORIES]]


def _distinct(hashes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct hashes and how often each occurs (about 33 bytes a value at the
    peak: the hashes sorted in place, then the distinct ones and their counts)."""
    every = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    hashes.clear()
    if not len(every):
        return every, np.empty(0, dtype=np.int64)
    every.sort()
    starts = np.flatnonzero(np.concatenate(([True], every[1:] != every[:-1])))
    counts = np.diff(np.append(starts, len(every)))
    return every[starts], counts


def _top(batches: Batches, distinct: np.ndarray, counts: np.ndarray) -> list[CategoryCount]:
    """The :data:`TOP_CATEGORIES` most frequent values, ties in order of first appearance
    (pandas' ``value_counts``): the values of the k-th largest count or more are looked
    for in a pass over the batches, which stops once all of them, and enough of those at
    exactly that count, have been seen."""
    k = min(TOP_CATEGORIES, len(distinct))
    if not k:
        return []
    cut = np.partition(counts, len(counts) - k)[len(counts) - k]
    need_equal = k - int((counts > cut).sum())
    need = k - need_equal  # values above the cut: all of them make the top
    found: dict[int, tuple[int, int, str]] = {}  # hash -> (count, first position, text)
    offset = 0
    for series in batches():
        present = series.dropna()
        hashed = _hashes(present.to_numpy(dtype=object))
        seen = counts[np.searchsorted(distinct, hashed)]
        for at in np.flatnonzero(seen >= cut):
            key, count = int(hashed[at]), int(seen[at])
            if key in found or (count == cut and need_equal == 0):
                continue
            found[key] = (count, offset + int(at), str(present.iloc[at]))
            if count == cut:
                need_equal -= 1
            else:
                need -= 1
            if need == need_equal == 0:
                break
        if need == need_equal == 0:
            break
        offset += len(present)
    ranked = sorted(found.values(), key=lambda item: (-item[0], item[1]))
    return [{"value": text, "count": count} for count, _, text in ranked[:k]]
