"""shap with its numba kernels compiled once per machine, not once per process.

shap (0.51) compiles the kernels of its maskers and links (``shap.utils._masked_model``,
``shap.links``, ``shap.maskers._tabular``...) with numba on first use, and without
numba's on-disk cache: the first explanation in every process spent 6-12 s compiling
them (measured: 12.0 s of a 24.7 s california gradient_boosting training job, against
1.6 s for the same step in the next job; and the first ``POST .../explain`` of every
serving process). :func:`load_shap` turns numba's cache on for every kernel shap
defines, in :func:`set_cache_dir`'s folder, so a process after the first loads them
from disk (numba: "Cache" in https://numba.readthedocs.io/en/stable/developer/caching.html).

The cache is numba's own files (an index and compiled objects per kernel, keyed by the
source file's path and time stamp, the CPU and numba's version) under the server's home,
written and read only by the server: nothing a client sends goes there.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.Lock()
_cache_dir: Path | None = None
_enabled = False


def set_cache_dir(path: Path) -> None:
    """Use ``path`` (created, mode 0700) for shap's compiled kernels in this process.

    Called by the composition root (:func:`mlserve.bootstrap.build_context`) with
    ``<home>/cache/numba``; the first call wins (one cache per process).
    """
    global _cache_dir
    with _lock:
        if _cache_dir is None:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            _cache_dir = path


def load_shap() -> ModuleType:
    """Import shap (heavy: numba, on first explanation), with its kernels' disk cache on
    when :func:`set_cache_dir` was called.

    Returns
    -------
    module
        ``shap``.
    """
    import shap

    global _enabled
    with _lock:
        if _cache_dir is not None and not _enabled:
            _enable_caching(_cache_dir)
            _enabled = True
    return shap


def _enable_caching(cache_dir: Path) -> None:
    from numba.core import config
    from numba.core.dispatcher import Dispatcher

    config.CACHE_DIR = os.fspath(cache_dir)  # type: ignore[attr-defined]  # read at cache creation
    for name, module in list(sys.modules.items()):
        if name != "shap" and not name.startswith("shap."):
            continue
        for value in list(vars(module).values()):
            # type(): shap keeps placeholders that raise on any attribute access
            if issubclass(type(value), Dispatcher) and value.__module__ == name:
                value.enable_caching()
