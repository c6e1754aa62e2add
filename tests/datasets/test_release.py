"""Giving an upload's memory back: a full garbage collection only after a large file."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from typing import Any

import pytest

from mlserve.context import Context
from mlserve.datasets import release
from mlserve.datasets import service as datasets
from mlserve.errors import ValidationFailed

CSV = b"x,y,label\n1,2.5,a\n2,3.5,b\n3,,a\n"


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every garbage collection started while the test runs."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    yield seen
    gc.callbacks.remove(note)


@pytest.mark.parametrize(("collect_all", "oldest"), [(True, 2), (False, 1)])
def test_release_collects_every_generation_or_only_the_young(
    collections: list[int], collect_all: bool, oldest: int
) -> None:
    release.release_memory(collect_all=collect_all)
    assert max(collections) == oldest


@pytest.mark.parametrize(
    ("full_collect_bytes", "collect_all"),
    [(len(CSV) + 1, False), (len(CSV), True)],
    ids=["smaller-than-threshold", "at-threshold"],
)
def test_upload_collects_everything_only_from_the_threshold(
    ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
    full_collect_bytes: int,
    collect_all: bool,
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(datasets, "FULL_COLLECT_BYTES", full_collect_bytes)
    monkeypatch.setattr(datasets, "release_memory", lambda **kw: calls.append(kw["collect_all"]))
    assert datasets.create_dataset(ctx, "d", "d.csv", io.BytesIO(CSV)).n_rows == 3
    assert calls == [collect_all]


def test_failed_upload_still_releases(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(datasets, "release_memory", lambda **kw: calls.append(kw["collect_all"]))
    with pytest.raises(ValidationFailed, match="no data rows"):
        datasets.create_dataset(ctx, "d", "d.csv", io.BytesIO(b"x,y\n"))
    assert calls == [False]


class _ClosedMidway(io.BytesIO):
    """A stream the server closes while the upload fails (a client gone)."""

    def read(self, size: int | None = -1) -> bytes:
        self.close()
        raise OSError("connection reset")


def test_a_stream_closed_midway_still_releases_and_keeps_the_error(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(datasets, "release_memory", lambda **kw: calls.append(kw["collect_all"]))
    with pytest.raises(OSError, match="connection reset"):
        datasets.create_dataset(ctx, "d", "d.csv", _ClosedMidway(CSV))
    assert calls == [True]  # its size cannot be told: the full collection
