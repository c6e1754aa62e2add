"""Proof with real frameworks and a real V2 client: models trained here, registered with
``Client.register_model``, predicted through ``tritonclient.http`` against a live server.

Framework-heavy: SQLite pass only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from werkzeug.serving import make_server

from mlserve.client import Client

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] not installed")

pytestmark = pytest.mark.once("trains torch, LightGBM and scikit-learn models")


@pytest.fixture
def live(app: Flask) -> Iterator[dict[str, Any]]:
    """The app on a real socket: ``url``, ``key``, a ``client`` and a ``triton`` client."""
    from tests.conftest import keyed_client

    keyed_client(app)
    key = app.extensions["test_keys"]["admin"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"127.0.0.1:{server.server_port}"
    client = Client(f"http://{url}", api_key=key)
    triton = httpclient.InferenceServerClient(url=url)
    try:
        yield {"url": url, "key": key, "client": client, "triton": triton}
    finally:
        triton.close()
        client.close()
        server.shutdown()


def triton_infer(
    live: dict[str, Any], name: str, arrays: dict[str, np.ndarray], binary: bool
) -> Any:
    """Infer with tritonclient: numpy inputs as binary (its default) or JSON."""
    inputs = []
    for input_name, array in arrays.items():
        datatype = "BYTES" if array.dtype == object else httpclient.np_to_triton_dtype(array.dtype)
        tensor = httpclient.InferInput(input_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    headers = {"Authorization": f"Bearer {live['key']}"}
    return live["triton"].infer(name, inputs, headers=headers)


@pytest.fixture(scope="module")
def digits_cnn() -> tuple[Any, np.ndarray, float]:
    """A small CNN trained on scikit-learn's 8x8 digits; its test images and accuracy."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(15):
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xs[batch]), ys[batch])
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = float((net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    return net, x_test, accuracy


@pytest.mark.parametrize("rows", [1, 64])
def test_torch_cnn_over_tritonclient_binary_and_json(
    live: dict[str, Any], digits_cnn: tuple[Any, np.ndarray, float], rows: int
) -> None:
    torch = pytest.importorskip("torch")
    net, x_test, accuracy = digits_cnn
    assert accuracy >= 0.95
    version = live["client"].register_model("digits", net, sample_input=x_test[:2])
    assert version["imported"]["framework"] == "pytorch"
    assert version["imported"]["tensors"]["inputs"][0]["shape"] == [-1, 1, 8, 8]
    batch = np.ascontiguousarray(x_test[:rows])
    with torch.no_grad():
        want = net(torch.from_numpy(batch)).numpy()
    for binary in (True, False):
        result = triton_infer(live, "digits", {"input": batch}, binary)
        np.testing.assert_allclose(result.as_numpy("output"), want, rtol=0, atol=1e-5)
        assert len(result.get_response()["parameters"]["prediction_id"]) == 32


def test_wine_pipeline_by_skops_and_by_onnx(
    live: dict[str, Any], wine_pipeline: Pipeline, wine_data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    features, _ = wine_data
    client = live["client"]
    skops_version = client.register_model("wine", wine_pipeline, sample_input=features)
    onnx_version = client.register_model("wine", wine_pipeline, sample_input=features, onnx=True)
    assert (skops_version["runtime"], onnx_version["runtime"]) == ("sklearn", "onnx")
    arrays = {c: features[c].to_numpy(np.float64) for c in features.columns}
    labels, proba = wine_pipeline.predict(features), wine_pipeline.predict_proba(features)
    for version, atol in ((1, 1e-9), (2, 1e-9)):
        result = live["triton"].infer(
            "wine",
            [_input(c, a) for c, a in arrays.items()],
            model_version=str(version),
            headers={"Authorization": f"Bearer {live['key']}"},
        )
        assert result.as_numpy("predict").tolist() == labels.tolist()
        np.testing.assert_allclose(result.as_numpy("predict_proba"), proba, rtol=0, atol=atol)


def _input(name: str, array: np.ndarray) -> Any:
    tensor = httpclient.InferInput(name, list(array.shape), "FP64")
    tensor.set_data_from_numpy(array)
    return tensor


def test_lightgbm_through_onnxmltools(live: dict[str, Any]) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.astype(np.float32)
    features.columns = [c.replace(" ", "_") for c in features.columns]
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1, random_state=0)
    model.fit(features, bunch.target)
    version = live["client"].register_model("cancer_gbm", model, sample_input=features)
    assert version["imported"]["layout"] == "matrix"
    result = live["triton"].infer(
        "cancer_gbm",
        [_input(c, features[c].to_numpy(np.float64)) for c in features.columns],
        headers={"Authorization": f"Bearer {live['key']}"},
    )
    assert result.as_numpy("predict").tolist() == model.predict(features).tolist()
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), model.predict_proba(features), rtol=0, atol=1e-5
    )


def test_trained_california_version_over_tritonclient_equals_v1(
    live: dict[str, Any], app: Flask, california_frame: pd.DataFrame
) -> None:
    """A gradient_boosting version trained by mlserve (on 3,000 real rows, to keep the
    suite short) answers over V2 exactly as over /api/v1, text feature and NaNs included."""
    from tests.conftest import frame_csv, keyed_client, train, upload

    client = keyed_client(app)
    rows = california_frame.sample(3000, random_state=0)
    dataset = upload(client, frame_csv(rows), "california.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="median_house_value",
        algorithm="gradient_boosting",
        model_name="california",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job
    features = rows.drop(columns="median_house_value").head(50)
    v1 = live["client"].predict("california", json.loads(features.to_json(orient="records")))
    inputs = []
    for column in features.columns:
        values = features[column].to_numpy()
        if values.dtype == object:
            array = values.astype(object)
            tensor = httpclient.InferInput(column, [len(array)], "BYTES")
        else:
            array = values.astype(np.float64)
            tensor = httpclient.InferInput(column, [len(array)], "FP64")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    result = live["triton"].infer(
        "california", inputs, headers={"Authorization": f"Bearer {live['key']}"}
    )
    np.testing.assert_allclose(result.as_numpy("predict"), v1["predictions"], rtol=1e-12)


def test_keras_breast_cancer_over_v2_and_v1(live: dict[str, Any]) -> None:
    """Keras 3 on its torch backend (torch is already installed; see docs/import.md)."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras is loaded with another backend than torch")
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    bunch = load_breast_cancer(as_frame=True)
    names = [c.replace(" ", "_") for c in bunch.data.columns]
    x = StandardScaler().fit_transform(bunch.data).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, bunch.target.to_numpy(), epochs=5, batch_size=64, verbose=0)
    want = model.predict(x, verbose=0)[:, 0]
    metadata = {"task": "classification", "feature_names": names, "classes": [0, 1]}
    live["client"].register_model("cancer_keras", model, sample_input=x[:2], metadata=metadata)
    frame = pd.DataFrame(x.astype(np.float64), columns=names)
    v1 = live["client"].predict("cancer_keras", frame.to_dict("records"))
    np.testing.assert_allclose(np.asarray(v1["probabilities"])[:, 1], want, rtol=0, atol=1e-5)
    result = live["triton"].infer(
        "cancer_keras",
        [_input(c, frame[c].to_numpy()) for c in names],
        headers={"Authorization": f"Bearer {live['key']}"},
    )
    np.testing.assert_allclose(result.as_numpy("predict_proba")[:, 1], want, rtol=0, atol=1e-5)
