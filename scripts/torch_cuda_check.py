"""CUDA check of the ``torch_mlp`` estimators, for a GPU machine where mlserve is not installed.

Usage, from the repository root, on a machine with a CUDA GPU and torch, numpy, scipy,
scikit-learn and threadpoolctl (nothing else of mlserve's dependencies)::

    python scripts/torch_cuda_check.py > torch_cuda.json     # exit status 0: every check passed

It imports ``mlserve.training.torch_mlp`` from ``src/`` without running mlserve's package
``__init__`` (which reads the installed distribution's version and imports pydantic). With
mlserve installed, ``pytest -m cuda tests/training/test_torch_cuda.py`` checks the same
through mlserve's own training, compilation and loader.

Checks (one JSON object on stdout, ``"passed"`` per check):

1. ``cuda_fit``: a regressor with ``device="cuda"`` trains on the GPU (``device_``, the
   training record), twice with one seed: identical weights (deterministic on CUDA).
2. ``numpy_vs_cuda``: the numpy float64 forward pass serving runs equals torch's float32
   evaluation on the GPU within 1e-5 of the output scale.
3. ``cpu_serving``: the fitted model, pickled (its state is numpy), is loaded in a child
   process with ``CUDA_VISIBLE_DEVICES=""`` and ``import torch`` refused: same predictions.
4. ``cpu_update``: loaded in a child with the GPU hidden, ``partial_fit`` continues on the CPU.
5. ``classifier``: breast cancer on the GPU; accuracy on a seeded 20 % split at least 0.94.
6. ``timing`` (information): milliseconds per epoch, GPU against one CPU thread, batch
   sizes 128 and 1024, on 16,512 x 13 rows.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
NO_TORCH = (
    "class NoTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'torch':\n"
    "            raise ImportError('serving must not import torch')\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


def estimators() -> Any:
    """``mlserve.training.torch_mlp`` without mlserve's package ``__init__``."""
    if "mlserve" not in sys.modules:
        package = types.ModuleType("mlserve")
        package.__path__ = [str(SRC / "mlserve")]
        sys.modules["mlserve"] = package
    from mlserve.training import torch_mlp

    return torch_mlp


def synthetic(n: int = 16_512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 13)).astype(np.float64)
    y = np.sin(X[:, :3]).sum(axis=1) + 0.1 * rng.standard_normal(n)
    return X, y


def child(mode: str, folder: Path) -> dict[str, Any]:
    """Run this script as ``--child MODE FOLDER`` with the GPU hidden; its JSON answer."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"passed": False, "stderr": done.stderr[-2000:]}
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def run_child(mode: str, folder: Path) -> None:
    if mode == "serve":
        exec(NO_TORCH, {"sys": sys})
    model = pickle.loads((folder / "model.pkl").read_bytes())  # our own file, just written
    X = np.load(folder / "X.npy")
    expected = np.load(folder / "expected.npy")
    out: dict[str, Any] = {"same_predictions": bool(np.array_equal(model.predict(X), expected))}
    if mode == "serve":
        out["torch_imported"] = "torch" in sys.modules
        out["passed"] = out["same_predictions"] and not out["torch_imported"]
    else:
        model.partial_fit(X[:1000], np.load(folder / "y.npy")[:1000])
        out["device"] = model.device_
        out["moved"] = not np.array_equal(model.predict(X), expected)
        out["passed"] = out["device"] == "cpu" and out["moved"]
    print(json.dumps(out))


def epoch_ms(torch_mlp: Any, device: str, batch_size: int, X: np.ndarray, y: np.ndarray) -> float:
    model = torch_mlp.TorchMLPRegressor(
        max_epochs=6, patience=None, batch_size=batch_size, random_state=0, device=device
    )
    started = time.perf_counter()
    model.fit(X, y)
    return round(1000 * (time.perf_counter() - started) / 6, 1)


def main() -> int:
    import torch
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    torch_mlp = estimators()
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if not torch.cuda.is_available():
        report["passed"] = False
        print(json.dumps(report, indent=1))
        return 1
    X, y = synthetic()
    params = {"max_epochs": 40, "random_state": 0, "device": "cuda"}
    first = torch_mlp.TorchMLPRegressor(**params).fit(X, y)
    second = torch_mlp.TorchMLPRegressor(**params).fit(X, y)
    same = all(np.array_equal(v, second.weights_[k]) for k, v in first.weights_.items())
    record = first.training_record()
    report["cuda_fit"] = {
        "device": first.device_,
        "record_device": record["device"],
        "epochs": record["epochs"],
        "best_epoch": record["best_epoch"],
        "identical_weights_same_seed": same,
        "passed": first.device_ == record["device"] == "cuda" and same,
    }
    first.module_.eval()
    with torch.no_grad():
        in_torch = first.module_(torch.as_tensor(X, dtype=torch.float32, device="cuda"))
    in_torch = in_torch.double().cpu().numpy().ravel()
    numpy_pass = first.predict(X)
    error = float(np.abs(numpy_pass - in_torch).max() / np.abs(numpy_pass).max())
    report["numpy_vs_cuda"] = {"max_error_of_scale": error, "passed": error < 1e-5}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "model.pkl").write_bytes(pickle.dumps(first))
        np.save(folder / "X.npy", X)
        np.save(folder / "y.npy", y)
        np.save(folder / "expected.npy", numpy_pass)
        report["cpu_serving"] = child("serve", folder)
        report["cpu_update"] = child("update", folder)
    bunch = load_breast_cancer()
    Xb = StandardScaler().fit_transform(bunch.data)
    Xtr, Xte, ytr, yte = train_test_split(
        Xb, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    classifier = torch_mlp.TorchMLPClassifier(random_state=0, device="cuda").fit(Xtr, ytr)
    accuracy = float((classifier.predict(Xte) == yte).mean())
    report["classifier"] = {"accuracy": accuracy, "passed": accuracy >= 0.94}
    report["timing"] = {
        f"{device}_bs{bs}_ms_per_epoch": epoch_ms(torch_mlp, device, bs, X, y)
        for bs in (128, 1024)
        for device in ("cuda", "cpu")
    }
    checks = ("cuda_fit", "numpy_vs_cuda", "cpu_serving", "cpu_update", "classifier")
    report["passed"] = all(report[check]["passed"] for check in checks)
    print(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        estimators()
        run_child(sys.argv[2], Path(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
