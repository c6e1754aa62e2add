"""Giving the memory of a large upload back to the operating system.

Parsing an upload allocates its table several times over (raw text, Arrow buffers,
pandas columns, the Parquet file written). Once they are freed, Python's allocator and
glibc's ``malloc`` keep much of it mapped for reuse, so an idle web process stayed at
three times its size after one upload of a million rows. :func:`release_memory`
collects garbage, returns the unused blocks of Arrow's memory pool
(``MemoryPool.release_unused``) and asks glibc to return free heap pages
(``malloc_trim(0)``, glibc's ``malloc.h``; a no-op elsewhere).

May import pyarrow and the standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from typing import Any

import pyarrow as pa


def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only (not musl)
    except OSError:
        return None


_TRIM = _malloc_trim()


def release_memory(*, collect_all: bool = True) -> None:
    """Free what a finished upload left: garbage, Arrow's pool, glibc's free pages.

    Parameters
    ----------
    collect_all : bool
        Collect every generation of garbage (``gc.collect()``: about 80 ms in a
        process that imported scikit-learn, whatever the upload's size, measured), or
        only the young ones (``gc.collect(1)``: well under 1 ms). Most of what an
        upload leaves is freed by reference counting; the full collection found
        nothing to free after uploads of 14 and 68 MiB, and Arrow's pool and
        ``malloc_trim`` gave back 46 and 87 MiB (measured), so small uploads skip it.
    """
    gc.collect() if collect_all else gc.collect(1)
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
