"""torch_mlp training jobs: progress per epoch, the server's device, a missing extra, and
a version whose ONNX check fails served by the numpy forward pass (small data)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from flask import Flask
from flask.testing import FlaskClient

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.jobs import service as jobs
from mlserve.serving import onnx_converters as conv
from mlserve.serving import onnx_torch
from mlserve.serving.loader import load_pipeline
from mlserve.settings import Settings
from mlserve.training import catalogue
from mlserve.training.signature import model_frame
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, train, upload

SMALL = {"hidden_layer_sizes": [16], "max_epochs": 12, "patience": 4}


def _torch_job(client: FlaskClient, frame: pd.DataFrame, **spec: Any) -> dict[str, Any]:
    dataset = upload(client, frame_csv(frame), "diabetes.csv").get_json()
    body = {"target": "target", "algorithm": "torch_mlp", "model_name": "net", "cv_folds": 0}
    job: dict[str, Any] = train(client, dataset["id"], **{**body, **spec}).get_json()
    return job


def test_the_job_reports_every_fit_epoch_by_epoch(
    client: FlaskClient, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[float, str]] = []
    record = jobs._progress
    monkeypatch.setattr(
        jobs,
        "_progress",
        lambda ctx, job_id, f, s: (seen.append((f, s)), record(ctx, job_id, f, s)),
    )
    job = _torch_job(client, diabetes_frame, cv_folds=2, params=SMALL)
    assert job["status"] == "succeeded", job
    stages = [stage for _fraction, stage in seen]
    assert "cross-validation 1/2, epoch 1/12" in stages
    assert "cross-validation 2/2, epoch 1/12" in stages
    assert "epoch 1/12" in stages
    fractions = [fraction for fraction, _stage in seen]
    assert fractions == sorted(fractions)
    final = [f for f, s in seen if s.startswith("epoch ")]
    assert all(0.7 < f <= 0.85 for f in final)
    folds = [f for f, s in seen if s.startswith("cross-validation 2/2, epoch")]
    assert all(0.4 < f <= 0.7 for f in folds)


@pytest.fixture
def device_app(request: pytest.FixtureRequest, settings: Settings) -> Any:
    app = create_app(settings.model_copy(update={"torch_device": request.param}))
    yield app
    context_of(app).db.dispose()


@pytest.mark.parametrize("device_app", ["auto"], indirect=True)
def test_the_servers_device_setting_is_used_and_recorded(
    device_app: Flask, diabetes_frame: pd.DataFrame
) -> None:
    client = keyed_client(device_app)
    job = _torch_job(client, diabetes_frame, params=SMALL)
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/net/versions/1").get_json()
    assert version["params"]["device"] == "auto"
    training = client.get("/api/v1/models/net/versions/1/evaluation").get_json()["training"]
    assert training["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("device_app", ["cuda"], indirect=True)
def test_cuda_asked_without_a_gpu_fails_the_job_readably(
    device_app: Flask, diabetes_frame: pd.DataFrame
) -> None:
    job = _torch_job(keyed_client(device_app), diabetes_frame, params=SMALL)
    assert job["status"] == "failed"
    assert job["error"] == "ValueError: device 'cuda' was asked but torch sees no CUDA device"


def test_without_torch_the_entries_are_unavailable_and_training_is_a_422(
    client: FlaskClient, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    available = catalogue.module_available
    monkeypatch.setattr(
        catalogue, "module_available", lambda name: name != "torch" and available(name)
    )
    listed = client.get("/api/v1/algorithms").get_json()["algorithms"]
    torch_entries = [a for a in listed if a["name"] == "torch_mlp"]
    assert [a["task"] for a in torch_entries] == ["classification", "regression"]
    for entry in torch_entries:
        assert (entry["available"], entry["install_hint"]) == (
            False,
            "pip install 'mlserve[torch]'",
        )
        assert entry["params"]  # still described, for the form
    assert all(
        a["available"] and a["install_hint"] is None for a in listed if a not in torch_entries
    )
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    response = train(
        client, dataset["id"], target="target", algorithm="torch_mlp", model_name="net"
    )
    details = assert_error(response, 422, "validation_error")
    assert details["field"] == "algorithm" and details["extra"] == "torch"
    assert details["install"] == "pip install 'mlserve[torch]'"
    assert "needs the optional extra 'torch'" in details["message"]
    assert client.get("/api/v1/training-jobs").get_json()["jobs"] == []  # no failed job either


def test_a_version_failing_its_onnx_check_is_served_by_the_numpy_forward_pass(
    client: FlaskClient, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    activation = onnx_torch._activation

    def float32(g: conv.Graph, z: str, name: str) -> str:  # a float32 step in the graph
        return g("Cast", activation(g, g("Cast", z, to=1), name), to=11)

    monkeypatch.setattr(onnx_torch, "_activation", float32)
    job = _torch_job(client, diabetes_frame, params=SMALL)
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/net/versions/1").get_json()
    assert version["runtime"] == "sklearn" and version["onnx_sha256"] is None
    reason = version["serving"]["compile"]["reason"]
    assert reason.startswith("predictions differ from scikit-learn by up to ")
    rows = diabetes_frame.drop(columns=["target"]).iloc[:50]
    served = client.post("/api/v1/models/net/predict", json={"instances": rows.to_dict("records")})
    assert served.status_code == 200, served.get_json()
    ctx = context_of(client.application)
    pipeline = load_pipeline(
        ctx.store.get_bytes(f"models/{job['id']}.skops", version["artifact_sha256"])
    )
    expected = pipeline.predict(model_frame(rows, version["signature"]))
    assert np.array_equal(np.asarray(served.get_json()["predictions"]), expected)
