"""One-row cost of every catalogue entry's compiled graph, with and without the rewrites.

Usage::

    .venv/bin/python bench/graph_run.py [--rows 5000] [--only linear_regression,...]

Fits every catalogue entry (both tasks: regression on ``median_house_value``,
classification on the value in four bands) on ``--rows`` rows of california_housing
(../shared/datasets, or ``BENCH_DATA``) with mlserve's defaults (``random_forest`` and
``extra_trees`` with their 100 trees), converts each pipeline twice, as skl2onnx and
mlserve's converters write it and after :mod:`mlserve.serving.onnx_fuse`'s exact
rewrites and :mod:`mlserve.serving.onnx_linear`'s fold of a linear model's scaler into
its weights, and checks that both give the same predictions on 1,000 other rows (labels
exactly, numbers within the compiler's tolerance, which the fold needs). Then,
for one row taken from those, it times alternately (``--rounds`` rounds of 2,000 calls
each, medians):

- ``run``: the ONNX Runtime session's C++ ``run`` with the graph's own feed, built once
  (one ``(1, 1)`` array per feature before; one ``(1, k)`` float64 array for the numeric
  features and one per text feature after);
- ``OnnxModel.run``: what the service calls per prediction, from one 1-D column per
  feature (the validator's output) to the predictions: the feed built each time, the
  run, the labels mapped back for classifiers.

Prints one line per entry: graph inputs and nodes before -> after, both times in
microseconds and the ratios before / after. Timings are in this process, one thread,
on whatever else the machine runs: compare ratios from one run.

Against another checkout's compiler (an earlier commit, say)::

    PYTHONPATH=/path/to/old/src .venv/bin/python bench/graph_run.py --export DIR
    .venv/bin/python bench/graph_run.py --baseline DIR

``--export`` fits as above and writes each entry's graph from ``compile_pipeline`` (which
every version of mlserve has) to ``DIR/<task>-<entry>.onnx``; ``--baseline`` then takes
those graphs as "before", run as the earlier ``OnnxModel.run`` ran them (one ``(n, 1)``
array per graph input, no ``RunOptions``), against this checkout's compiled graphs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from mlserve.serving.onnx import TOLERANCE, OnnxModel, feed_from_frame
from mlserve.training.catalogue import CATALOGUE
from mlserve.training.fit import train
from mlserve.training.signature import model_frame
from mlserve.training.spec import TrainSpec

try:  # absent from an earlier checkout, which only --export runs on
    from mlserve.serving.onnx import _convert
except ImportError:  # pragma: no cover
    _convert = None  # type: ignore[assignment]

DATA = Path(
    os.environ.get("BENCH_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
TARGET, BAND = "median_house_value", "price_band"
CALLS = 2_000


def median_us(fn: Callable[[], Any], rounds: int) -> list[float]:
    """Microseconds a call, one figure per round of :data:`CALLS` calls."""
    for _ in range(200):
        fn()
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(CALLS):
            fn()
        figures.append((time.perf_counter() - started) / CALLS * 1e6)
    return figures


def fit(name: str, task: str, frame: pd.DataFrame, rows: int) -> Any:
    """The entry fitted on the first ``rows`` rows (mlserve's defaults, seed 0)."""
    target = TARGET if task == "regression" else BAND
    spec = TrainSpec(
        dataset_id="ds",
        target=target,
        algorithm=name,
        model_name="m",
        task=task,
        features=[c for c in frame.columns if c not in (TARGET, BAND)],
        test_size=0.1,
        cv_folds=0,
        random_state=0,
    )
    return train(frame.iloc[:rows], spec, task)


def measure(name: str, task: str, frame: pd.DataFrame, args: argparse.Namespace) -> str:
    """One entry's line: fit, convert twice (or take the baseline's), check, time alternately."""
    rows, rounds = args.rows, args.rounds
    result = fit(name, task, frame, rows)
    signature, proba = result.signature, hasattr(result.pipeline, "predict_proba")
    check = model_frame(frame.iloc[rows : rows + 1_000], signature)
    models = []
    for fuse in (False, True):
        proto = _convert(
            result.pipeline,
            signature,
            task == "classification" and proba,
            fuse=fuse,
            fold_linear=fuse,
        )
        if not fuse and args.baseline:
            proto = onnx.load(Path(args.baseline) / f"{task}-{name}.onnx")
        models.append((proto, OnnxModel(proto.SerializeToString(), signature)))
    before, after = (m.run(feed_from_frame(check, signature)) for _, m in models)
    for a, b in zip(before, after, strict=True):
        if a is None or a.dtype == object:
            np.testing.assert_array_equal(a, b)
        else:  # the linear fold moves the roundings (onnx_linear): the compiler's tolerance
            scale = float(np.abs(a).max(initial=0.0))
            bound = TOLERANCE["atol"] + TOLERANCE["rtol"] * scale
            np.testing.assert_allclose(b, a, rtol=0, atol=bound)
    one = feed_from_frame(check.iloc[[0]], signature)
    columns = {feature: values.reshape(-1) for feature, values in one.items()}
    runs: list[list[float]] = [[], []]
    calls: list[list[float]] = [[], []]
    for _ in range(rounds):
        for i, (proto, model) in enumerate(models):
            feed = model.graph_feed(one)
            names = [o.name for o in proto.graph.output]
            options = None if args.baseline and i == 0 else model._run_options
            runs[i] += median_us(lambda m=model, f=feed, o=names, r=options: m._run(o, f, r), 1)
            earlier = _earlier_run(model, columns) if args.baseline and i == 0 else None
            calls[i] += median_us(earlier or (lambda m=model: m.run(columns)), 1)
    run = [statistics.median(r) for r in runs]
    call = [statistics.median(c) for c in calls]
    shape = [f"{len(p.graph.input)}/{len(p.graph.node)}" for p, _ in models]
    return (
        f"| {name} | {task} | {shape[0]} -> {shape[1]} | {run[0]:.2f} | {run[1]:.2f} | "
        f"**{run[0] / run[1]:.2f}** | {call[0]:.2f} | {call[1]:.2f} | {call[0] / call[1]:.2f} |"
    )


def _earlier_run(model: OnnxModel, columns: dict[str, np.ndarray]) -> Callable[[], Any]:
    """``OnnxModel.run`` as it was before the rewrites, for a graph with per-feature inputs."""
    pairs = list(model._inputs.items())

    def call() -> Any:
        feed = {name: values.reshape(-1, 1) for name, values in columns.items()}
        outputs = model._run(model._outputs, {g: feed[n] for n, g in pairs}, None)
        if model._labels is None:
            return np.asarray(outputs[0], dtype=np.float64).reshape(-1), None
        raw = np.asarray(outputs[0]).reshape(-1)
        found = (model._lookup[v] for v in raw.tolist())
        positions = np.fromiter(found, np.int64, len(raw))
        proba = np.asarray(outputs[1], dtype=np.float64) if len(outputs) > 1 else None
        return model._labels[positions], proba

    return call


def export(frame: pd.DataFrame, args: argparse.Namespace, only: set[str]) -> None:
    """Write ``compile_pipeline``'s graph of each entry to ``DIR/<task>-<entry>.onnx``."""
    from mlserve.serving.onnx import compile_pipeline

    folder = Path(args.export)
    folder.mkdir(parents=True, exist_ok=True)
    for task, name in sorted(CATALOGUE):
        if only and name not in only:
            continue
        result = fit(name, task, frame, args.rows)
        check = model_frame(frame.iloc[args.rows : args.rows + 1_000], result.signature)
        compiled = compile_pipeline(result.pipeline, result.signature, check)
        if compiled.onnx is not None:
            (folder / f"{task}-{name}.onnx").write_bytes(compiled.onnx)
            print(f"{task}-{name}: {len(compiled.onnx):,} bytes", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000, help="rows to fit on")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated entries (default: all)")
    parser.add_argument("--export", default="", help="write compile_pipeline's graphs here")
    parser.add_argument("--baseline", default="", help="graphs written by --export: 'before'")
    args = parser.parse_args()
    frame = pd.read_csv(DATA).sample(frac=1.0, random_state=7).reset_index(drop=True)
    bins = [-np.inf, 120_000, 180_000, 260_000, np.inf]
    bands = pd.cut(frame[TARGET], bins, labels=["low", "mid", "high", "top"])
    frame[BAND] = bands.astype(object)
    only = {n for n in args.only.split(",") if n}
    if args.export:
        export(frame, args, only)
        return
    print("| entry | task | inputs/nodes | run before, µs | after | ratio |", end="")
    print(" OnnxModel.run before, µs | after | ratio |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for task, name in sorted(CATALOGUE):
        if only and name not in only:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                line = measure(name, task, frame, args)
            except Exception as exc:  # an entry this machine cannot fit (optional library)
                line = f"| {name} | {task} | not measured: {type(exc).__name__}: {exc} |"
        print(line, flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
