"""Single-row serving of a ``torch_mlp`` version against a compiled ``gradient_boosting`` one.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/torch_serve.py [--requests 1000] [--rounds 5]

Trains both on california_housing.csv (``cv_folds`` 0, seed 0, default hyper-parameters)
in one app that runs jobs in the request (authentication and rate limits off), checks both
are served by ONNX Runtime, then times one-row ``POST /api/v1/models/<name>/predict``
calls through Flask's test client: the whole request path of a serving process (JSON,
version lookup, signature validation, ONNX Runtime, JSON answer) without a socket. The
two models take turns call by call (``--requests`` calls each per round, a real row per
call, missing values as ``null``), so that load from elsewhere falls on both. Each
model's throughput is its calls over the time spent in them (median over rounds) and,
steadier on a loaded machine, the inverse of its median call; both ratios are printed
(issue 16's target: torch_mlp / gradient_boosting at least 0.8), with the graph run alone
(``OnnxModel.run`` on one row, median microseconds).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.serving.onnx import OnnxModel, feed_from_frame
from mlserve.settings import Settings
from mlserve.training.signature import model_frame

DATA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
TARGET = "median_house_value"
MODELS = ("torch_mlp", "gradient_boosting")


def train_both(client: Any) -> dict[str, dict[str, Any]]:
    """Upload the data and train each algorithm as model ``<algorithm>``; their versions."""
    form = {"file": (io.BytesIO(DATA.read_bytes()), DATA.name)}
    dataset = client.post("/api/v1/datasets", data=form).get_json()
    versions = {}
    for name in MODELS:
        spec = {"dataset_id": dataset["id"], "target": TARGET, "algorithm": name}
        job = client.post(
            "/api/v1/training-jobs", json={**spec, "model_name": name, "cv_folds": 0}
        ).get_json()
        assert job["status"] == "succeeded", job
        version = client.get(f"/api/v1/models/{name}/versions/1").get_json()
        assert version["runtime"] == "onnx", version["serving"]["compile"]
        versions[name] = version
    return versions


def interleaved(client: Any, rows: list[dict[str, Any]], n: int) -> dict[str, list[float]]:
    """Seconds of each of ``n`` one-row calls per model, the models taking turns call by
    call, so that any load from elsewhere falls on both."""
    spent: dict[str, list[float]] = {name: [] for name in MODELS}
    for i in range(n):
        for name in MODELS if i % 2 else MODELS[::-1]:
            body = {"instances": [rows[i % len(rows)]]}
            started = time.perf_counter()
            answer = client.post(f"/api/v1/models/{name}/predict", json=body)
            spent[name].append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.get_json()
    return spent


def graph_us(app: Any, version: dict[str, Any], frame: pd.DataFrame, n: int = 2000) -> float:
    """Median microseconds of one ``OnnxModel.run`` on one row (the graph alone)."""
    ctx = context_of(app)
    signature = version["signature"]
    data = ctx.store.get_bytes(f"models/{version['job_id']}.onnx", version["onnx_sha256"])
    model = OnnxModel(data, signature)
    feeds = [
        feed_from_frame(model_frame(frame.iloc[[i]], signature), signature) for i in range(200)
    ]
    times = []
    for i in range(n):
        started = time.perf_counter()
        model.run(feeds[i % len(feeds)])
        times.append(time.perf_counter() - started)
    return 1e6 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per model and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frame = pd.read_csv(DATA).drop(columns=[TARGET])
    rows = frame.head(1000).astype(object).where(frame.head(1000).notna(), None)
    records = rows.to_dict(orient="records")
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            jobs_immediate=True,
            auth=False,
            access_log=False,
            log_level="WARNING",
            prediction_log_sample_rate=0.0,
            rate_limit_per_ip="off",  # more than 1000 requests a second from one client
            rate_limit_per_key="off",
        )
        app = create_app(settings)
        client = app.test_client()
        versions = train_both(client)
        interleaved(client, records, 50)  # load each version once before timing
        rates: dict[str, list[float]] = {name: [] for name in MODELS}
        latencies: dict[str, list[float]] = {name: [] for name in MODELS}
        for round_number in range(1, args.rounds + 1):
            for name, spent in interleaved(client, records, args.requests).items():
                rates[name].append(len(spent) / sum(spent))
                latencies[name].extend(spent)
            shown = ", ".join(f"{n} {rates[n][-1]:.0f}/s" for n in MODELS)
            print(f"round {round_number}: {shown}", flush=True)
        graph = {name: graph_us(app, versions[name], frame) for name in MODELS}
    rate = {name: statistics.median(rates[name]) for name in MODELS}
    typical = {name: 1e6 * statistics.median(latencies[name]) for name in MODELS}
    for name in MODELS:
        print(
            f"{name}: {rate[name]:.0f} requests/s (median of rounds), median request "
            f"{typical[name]:.1f} us, graph alone {graph[name]:.1f} us/row"
        )
    torch_mlp, boosting = MODELS
    by_rounds = rate[torch_mlp] / rate[boosting]
    by_median = typical[boosting] / typical[torch_mlp]
    print(
        f"torch_mlp / gradient_boosting single-row throughput: {by_rounds:.3f} "
        f"(from the median requests: {by_median:.3f})"
    )


if __name__ == "__main__":
    main()
