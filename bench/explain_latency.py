"""Explanation latency per model family: one row through ``POST .../explain``.

Usage::

    .venv/bin/python bench/explain_latency.py [--repeats 30]

Trains on california_housing.csv (../shared/datasets; ridge, gradient_boosting,
random_forest with 100 trees, knn) and on scikit-learn's breast cancer data
(logistic_regression, gradient_boosting), then explains one row ``--repeats`` times
per version through the WSGI application (after one warm-up request, which builds and
caches the explainer and compiles shap's numba code) and prints the median and p90
milliseconds, wall-clock and CPU time of the process (less disturbed by other load on a
shared machine). Target (issue 17): one gradient_boosting california row in at most 50 ms.
Figures are from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from inprocess import bench_app, records, train, upload
from sklearn.datasets import load_breast_cancer

DATA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
MODELS = [
    ("california", "ridge"),
    ("california", "gradient_boosting"),
    ("california", "random_forest"),
    ("california", "knn"),
    ("cancer", "logistic_regression"),
    ("cancer", "gradient_boosting"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    app = bench_app()
    client = app.test_client()
    cancer = load_breast_cancer(as_frame=True).frame
    cancer["target"] = np.where(cancer["target"] == 1, "benign", "malignant")
    frames = {"california": pd.read_csv(DATA), "cancer": cancer}
    targets = {"california": "median_house_value", "cancer": "target"}
    ids = {
        key: upload(client, frame.to_csv(index=False).encode(), f"{key}.csv")
        for key, frame in frames.items()
    }
    for data, algorithm in MODELS:
        name = f"{data}_{algorithm}"
        train(client, ids[data], target=targets[data], algorithm=algorithm, model_name=name)
        row = records(frames[data].drop(columns=targets[data]).iloc[[7]])
        url = f"/api/v1/models/{name}/explain"
        first = client.post(url, json={"instances": row})
        assert first.status_code == 200, first.get_json()
        times, cpu = [], []
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.post(url, json={"instances": row})
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200
        body = response.get_json()
        p90 = float(np.percentile(times, 90))
        print(
            f"{name}: {body['method']} ({body['output_space']}), one row: median "
            f"{statistics.median(times):.1f} ms wall (p90 {p90:.1f}), "
            f"{statistics.median(cpu):.1f} ms CPU"
        )


if __name__ == "__main__":
    main()
