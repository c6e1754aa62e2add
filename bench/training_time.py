"""Wall-clock time of :func:`mlserve.training.fit.train`, stage by stage; or of a job.

Usage::

    .venv/bin/python bench/training_time.py [--algorithm gradient_boosting] [--repeats 3]
    .venv/bin/python bench/training_time.py --algorithm torch_mlp --job [--cv-folds 0]

Trains the algorithm on california_housing.csv (../shared/datasets) with the default
spec (test_size 0.2, 5-fold cross-validation, seed 0) ``--repeats`` times in this
process and prints, per run, the total and the seconds spent in each progress stage
(cross-validation folds summed), then the median total. The evaluation added for the
web UI's plots (``explaining`` and the plot data of ``evaluating``) shows up as its
own stages, so its share of the job is read off directly. One run's figures on a
noisy shared machine: compare medians, not single runs.

``--job`` compares, in one run, a training job with the same pipeline fitted in this
process: the job is ``POST /api/v1/training-jobs`` on an app that runs jobs in the
request (``jobs_immediate``: the worker's code, :func:`mlserve.jobs.service.execute_job`,
with its per-epoch progress writes, evaluation, ONNX compilation and check, artifact and
registration), timed from the request to the answer; the in-process fit is the same
pipeline (:func:`mlserve.training.fit.build_pipeline`) fitted on the same 80 % split,
once per cross-validation fold and once on the whole split, as the job fits it. Runs
alternate (fit, job, fit, job...) so that load from elsewhere falls on both; the ratio
of the medians is printed (issue 16's target for torch_mlp: at most 1.25).

``--matrix`` does the same for issue 14's table, in one run: california (regression),
the Titanic-style table of ``tests/titanic.py`` (800 rows, classification, uploaded "as
is": the job leaves out the id columns and the in-process fit gets the features the job
used) and scikit-learn's digits (1,797 rows, 64 features, 10 classes), each with the
linear model of its task (linear_regression or logistic_regression), random_forest and
gradient_boosting; the in-process side is the same pipeline, split and folds
(:func:`mlserve.training.split.split`, :func:`mlserve.training.split.cv_splitter`), timed
twice: ``fits`` (each fold's fit and the final fit, nothing else) and ``notebook``
(scikit-learn's ``cross_validate`` scoring each fold with the metrics the job keeps, then
the final fit: what a notebook runs for the same numbers). ``--datasets`` and
``--algorithms`` (``linear`` for the task's linear model) pick cells. One
untimed job first (gradient_boosting on Titanic) pays what the first job of a worker
process pays once: imports (skops: about 2.5 s) and compiling shap's numba kernels (4-9
s; cached on disk after the first process, :mod:`mlserve.training.shap_jit`).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import inprocess
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import cross_validate

from mlserve.training.fit import build_pipeline, train
from mlserve.training.spec import TrainSpec
from mlserve.training.split import cv_splitter, split

DATA = Path(
    os.environ.get("MLSERVE_TEST_CALIFORNIA_CSV")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
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


def compare_with_job(spec: TrainSpec, repeats: int) -> None:
    """Print a job's wall (and CPU) time against the same fits in process, alternating, and
    the ratios of the medians. The job runs in this process (``jobs_immediate``), so its
    CPU time is this process's too; on a loaded machine CPU seconds are the steadier."""
    frame = pd.read_csv(DATA)
    with tempfile.TemporaryDirectory() as home:
        client = inprocess.bench_app(home=Path(home)).test_client()
        body = {
            **spec.model_dump(),
            "dataset_id": inprocess.upload(client, DATA.read_bytes(), DATA.name),
        }
        jobs: list[tuple[float, float]] = []
        fits: list[tuple[float, float]] = []
        for run in range(1, repeats + 1):
            fits.append(fit_like_job(frame, spec, "regression"))
            started, cpu = time.perf_counter(), time.process_time()
            job = client.post("/api/v1/training-jobs", json=body).get_json()
            jobs.append((time.perf_counter() - started, time.process_time() - cpu))
            assert job["status"] == "succeeded", job
            print(
                f"run {run}: in process {fits[-1][0]:.2f} s (CPU {fits[-1][1]:.2f} s), "
                f"job {jobs[-1][0]:.2f} s (CPU {jobs[-1][1]:.2f} s)",
                flush=True,
            )
    for i, what in enumerate(("wall", "CPU")):
        fit, job = statistics.median(f[i] for f in fits), statistics.median(j[i] for j in jobs)
        print(f"median {what}: in process {fit:.2f} s, job {job:.2f} s, ratio {job / fit:.3f}")


def _datasets() -> dict[str, tuple[bytes, str, str]]:
    """name -> (CSV bytes, target, task) for ``--matrix``."""
    import sys

    from sklearn.datasets import load_digits

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from titanic import titanic_csv  # the generated table of the tests

    digits = load_digits(as_frame=True).frame
    return {
        "titanic": (titanic_csv(), "Survived", "classification"),
        "california": (DATA.read_bytes(), TARGET, "regression"),
        "digits": (digits.to_csv(index=False).encode(), "target", "classification"),
    }


