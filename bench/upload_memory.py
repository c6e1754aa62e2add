"""Memory of a large upload: the HTTP worker's RSS before, at its peak and after.

Usage::

    .venv/bin/python bench/upload_memory.py [--rows 1000000,5000000] [--formats csv,parquet]

Starts ``mlserve serve --workers 1`` (granian, default settings: the default upload
limits are part of what is measured), makes a table of ``--rows`` rows per size (the
california_housing.csv rows of ../shared/datasets drawn with replacement, seeded, and a
free-text ``note`` column of about 340 characters, so that a row takes about 420 bytes
of CSV as the table of issue 14 did), writes it as CSV or Parquet in a temporary
folder, and uploads it with ``POST /api/v1/datasets`` (httpx streams the file from disk).
While the upload runs, the worker's VmRSS is read every 10 ms (``/proc``); the printed
figures are its RSS before the upload, the largest reading, and after (2 s after the
answer), in MiB, with the upload's wall time and status. Figures are from one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soak

DATA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
WORDS = np.array(
    ["the", "house", "sits", "near", "a", "quiet", "street", "with", "old", "trees", "and",
     "a", "view", "of", "the", "bay", "renovated", "kitchen", "new", "roof", "two", "car",
     "garage", "close", "to", "schools", "and", "shops"]
)  # fmt: skip
NOTE_WORDS = 60


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` california rows drawn with replacement, and a ``note`` text column."""
    source = pd.read_csv(DATA)
    rng = np.random.default_rng(seed)
    table = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    picks = WORDS[rng.integers(0, len(WORDS), (rows, NOTE_WORDS))]
    table["note"] = [" ".join(words) for words in picks]
    return table


def http_worker(server: soak.Server) -> int:
    assert server.process is not None
    pids = soak.process_tree(server.process.pid)
    workers = [p for p in pids if soak._role(p, server.process.pid) == "http"]
    assert len(workers) == 1, workers
    return workers[0]


def rss_mib(pid: int) -> float:
    return soak._status_kib(pid, "VmRSS") / 1024


def upload(server: soak.Server, path: Path) -> tuple[int, float, float]:
    """Status, seconds and the largest RSS reading of the worker during the upload."""
    pid = http_worker(server)
    peak = [rss_mib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with server.client() as client, path.open("rb") as file:
        client.timeout = 1800
        response = client.post("/api/v1/datasets", files={"file": (path.name, file)})
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return response.status_code, seconds, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000,5000000")
    parser.add_argument("--formats", default="csv,parquet")
    args = parser.parse_args()
    server = soak.Server("granian", workers=1, threads=2)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            for rows in [int(r) for r in args.rows.split(",")]:
                table = make_table(rows)
                for fmt in args.formats.split(","):
                    path = Path(folder) / f"table-{rows}.{fmt}"
                    if fmt == "csv":
                        table.to_csv(path, index=False)
                    else:
                        table.to_parquet(path, index=False)
                    size = path.stat().st_size / 2**20
                    before = rss_mib(http_worker(server))
                    status, seconds, peak = upload(server, path)
                    time.sleep(2)
                    after = rss_mib(http_worker(server))
                    print(
                        f"{rows:,} rows {fmt} ({size:,.0f} MiB): HTTP {status} in "
                        f"{seconds:.1f} s; worker RSS before {before:,.0f} MiB, "
                        f"peak {peak:,.0f}, after {after:,.0f}",
                        flush=True,
                    )
                    path.unlink()
                del table
    finally:
        server.stop()


if __name__ == "__main__":
    main()
