"""Prediction latency through mlserve's request path vs the bare pipeline, in one process.

Usage::

    .venv/bin/python bench/predict_latency.py [--repeats 300]

Trains linear_regression and gradient_boosting on california_housing.csv
(../shared/datasets), then times, for 1-row and 1,000-row payloads, (a) a POST to
/api/v1/models/<name>/predict through Flask's test client (JSON parse, signature
validation, predict, JSON dump; no network), (b) the version's serving runtime
alone (ONNX Runtime for a compiled version) on ready arrays, and (c) the
scikit-learn ``pipeline.predict`` on a ready DataFrame. Prints medians and the
ratio (a)/(c): what a request to mlserve costs against calling scikit-learn
yourself. Figures are ratios from one run; the machine is noisy.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.training.signature import model_frame

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
TARGET = "median_house_value"


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    app = create_app(home=Path(tempfile.mkdtemp()), jobs_immediate=True, log_level="WARNING")
    client = app.test_client()
    ctx = context_of(app)
    frame = pd.read_csv(DATA)
    upload = client.post(
        "/api/v1/datasets",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(DATA.read_bytes()), "california.csv")},
    )
    features = frame.drop(columns=[TARGET])
    rows = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"python {platform.python_version()}; same process, no network"
    )
    print(
        f"{'model':<20}{'runtime':>8}{'rows':>6}{'mlserve ms':>12}{'runtime ms':>12}"
        f"{'pipeline ms':>13}{'mlserve/pipeline':>18}"
    )
    for algorithm in ("linear_regression", "gradient_boosting"):
        job = client.post(
            "/api/v1/training-jobs",
            json={
                "dataset_id": upload.get_json()["id"],
                "target": TARGET,
                "algorithm": algorithm,
                "model_name": algorithm,
                "cv_folds": 0,
            },
        ).get_json()
        row = registry.get_version(ctx, algorithm, job["model_version"])
        served_model = ctx.models.get(row)
        pipeline = load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))
        for n in (1, 1000):
            body = {"instances": rows[:n]}
            ready = model_frame(features.head(n), row.signature)
            columns = served_model.validator.columns_from_frame(ready)
            served = _median_ms(
                lambda b=body, a=algorithm: client.post(f"/api/v1/models/{a}/predict", json=b),
                args.repeats,
            )
            alone = _median_ms(lambda c=columns, m=served_model: m.runtime.predict(c), args.repeats)
            bare = _median_ms(lambda r=ready, p=pipeline: p.predict(r), args.repeats)
            print(
                f"{algorithm:<20}{row.runtime:>8}{n:>6}{served:>12.3f}{alone:>12.3f}"
                f"{bare:>13.3f}{served / bare:>18.2f}"
            )


if __name__ == "__main__":
    main()
