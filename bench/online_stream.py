"""Online learning on ordered streams: the figures of docs/online-learning.md.

Usage (from the repository root)::

    .venv/bin/python bench/online_stream.py --algorithm mlp --order sorted --seeds 0 1 2 3 4
    .venv/bin/python bench/online_stream.py --data cancer --algorithm sgd_classifier

``california``: rows sorted by longitude (``../shared/datasets/california_housing.csv``, or
``MLSERVE_TEST_CALIFORNIA_CSV``), version 1 trained on the western half, the eastern half
posted to ``/samples`` in batches of 500 with the default settings. ``cancer``: scikit-learn's
breast cancer data sorted by ``worst radius``, the second half posted in batches of 25
(policy, guard window and reservoirs scaled to the 285-row stream as in
tests/online/test_ordered_streams.py). ``--order shuffled`` posts the second half in a seeded
random order instead. Everything goes over the REST API (tests/online/stream.py); prints
one line per online version (guard sets as candidate/production, "!" failed) and a summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.online.stream import Scenario, run_stream, table

from mlserve import create_app

CALIFORNIA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
TARGET = "median_house_value"
SMALL = {  # the settings of the classifier scenario, scaled to a 285-row stream
    "online_update_every_samples": 25,
    "online_guard_window_samples": 25,
    "online_holdout_reservoir_rows": 200,
    "online_guard_min_rows": 20,
}


def halves(data: str) -> tuple[pd.DataFrame, pd.DataFrame, str, int]:
    """(first half, second half, target, batch) of a dataset sorted by one feature."""
    from sklearn.datasets import load_breast_cancer, load_digits

    if data == "california":
        frame, feature, target, batch = (
            pd.read_csv(CALIFORNIA),
            "longitude",
            "median_house_value",
            500,
        )
    elif data == "cancer":
        frame, feature, target, batch = (
            load_breast_cancer(as_frame=True).frame,
            "worst radius",
            "target",
            25,
        )
    else:
        frame, feature, target, batch = load_digits(as_frame=True).frame, "pixel_5_3", "target", 50
    ordered = frame.sort_values(feature, kind="mergesort").reset_index(drop=True)
    half = len(ordered) // 2
    return ordered.iloc[:half], ordered.iloc[half:].reset_index(drop=True), target, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=["california", "cancer", "digits"], default="california")
    parser.add_argument("--algorithm", default="sgd_regressor")
    parser.add_argument("--order", choices=["sorted", "shuffled"], default="sorted")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], help="setting=value overrides")
    args = parser.parse_args()
    first, second, target, batch = halves(args.data)
    if args.order == "shuffled":
        second = second.sample(frac=1.0, random_state=0).reset_index(drop=True)
    overrides: dict[str, Any] = {}
    if args.data != "california":
        overrides = dict(SMALL)
        if args.data == "digits":
            overrides.update(online_update_every_samples=50, online_guard_window_samples=50)
    overrides.update(item.split("=", 1) for item in args.set)
    for seed in args.seeds:
        started = time.perf_counter()
        app = create_app(
            home=Path(tempfile.mkdtemp()),
            jobs_immediate=True,
            log_level="WARNING",
            auth=False,
            prediction_log_sample_rate=0.0,
            rate_limit_per_ip="off",
            rate_limit_per_key="off",
            max_batch_rows=10_000,
            **overrides,
        )
        scenario = Scenario(
            model="m",
            algorithm=args.algorithm,
            target=target,
            first=first,
            stream=second,
            batch=batch,
            random_state=seed,
        )
        run = run_stream(app.test_client(), scenario)
        print(f"--- {args.data} {args.algorithm} {args.order} seed {seed}")
        print(table(run))
        print(f"({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
