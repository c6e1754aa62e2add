"""The torch_mlp estimators (mlserve.training.torch_mlp): validation, determinism, early
stopping, progress, numpy state, partial_fit, and a forward pass that needs no torch.

Small data only (diabetes, iris): the acceptance figures on california, breast cancer and
digits are over HTTP in tests/api/test_api_torch_mlp.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.datasets import load_diabetes, load_iris
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlserve.errors import ValidationFailed
from mlserve.serving.loader import load_pipeline
from mlserve.training import torch_loop as tl
from mlserve.training.catalogue import build_estimator, get_algorithm
from mlserve.training.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

SMALL = {"hidden_layer_sizes": (32, 16), "max_epochs": 30, "patience": 5}


def _pipeline_of(model: Any) -> Pipeline:
    return Pipeline([("estimator", model)])


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_iris()
    return StandardScaler().fit_transform(bunch.data), bunch.target_names[bunch.target]


@pytest.fixture(scope="module")
def fitted(diabetes: tuple[np.ndarray, np.ndarray]) -> TorchMLPRegressor:
    X, y = diabetes
    return TorchMLPRegressor(**SMALL, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"hidden_layer_sizes": []}, "hidden_layer_sizes", "1 to 8 integers"),
        ({"hidden_layer_sizes": [64, 0]}, "hidden_layer_sizes", "1 to 8 integers"),
        ({"hidden_layer_sizes": [8] * 9}, "hidden_layer_sizes", "1 to 8 integers"),
        ({"hidden_layer_sizes": [5000]}, "hidden_layer_sizes", "1 to 8 integers"),
        ({"hidden_layer_sizes": [4096] * 3}, "hidden_layer_sizes", "33,554,432 weights"),
        ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes", "hidden_layer_sizes"),
        ({"activation": "gelu"}, "activation", "activation"),
        ({"dropout": 1.0}, "dropout", "dropout"),
        ({"optimizer": "lbfgs"}, "optimizer", "optimizer"),
        ({"learning_rate": 0}, "learning_rate", "learning_rate"),
        ({"lr_schedule": "step"}, "lr_schedule", "lr_schedule"),
        ({"weight_decay": -1e-4}, "weight_decay", "weight_decay"),
        ({"batch_size": 0}, "batch_size", "batch_size"),
        ({"max_epochs": 10_001}, "max_epochs", "max_epochs"),
        ({"patience": 0}, "patience", "patience"),
        ({"validation_fraction": 0.6}, "validation_fraction", "validation_fraction"),
        ({"partial_fit_epochs": 101}, "partial_fit_epochs", "partial_fit_epochs"),
        ({"batch_norm": "yes"}, "batch_norm", "batch_norm"),
    ],
)
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_bad_hyper_parameters_are_refused_at_submit_naming_the_field(
    task: str, params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=f"invalid hyper-parameter: .*{message}") as info:
        build_estimator(get_algorithm("torch_mlp", task), params, 0)
    assert info.value.details == {"field": f"params.{field}"}


def test_boolean_layer_size_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationFailed, match="takes no boolean") as info:
        build_estimator(
            get_algorithm("torch_mlp", "regression"), {"hidden_layer_sizes": [8, True]}, 0
        )
    assert info.value.details["field"] == "params.hidden_layer_sizes"


@pytest.mark.parametrize("name", ["device", "early_stopping"])
def test_device_is_the_servers_and_there_is_no_early_stopping_parameter(name: str) -> None:
    """``device`` comes from MLSERVE_TORCH_DEVICE; ``early_stopping`` would be special-cased
    by the online update (sklearn MLP semantics), so the split is ``patience``."""
    with pytest.raises(ValidationFailed, match=f"unknown hyper-parameter '{name}'"):
        build_estimator(get_algorithm("torch_mlp", "regression"), {name: "cpu"}, 0)
    built = build_estimator(get_algorithm("torch_mlp", "regression"), {}, 0, {"device": "auto"})
    assert built.regressor.device == "auto" and built.regressor.random_state == 0
    assert "early_stopping" not in TorchMLPRegressor().get_params()


def test_same_seed_same_weights_other_seed_other_weights(
    diabetes: tuple[np.ndarray, np.ndarray], fitted: TorchMLPRegressor
) -> None:
    X, y = diabetes
    again = TorchMLPRegressor(**SMALL, random_state=0).fit(X, y)
    other = TorchMLPRegressor(**SMALL, random_state=1).fit(X, y)
    for key, value in fitted.weights_.items():
        assert np.array_equal(value, again.weights_[key]), key
    assert not np.array_equal(fitted.weights_["0.weight"], other.weights_["0.weight"])
    assert fitted.history_ == again.history_


def test_early_stopping_keeps_the_best_epoch_and_reports_each_epoch(
    diabetes: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = diabetes
    seen: list[tuple[float, str]] = []
    model = TorchMLPRegressor(
        hidden_layer_sizes=[64], max_epochs=400, patience=3, learning_rate=0.05, random_state=0
    )
    model.fit(X, y, progress=lambda fraction, stage: seen.append((fraction, stage)))
    assert model.n_iter_ < 400, "patience 3 should stop this long before 400 epochs"
    assert model.n_iter_ - model.best_epoch_ == 3
    assert seen[0] == (1 / 400, "epoch 1/400")
    assert seen[-1] == (model.n_iter_ / 400, f"epoch {model.n_iter_}/400")
    assert len(seen) == model.n_iter_
    valid = [h["valid_loss"] for h in model.history_]
    assert model.best_loss_ == min(valid) == valid[model.best_epoch_ - 1]
    # the kept weights are those of the best epoch: their validation loss is the best one
    assert model.n_threads_ == 1 and torch.get_num_threads() >= 1


def test_without_patience_there_is_no_split_and_every_epoch_runs(
    diabetes: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = diabetes
    model = TorchMLPRegressor(hidden_layer_sizes=8, patience=None, max_epochs=7, random_state=0)
    model.fit(X, y)
    record = model.training_record()
    assert (record["epochs"], record["online_updates"], record["device"]) == (7, 0, "cpu")
    assert record["curve"]["valid_loss"] == [None] * 7
    assert record["curve"]["epoch"] == list(range(1, 8))
    assert record["torch_version"] == torch.__version__ and record["threads"] == 1


def test_a_diverging_loss_fails_with_a_readable_error(
    diabetes: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = diabetes
    model = TorchMLPRegressor(optimizer="sgd", learning_rate=1e6, batch_norm=False, random_state=0)
    with pytest.raises(ValueError, match=r"training loss became (nan|inf) .*lower learning_rate"):
        model.fit(X, y * 1e6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "silu"])
def test_numpy_forward_pass_equals_torch_within_float32_rounding(
    iris: tuple[np.ndarray, np.ndarray], activation: str
) -> None:
    """``predict_proba`` is float64 numpy of the float32 weights (BatchNorm folded); torch's
    own float32 evaluation differs by float32 rounding only: below 1e-6."""
    X, y = iris
    model = TorchMLPClassifier(**SMALL, activation=activation, random_state=0).fit(X, y)
    model._ensure_network()
    model.module_.eval()
    with torch.no_grad():
        logits = model.module_(torch.as_tensor(X, dtype=torch.float32)).double()
    expected = torch.softmax(logits, dim=1).numpy()
    assert np.abs(model.predict_proba(X) - expected).max() < 1e-6
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert (model.predict(X) == y).mean() > 0.8


def test_stored_with_skops_as_numpy_loaded_by_the_serving_allow_list(
    diabetes: tuple[np.ndarray, np.ndarray], fitted: TorchMLPRegressor
) -> None:
    X, y = diabetes
    pipeline = _pipeline_of(fitted)
    data = sio.dumps(pipeline)
    untrusted = set(sio.get_untrusted_types(data=data))
    assert "mlserve.training.torch_mlp.TorchMLPRegressor" in untrusted
    assert untrusted <= {"mlserve.training.torch_mlp.TorchMLPRegressor", "numpy.dtype"}
    loaded = load_pipeline(data)
    assert np.array_equal(loaded.predict(X), pipeline.predict(X))
    # partial_fit goes on from the stored optimiser state exactly as the in-memory model
    loaded.steps[-1][1].partial_fit(X[:100], y[:100])
    fitted_copy = load_pipeline(data).steps[-1][1]
    fitted_copy.partial_fit(X[:100], y[:100])
    assert np.array_equal(loaded.predict(X), fitted_copy.predict(X))
    assert not np.array_equal(loaded.predict(X), pipeline.predict(X))
    record = loaded.steps[-1][1].training_record()
    assert record["online_updates"] == 1 and record["curve"]["online"][-1] is True


def test_serving_loads_and_predicts_without_torch(
    diabetes: tuple[np.ndarray, np.ndarray], fitted: TorchMLPRegressor, tmp_path: Any
) -> None:
    """A serving process never imports torch: here it cannot (an import hook refuses it)."""
    X, _y = diabetes
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(sio.dumps(_pipeline_of(fitted)))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", fitted.predict(X))
    script = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is not for serving')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import numpy as np\n"
        "from mlserve.serving.loader import load_pipeline\n"
        f"pipeline = load_pipeline(open({str(artifact)!r}, 'rb').read())\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"assert np.array_equal(pipeline.predict(X), np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "assert 'torch' not in sys.modules\n"
        "print('served without torch')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "served without torch"


def test_partial_fit_from_scratch_and_with_classes(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = TorchMLPClassifier(**SMALL, random_state=0)
    model.partial_fit(X[:20], y[:20], classes=np.unique(y))  # first rows: setosa only
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert model.predict_proba(X).shape == (150, 3)
    with pytest.raises(ValueError, match="labels outside classes_"):
        model.partial_fit(X[:2], np.array(["rose", "setosa"]))


def test_fits_in_threads_of_one_process_run_one_at_a_time_and_stay_deterministic() -> None:
    """A worker runs jobs on threads; torch's thread count and RNG are per process, so
    two fits at once must not interleave (each would undo the other's settings)."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    alone = TorchMLPRegressor(max_epochs=3, random_state=1).fit(X, y).predict(X)
    inside: list[int] = []
    overlap: list[bool] = []
    original = tl.one_thread

    @contextmanager
    def watched() -> Iterator[int]:
        with original() as threads:
            overlap.append(bool(inside))
            inside.append(1)
            try:
                yield threads
            finally:
                inside.pop()

    results: list[np.ndarray] = []

    def fit() -> None:
        results.append(TorchMLPRegressor(max_epochs=3, random_state=1).fit(X, y).predict(X))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tl, "one_thread", watched)
        threads = [threading.Thread(target=fit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert overlap == [False, False]
    assert len(results) == 2 and all(np.array_equal(r, alone) for r in results)
