"""Issue 16 acceptance over HTTP: ``torch_mlp`` trained as a job, served compiled.

80/20 split, ``random_state`` 0, default hyper-parameters (hidden layers (256, 128), ReLU,
BatchNorm, dropout 0.1, AdamW at 1e-3 with weight decay 1e-4, plateau schedule, batch
128, at most 200 epochs, early stopping after 20 epochs without a better loss on a 10 %
validation split), no cross-validation (``cv_folds`` 0: the acceptance is on the test
split, and CI fits california once per run here).

One app for the module (each dataset is fitted once); the SQLite pass only: nothing here
is about the database (the torch tests that are run on PostgreSQL too are
tests/jobs/test_torch_jobs.py and the online ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_breast_cancer, load_digits

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.serving.loader import load_pipeline
from mlserve.serving.onnx import TOLERANCE
from mlserve.settings import Settings
from mlserve.training.signature import model_frame
from tests.conftest import CALIFORNIA_TARGET, frame_csv, keyed_client, train, upload

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once(reason="framework-heavy: torch fits on three datasets"),
]
ROWS_PER_REQUEST = 5_000


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    settings = Settings(
        home=tmp_path_factory.mktemp("torch") / "home", jobs_immediate=True, log_level="WARNING"
    )
    app: Flask = create_app(settings)
    yield keyed_client(app)
    context_of(app).db.dispose()


def _train(client: FlaskClient, frame: pd.DataFrame, target: str, name: str) -> dict[str, Any]:
    dataset = upload(client, frame_csv(frame), f"{name}.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target=target,
        algorithm="torch_mlp",
        model_name=name,
        test_size=0.2,
        cv_folds=0,
        random_state=0,
    ).get_json()
    assert job["status"] == "succeeded", job
    version = client.get(f"/api/v1/models/{name}/versions/{job['model_version']}").get_json()
    return {"job": job, "version": version}


@pytest.fixture(scope="module")
def california(client: FlaskClient, california_frame: pd.DataFrame) -> dict[str, Any]:
    return _train(client, california_frame, CALIFORNIA_TARGET, "housing")


def _predict(client: FlaskClient, frame: pd.DataFrame, name: str) -> np.ndarray:
    features = frame.astype(object).where(frame.notna(), None)
    out: list[float] = []
    for start in range(0, len(frame), ROWS_PER_REQUEST):
        rows = features.iloc[start : start + ROWS_PER_REQUEST].to_dict(orient="records")
        response = client.post(f"/api/v1/models/{name}/predict", json={"instances": rows})
        assert response.status_code == 200, response.get_json()
        out.extend(response.get_json()["predictions"])
    return np.asarray(out, dtype=np.float64)


def test_california_test_rmse_is_below_55000_served_by_onnx(
    client: FlaskClient, california: dict[str, Any]
) -> None:
    version = california["version"]
    print(f"california torch_mlp test RMSE {version['metrics']['rmse']:.0f}")
    assert version["metrics"]["rmse"] < 55_000
    assert version["params"]["hidden_layer_sizes"] == [256, 128]
    assert (version["params"]["device"], version["params"]["random_state"]) == ("cpu", 0)
    assert version["runtime"] == "onnx", version["serving"]["compile"]["reason"]
    report = version["serving"]["compile"]
    assert (report["precision"], report["tolerance"]) == ("float64", TOLERANCE)
    assert report["rows_checked"] == 4_128 + 2
    training = client.get("/api/v1/models/housing/versions/1/evaluation").get_json()["training"]
    assert (training["device"], training["torch_version"]) == ("cpu", torch.__version__)
    assert (training["threads"], training["loss"], training["online_updates"]) == (1, "mse", 0)
    curve = training["curve"]
    assert curve["epoch"] == list(range(1, training["epochs"] + 1))
    assert training["epochs"] - training["best_epoch"] == 20  # patience
    best = curve["valid_loss"][training["best_epoch"] - 1]
    assert best == min(curve["valid_loss"]) and all(v > 0 for v in curve["train_loss"])


def test_compiled_predictions_equal_the_model_on_every_california_row(
    client: FlaskClient, california: dict[str, Any], california_frame: pd.DataFrame
) -> None:
    """ONNX Runtime (over HTTP) against the version's own pipeline (numpy float64, what
    scikit-learn serves) within mlserve's 1e-9 tolerance, and against the PyTorch network
    itself (float32) within 1e-5 of the scale: float32 rounding (measured about 2e-7)."""
    features = california_frame.drop(columns=[CALIFORNIA_TARGET])
    assert features["total_bedrooms"].isna().sum() == 207
    served = _predict(client, features, "housing")
    ctx = context_of(client.application)
    row = california["version"]
    data = ctx.store.get_bytes(f"models/{california['job']['id']}.skops", row["artifact_sha256"])
    pipeline = load_pipeline(data)
    X = model_frame(features, row["signature"])
    expected = pipeline.predict(X)
    scale = float(np.abs(expected).max())
    assert len(served) == 20_640
    assert np.abs(served - expected).max() <= TOLERANCE["atol"] + TOLERANCE["rtol"] * scale
    wrapper = pipeline.named_steps["estimator"]
    network = wrapper.regressor_
    network._ensure_network()
    network.module_.eval()
    with torch.no_grad():
        z = network.module_(torch.as_tensor(pipeline[:-1].transform(X), dtype=torch.float32))
    in_torch = wrapper.transformer_.inverse_transform(z.double().numpy()).ravel()
    assert np.abs(served - in_torch).max() <= 1e-5 * scale


def _classification(client: FlaskClient, frame: pd.DataFrame, name: str) -> dict[str, Any]:
    trained = _train(client, frame, "target", name)
    assert trained["version"]["task"] == "classification"
    assert trained["version"]["runtime"] == "onnx", trained["version"]["serving"]
    return trained["version"]


def test_breast_cancer_accuracy_and_same_seed_twice_same_metrics(client: FlaskClient) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    first = _classification(client, frame, "cancer")
    second = _classification(client, frame, "cancer")
    print(f"breast cancer torch_mlp accuracy {first['metrics']['accuracy']:.4f}")
    assert first["metrics"]["accuracy"] >= 0.96
    assert (first["version"], second["version"]) == (1, 2)
    assert first["metrics"] == second["metrics"]
    curves = [
        client.get(f"/api/v1/models/cancer/versions/{v}/evaluation").get_json()["training"]
        for v in (1, 2)
    ]
    assert curves[0] == curves[1]


def test_digits_as_a_64_column_table(client: FlaskClient) -> None:
    frame = load_digits(as_frame=True).frame
    assert frame.shape[1] == 65
    version = _classification(client, frame, "digits")
    print(f"digits torch_mlp accuracy {version['metrics']['accuracy']:.4f}")
    assert version["metrics"]["accuracy"] >= 0.96
    assert version["signature"]["output"]["classes"] == list(range(10))
