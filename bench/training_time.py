"""Wall-clock time of :func:`mlserve.training.train`, stage by stage.

Usage::

    .venv/bin/python bench/training_time.py [--algorithm gradient_boosting] [--repeats 3]

Trains the algorithm on california_housing.csv (../shared/datasets) with the default
spec (test_size 0.2, 5-fold cross-validation, seed 0) ``--repeats`` times in this
process and prints, per run, the total and the seconds spent in each progress stage
(cross-validation folds summed), then the median total. The evaluation added for the
web UI's plots (``explaining`` and the plot data of ``evaluating``) shows up as its
own stages, so its share of the job is read off directly. One run's figures on a
noisy shared machine: compare medians, not single runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import pandas as pd

from mlserve.training import TrainSpec, train

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
TARGET = "median_house_value"


def run_once(frame: pd.DataFrame, spec: TrainSpec, task: str) -> dict[str, float]:
    """Seconds per stage of one :func:`train` call (plus ``total``)."""
    stages: dict[str, float] = {}
    last = [time.perf_counter(), "start"]

    def progress(_fraction: float, stage: str) -> None:
        now = time.perf_counter()
        previous = str(last[1])
        name = "cross-validation" if previous.startswith("cross-validation") else previous
        stages[name] = stages.get(name, 0.0) + now - float(last[0])
        last[:] = [now, stage]

    started = time.perf_counter()
    train(frame, spec, task, progress)
    progress(1.0, "done")
    stages["total"] = time.perf_counter() - started
    stages.pop("start", None)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="gradient_boosting")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = pd.read_csv(DATA)
    spec = TrainSpec(
        dataset_id="bench", target=TARGET, algorithm=args.algorithm, model_name="bench"
    )
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {len(frame)} rows")
    totals = []
    for run in range(1, args.repeats + 1):
        stages = run_once(frame, spec, "regression")
        totals.append(stages["total"])
        detail = ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if k != "total")
        print(f"run {run}: total {stages['total']:.2f} s ({detail})")
    print(f"median total: {statistics.median(totals):.2f} s")


if __name__ == "__main__":
    main()
