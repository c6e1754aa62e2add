"""What a traffic policy costs on the live path, and what shadows drop under load.

Usage::

    .venv/bin/python bench/traffic.py [--requests 2000] [--rounds 5] [--shadow-requests 3000]

Trains linear_regression (v1) and ridge (v2) on california_housing.csv
(../shared/datasets), and random_forest (v3, a slow shadow), then sends 1-row
prediction requests (the cheapest request, where a per-request cost weighs most)
through the WSGI application (fast lane, no network), alternating rounds in one
process: ``production`` plain on v1, then a canary policy (v2 at 10 %) with random
routing, then the same policy with a routing key in every request. Prints the median
requests/s (wall and per CPU-second of the process) and the ratio to the plain alias.

Then the shadow run: ``production`` on v1 with v3 as a shadow, ``--shadow-requests``
requests as fast as the lane answers them, and the shadow queue's counts (answered,
failed, dropped) with the live throughput against the plain alias in the same run.
Figures are from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import orjson
import pandas as pd
from inprocess import bench_app, records, train, upload

from mlserve.api.current import context_of

DATA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
TARGET = "median_house_value"
ALIAS = "/api/v1/models/housing/aliases/production"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shadow-requests", type=int, default=3000)
    args = parser.parse_args()
    app = bench_app(model_refresh_interval_ms=0)
    client = app.test_client()
    ctx = context_of(app)
    dataset_id = upload(client, DATA.read_bytes(), "california.csv")
    for algorithm in ("linear_regression", "ridge", "random_forest"):
        params = {"n_estimators": 50} if algorithm == "random_forest" else {}
        train(
            client,
            dataset_id,
            target=TARGET,
            algorithm=algorithm,
            model_name="housing",
            params=params,
        )
    row = records(pd.read_csv(DATA).drop(columns=[TARGET]).head(1))
    plain = orjson.dumps({"instances": row})
    keyed = [orjson.dumps({"instances": row, "routing_key": f"user-{i}"}) for i in range(997)]
    headers = {"Content-Type": "application/json"}
    policies = {
        "plain alias": ({"version": 1}, [plain]),
        "canary 10 %, random": ({"version": 1, "canary": {"version": 2, "weight": 0.1}}, [plain]),
        "canary 10 %, routing key": (
            {"version": 1, "canary": {"version": 2, "weight": 0.1}},
            keyed,
        ),
    }

    def run(bodies: list[bytes], n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            response = client.post(
                "/api/v1/models/housing/predict", data=bodies[i % len(bodies)], headers=headers
            )
            assert response.status_code == 200
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        return n / wall, n / cpu

    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in policies}
    for policy, bodies in policies.values():  # warm up: load every version
        client.put(ALIAS, json=policy)
        run(bodies, 200)
    for _ in range(args.rounds):
        for name, (policy, bodies) in policies.items():
            assert client.put(ALIAS, json=policy).status_code == 200
            rates[name].append(run(bodies, args.requests))
    bare = [statistics.median(v[i] for v in rates["plain alias"]) for i in (0, 1)]
    for name, values in rates.items():
        wall, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(
            f"{name}: median {wall:.0f} req/s wall (ratio {wall / bare[0]:.3f}), "
            f"{cpu:.0f} req per CPU-s (ratio {cpu / bare[1]:.3f})"
        )
    client.put(ALIAS, json={"version": 1})
    alone = run([plain], args.shadow_requests)
    client.put(ALIAS, json={"version": 1, "shadow": [3]})
    run([plain], 50)  # load v3
    ctx.shadows.flush(120)
    before = (ctx.shadows.answered, ctx.shadows.failed, ctx.shadows.dropped)
    shadowed = run([plain], args.shadow_requests)
    ctx.shadows.flush(120)
    answered, failed, dropped = (
        now - then
        for now, then in zip(
            (ctx.shadows.answered, ctx.shadows.failed, ctx.shadows.dropped), before, strict=True
        )
    )
    print(
        f"shadow v3 (random_forest) under {args.shadow_requests} requests: answered {answered}, "
        f"failed {failed}, dropped {dropped} (queue {ctx.settings.shadow_queue_size}); live "
        f"{shadowed[0]:.0f} req/s vs {alone[0]:.0f} without the shadow "
        f"(ratio {shadowed[0] / alone[0]:.3f})"
    )


if __name__ == "__main__":
    main()
