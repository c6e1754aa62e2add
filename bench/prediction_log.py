"""What prediction logging costs: predict throughput with the log on (every request) vs off.

Usage::

    .venv/bin/python bench/prediction_log.py [--requests 2000] [--rounds 5]

Trains linear_regression on california_housing.csv (../shared/datasets), then sends
1-row prediction requests (the cheapest request, where a fixed per-request cost
weighs most) to the WSGI application as a server calls it (fast lane, no network;
not Flask's test client, which costs about as much as the request), alternating
rounds with ``prediction_log_sample_rate`` 1.0, 0.1 and 0.0 in the same process, so
the background writer thread inserting the logged requests into SQLite competes
for the interpreter as in production. Each round ends when the writer has
written its entries, and is measured two ways: wall-clock requests/second, and
requests per CPU-second of the whole process (request thread + writer thread,
``time.process_time``), which is what bounds the throughput of a busy server
process and is far less disturbed by other load on a shared machine (the
writer's last batch of a round is written before the CPU time is read, after the
wall-clock time is). Prints the
medians and their ratio to the unlogged median. Figures are from one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import orjson
import pandas as pd
from inprocess import Wsgi, bench_app, records, train, upload

from mlserve.api.current import context_of

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
TARGET = "median_house_value"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app = bench_app()
    client = app.test_client()
    ctx = context_of(app)
    dataset_id = upload(client, DATA.read_bytes(), "california.csv")
    train(client, dataset_id, target=TARGET, algorithm="linear_regression", model_name="housing")
    row = records(pd.read_csv(DATA).drop(columns=[TARGET]).head(1))
    body = orjson.dumps({"instances": row})
    headers = {"Content-Type": "application/json"}
    wsgi = Wsgi(app, {})

    def run() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            status, _headers, _body = wsgi.post("/api/v1/models/housing/predict", body, headers)
            assert status.startswith("200"), _body
        wall = time.perf_counter() - wall
        ctx.prediction_log.flush(60)  # the writer's CPU counts, its linger wait does not
        cpu = time.process_time() - cpu
        return args.requests / wall, args.requests / cpu

    run()  # warm up: load the model, start the writer
    rates: dict[float, list[tuple[float, float]]] = {1.0: [], 0.1: [], 0.0: []}
    for _ in range(args.rounds):
        for rate in rates:
            ctx.prediction_log.sample_rate = rate
            rates[rate].append(run())
    bare = [statistics.median(v[i] for v in rates[0.0]) for i in (0, 1)]
    for rate, values in rates.items():
        wall, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(
            f"sample_rate={rate}: median {wall:.0f} req/s wall (ratio {wall / bare[0]:.3f}), "
            f"{cpu:.0f} req per CPU-s (ratio {cpu / bare[1]:.3f})"
        )
    print(
        f"written {ctx.prediction_log.written}, dropped {ctx.prediction_log.dropped}, "
        f"failed {ctx.prediction_log.failed}"
    )


if __name__ == "__main__":
    main()
