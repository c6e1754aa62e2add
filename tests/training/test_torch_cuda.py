"""torch_mlp on a CUDA GPU, served on the CPU: ``pytest -m cuda tests/training/test_torch_cuda.py``.

Skipped on machines without a GPU (every CI run here). On one, a job's training (mlserve's
``train`` with the server's ``device`` set to ``cuda``) fits on the GPU and records it; the
version compiles to the same float64 ONNX graph, loads with the serving allow-list and
predicts with numpy in a process where CUDA is hidden; and two fits with one seed agree.
For a GPU machine without mlserve installed: scripts/torch_cuda_check.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from sklearn.datasets import load_breast_cancer

from mlserve.serving.onnx import compile_pipeline
from mlserve.training.fit import train
from mlserve.training.signature import model_frame
from mlserve.training.spec import TrainSpec

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def _spec(**params: object) -> TrainSpec:
    return TrainSpec(
        dataset_id="d", target="target", algorithm="torch_mlp", model_name="m", cv_folds=0,
        params=params,
    )  # fmt: skip


def test_trains_on_cuda_and_is_served_on_the_cpu(tmp_path: Path) -> None:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    result = train(frame, _spec(), "classification", server_params={"device": "cuda"})
    again = train(frame, _spec(), "classification", server_params={"device": "cuda"})
    training = result.evaluation["training"] if result.evaluation else {}
    assert training["device"] == "cuda"
    assert result.metrics == again.metrics  # deterministic per seed on CUDA too
    assert result.metrics["accuracy"] >= 0.94
    X = model_frame(frame.drop(columns=["target"]), result.signature)
    compiled = compile_pipeline(result.pipeline, result.signature, X)
    assert compiled.report["runtime"] == "onnx", compiled.report["reason"]
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(sio.dumps(result.pipeline))
    X.to_pickle(tmp_path / "X.pkl")  # our own file, read back by the child below
    np.save(tmp_path / "expected.npy", result.pipeline.predict_proba(X))
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from mlserve.serving.loader import load_pipeline\n"
        f"pipeline = load_pipeline(open({str(artifact)!r}, 'rb').read())\n"
        f"got = pipeline.predict_proba(pd.read_pickle({str(tmp_path / 'X.pkl')!r}))\n"
        f"assert np.array_equal(got, np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert done.returncode == 0


def test_gpu_epochs_against_one_cpu_thread(capsys: pytest.CaptureFixture[str]) -> None:
    """Information for the default of MLSERVE_TORCH_DEVICE: ms per epoch on each device."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((16_512, 13)), columns=[f"x{i}" for i in range(13)])
    frame["target"] = np.sin(frame[["x0", "x1", "x2"]]).sum(axis=1)
    for batch_size in (128, 1024):
        for device in ("cuda", "cpu"):
            spec = _spec(max_epochs=5, patience=None, batch_size=batch_size)
            result = train(frame, spec, "regression", server_params={"device": device})
            per_epoch = 1000 * result.training_seconds / 5
            with capsys.disabled():
                print(f"\n{device} batch {batch_size}: {per_epoch:.0f} ms per epoch")