def notebook(frame: pd.DataFrame, spec: TrainSpec, task: str) -> float:
    """Wall seconds of what a notebook runs for the same result: scikit-learn's
    ``cross_validate`` with the job's folds and the metrics the job keeps of each fold
    (RMSE, MAE, R²; accuracy, macro F1), then the fit on the whole training split."""
    data = split(frame, spec, task)
    pipeline = build_pipeline(spec, task, data.signature, {"device": "cpu"})
    scoring = (
        ["neg_root_mean_squared_error", "neg_mean_absolute_error", "r2"]
        if task == "regression"
        else ["accuracy", "f1_macro"]
    )
    started = time.perf_counter()
    if spec.cv_folds:
        splitter = cv_splitter(spec, task, data.y_train)
        cross_validate(pipeline, data.X_train, data.y_train, cv=splitter, scoring=scoring)
    pipeline.fit(data.X_train, data.y_train)
    return time.perf_counter() - started


def fit_like_job(frame: pd.DataFrame, spec: TrainSpec, task: str) -> tuple[float, float]:
    """Wall and CPU seconds to fit the spec's pipeline on its split as a job does: each
    cross-validation fold, then the whole training split."""
    data = split(frame, spec, task)
    pipeline = build_pipeline(spec, task, data.signature, {"device": "cpu"})
    started, cpu = time.perf_counter(), time.process_time()
    if spec.cv_folds:
        for fit_rows, _rows in cv_splitter(spec, task, data.y_train).split(
            data.X_train, data.y_train
        ):
            clone(pipeline).fit(data.X_train.iloc[fit_rows], data.y_train.iloc[fit_rows])
    pipeline.fit(data.X_train, data.y_train)
    return time.perf_counter() - started, time.process_time() - cpu


def matrix(repeats: int, datasets: set[str], algorithms: set[str]) -> None:
    """Issue 14's table: job wall time against the same fits in process, per dataset and
    algorithm, runs alternating; prints one line per cell and the ratio of the medians.
    ``datasets`` and ``algorithms`` ("linear" for the task's linear model) select cells
    (empty: all)."""
    with tempfile.TemporaryDirectory() as home:
        client = inprocess.bench_app(home=Path(home)).test_client()
        for name, (csv, target, task) in _datasets().items():
            dataset_id = inprocess.upload(client, csv, f"{name}.csv")
            if name == "titanic":  # the first dataset: one warm-up job
                started = time.perf_counter()
                inprocess.train(
                    client,
                    dataset_id,
                    target=target,
                    model_name="warm-up",
                    algorithm="gradient_boosting",
                    cv_folds=5,
                )
                print(f"warm-up job {time.perf_counter() - started:.2f} s")
            frame = pd.read_csv(io.BytesIO(csv))
            linear = "linear_regression" if task == "regression" else "logistic_regression"
            for algorithm in (linear, "random_forest", "gradient_boosting"):
                if datasets and name not in datasets:
                    continue
                label = "linear" if algorithm == linear else algorithm
                if algorithms and label not in algorithms:
                    continue
                spec = TrainSpec(
                    dataset_id=dataset_id,
                    target=target,
                    algorithm=algorithm,
                    model_name=f"{name}-{algorithm}".replace("_", "-"),
                )
                fits, notebooks, jobs = [], [], []
                for _ in range(repeats):
                    started = time.perf_counter()
                    job = client.post("/api/v1/training-jobs", json=spec.model_dump()).get_json()
                    jobs.append(time.perf_counter() - started)
                    assert job["status"] == "succeeded", job
                    used = [c["name"] for c in job["report"]["columns"] if c["used"]]
                    fit_spec = spec.model_copy(update={"features": used})
                    fits.append(fit_like_job(frame, fit_spec, task)[0])
                    notebooks.append(notebook(frame, fit_spec, task))
                fit, took = statistics.median(fits), statistics.median(jobs)
                nb = statistics.median(notebooks)
                print(
                    f"{name:<11} {algorithm:<20} fits {fit:7.2f} s  notebook {nb:7.2f} s  "
                    f"job {took:7.2f} s  job/fits {took / fit:5.2f}  job/notebook {took / nb:5.2f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="gradient_boosting")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job", action="store_true", help="a job against the same fits")
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--matrix", action="store_true", help="issue 14's table, one run")
    parser.add_argument("--datasets", default="", help="--matrix: titanic,california,digits")
    parser.add_argument(
        "--algorithms", default="", help="--matrix: linear,random_forest,gradient_boosting"
    )
    args = parser.parse_args()
    if args.matrix:
        print(
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs"
        )
        matrix(
            args.repeats,
            {d for d in args.datasets.split(",") if d},
            {a for a in args.algorithms.split(",") if a},
        )
        return
    spec = TrainSpec(
        dataset_id="bench",
        target=TARGET,
        algorithm=args.algorithm,
        model_name="bench",
        cv_folds=args.cv_folds,
    )
    if args.job:
        print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {spec.algorithm}")
        compare_with_job(spec, args.repeats)
        return
    frame = pd.read_csv(DATA)
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
