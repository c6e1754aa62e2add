"""Models of ``bench/serve.py``: trained through mlserve, loaded from its store, exported.

Every contender serves the very same fitted pipelines: mlserve trains them
(``POST /api/v1/training-jobs``), the harness reads each version's skops artifact
from mlserve's local store, loads it with :func:`mlserve.serving.loader.load_pipeline`
and writes it with joblib for the peers.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from serve_contenders import THREAD_ENV, Prepared
from serve_load import Server, free_port, running
from threadpoolctl import threadpool_limits

from mlserve.client import Client
from mlserve.serving.loader import load_pipeline
from mlserve.training.signature import model_frame

# BENCH_DATA overrides it (a worktree has no ../shared of its own).
DATA = Path(
    os.environ.get("BENCH_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"
)
TARGET = "median_house_value"
ALGORITHMS: dict[str, dict[str, Any]] = {
    "linear_regression": {},
    "gradient_boosting": {},
    "random_forest": {"n_estimators": 100},
}


def log(message: str) -> None:
    """Progress line on stderr (stdout carries the report only)."""
    print(message, file=sys.stderr, flush=True)


def create_api_key(prep: Prepared, env: dict[str, str]) -> str | None:
    """Migrate mlserve's home and create an admin key; ``None`` if mlserve has no keys."""
    mlserve = str(Path(sys.executable).parent / "mlserve")
    subprocess.run([mlserve, "db", "upgrade"], env=env, capture_output=True, check=True)
    done = subprocess.run(
        [mlserve, "keys", "create", "--role", "admin", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # an mlserve without API keys
        return None
    return done.stdout.split()[0]


def train_models(prep: Prepared, models: list[str]) -> dict[str, dict[str, Any]]:
    """Train ``models`` through a temporary mlserve; return each version's view.

    Creates ``prep.api_key`` first (when mlserve has API keys).
    """
    port = free_port()
    mlserve = str(Path(sys.executable).parent / "mlserve")
    env = {**os.environ, **THREAD_ENV, "MLSERVE_HOME": str(prep.mlserve_home), **prep.mlserve_env}
    prep.mlserve_home.mkdir(parents=True, exist_ok=True)
    prep.api_key = create_api_key(prep, env)
    argv = [mlserve, "serve", "--workers", "1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    logs = prep.run_dir / "logs" / "mlserve-train.log"
    server = Server("mlserve-train", argv, env, prep.run_dir, [f"{base}/ready"], logs)
    views = {}
    with running(server), Client(base, api_key=prep.api_key, timeout=120) as client:
        dataset = client.upload_dataset(DATA, name="california")
        jobs = {}
        for name in models:
            log(f"[train] {name} {ALGORITHMS[name] or ''}")
            jobs[name] = client.create_training_job(
                dataset["id"], TARGET, name, name, params=ALGORITHMS[name], cv_folds=0
            )
        for name, job in jobs.items():
            final = client.wait_for_job(job["id"], timeout_s=3600)
            if final["status"] != "succeeded":
                raise RuntimeError(f"training {name} failed: {final.get('error')}")
            views[name] = client.get_version(name, final["model_version"])
    return views


def _artifact(root: Path, key: str | None, sha256: str | None) -> bytes | None:
    """Bytes of the stored artifact ``key``, or of the file matching ``sha256``."""
    if key:
        data = (root / key).read_bytes()
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"artifact {key} does not match its sha256")
        return data
    if sha256:
        for path in sorted((root / "models").glob("*")):
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
    return None


def load_models(prep: Prepared, views: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Load each version's skops pipeline (and ONNX file, if any) from mlserve's store."""
    root = prep.mlserve_home / "artifacts"
    loaded = {}
    for name, view in views.items():
        key = view.get("artifact_key") or f"models/{view['job_id']}.skops"
        pipeline = load_pipeline(_artifact(root, key, view["artifact_sha256"]) or b"")
        onnx = _artifact(root, view.get("onnx_artifact_key"), view.get("onnx_sha256"))
        loaded[name] = {"view": view, "pipeline": pipeline, "onnx": onnx}
    return loaded


def _median_s(fn: Callable[[], object], budget_s: float = 3.0, most: int = 200) -> float:
    fn()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < most and (len(samples) < 5 or time.perf_counter() < deadline):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def inprocess(model: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """Rows/s of one batch prediction in this process, one thread (sklearn, and ONNX)."""
    signature = model["view"]["signature"]
    ready = model_frame(frame, signature)
    out: dict[str, Any] = {"rows": len(frame), "version_runtime": model["view"].get("runtime")}
    with threadpool_limits(limits=1):
        out["sklearn_rows_per_s"] = len(frame) / _median_s(lambda: model["pipeline"].predict(ready))
        out["onnx_rows_per_s"] = None
        if model["onnx"] is not None:
            try:
                from mlserve.serving.onnx import (  # type: ignore[import-not-found]
                    OnnxModel,
                    feed_from_frame,
                )

                onnx = OnnxModel(model["onnx"], signature)
                seconds = _median_s(lambda: onnx.run(feed_from_frame(ready, signature)))
                out["onnx_rows_per_s"] = len(frame) / seconds
            except Exception as exc:  # optional: the ONNX runtime may not be there yet
                out["onnx_error"] = f"{type(exc).__name__}: {exc}"
    use_onnx = out["onnx_rows_per_s"] is not None and out["version_runtime"] == "onnx"
    out["runtime"] = "onnx (mlserve.serving.onnx)" if use_onnx else "sklearn pipeline.predict"
    out["rows_per_s"] = out["onnx_rows_per_s"] if use_onnx else out["sklearn_rows_per_s"]
    return out


def export(prep: Prepared, loaded: dict[str, dict[str, Any]], features: pd.DataFrame) -> None:
    """Write ``<model>.joblib`` and ``features.json`` for the peers.

    A version with an ONNX artifact also gets ``<model>.onnx`` (the very bytes
    mlserve serves) and ``<model>.signature.json`` (its signature and mlserve's
    missing-text marker), which the floor (``bench/contenders/floor_app.py``) serves.
    """
    prep.model_dir.mkdir(parents=True, exist_ok=True)
    inputs = next(iter(loaded.values()))["view"]["signature"]["inputs"]
    info = {
        "columns": [spec["name"] for spec in inputs],
        "numeric": [spec["name"] for spec in inputs if spec["type"] != "string"],
        "sample": records(features.head(5)),
    }
    (prep.model_dir / "features.json").write_text(json.dumps(info, indent=2))
    for name, model in loaded.items():
        joblib.dump(model["pipeline"], prep.model_dir / f"{name}.joblib")
        if model["onnx"] is not None:
            from mlserve.serving.onnx_converters import MISSING_TEXT

            (prep.model_dir / f"{name}.onnx").write_bytes(model["onnx"])
            info = {"signature": model["view"]["signature"], "missing_text": MISSING_TEXT}
            (prep.model_dir / f"{name}.signature.json").write_text(json.dumps(info, indent=2))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, ``None`` for missing values."""
    return list(frame.astype(object).where(frame.notna(), None).to_dict(orient="records"))
