"""POST /api/v1/models/{name}/versions: ONNX and skops files registered, served, refused.

Every refused file is checked to leave no row and no file
(:func:`tests.api.test_api_datasets.stored_state`).
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import skops.io as sio
from flask.testing import FlaskClient
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from mlserve.context import Context
from tests.api.test_api_datasets import assert_error, stored_state
from tests.serving.conftest import import_file, linear_graph


def test_tensor_model_registers_with_its_tensor_signature(client: FlaskClient) -> None:
    data = linear_graph().SerializeToString()
    response = import_file(client, "linear", data, sample={"x": [[1.0, 2.0, 3.0]]})
    assert response.status_code == 201, response.get_json()
    version = response.get_json()
    assert version["source"] == "imported"
    assert version["task"] == "tensor"
    assert version["runtime"] == "onnx"
    info = version["imported"]
    assert info["format"] == "onnx"
    assert info["producer_name"] == "tests"
    assert info["opset"] == {"ai.onnx": 21}
    assert info["layout"] == "tensor"
    assert info["tensors"] == {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}],
    }
    assert version["artifact_size_bytes"] == len(data)
    refused = client.post("/api/v1/models/linear/predict", json={"instances": [{"x": 1}]})
    assert_error(refused, 422, "validation_error")
    assert "/v2/models/linear" in refused.get_json()["error"]["message"]


def test_matrix_model_with_feature_names_predicts_rows(client: FlaskClient) -> None:
    graph = linear_graph(n_features=3, n_outputs=1)
    metadata = {"task": "regression", "feature_names": ["a", "b", "c"], "output_name": "y"}
    response = import_file(client, "reg", graph.SerializeToString(), metadata=metadata)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["imported"]["layout"] == "matrix"
    rows = [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": -1.0, "b": 0.5, "c": 0.0}]
    got = client.post("/api/v1/models/reg/predict", json={"instances": rows}).get_json()
    weight = onnx.numpy_helper.to_array(graph.graph.initializer[0])
    bias = onnx.numpy_helper.to_array(graph.graph.initializer[1])
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(got["predictions"], (x @ weight + bias).ravel(), rtol=1e-6)
    assert got["prediction_id"]


def test_skl2onnx_per_column_classifier_equals_pipeline(
    client: FlaskClient, iris_logistic: Pipeline, iris_data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    features, _ = iris_data
    inputs = features.astype(np.float64)
    onx = to_onnx(
        iris_logistic,
        inputs.iloc[:1],
        options={"zipmap": False},
        target_opset={"": 21, "ai.onnx.ml": 3},
    )
    response = import_file(client, "iris", onx.SerializeToString())
    assert response.status_code == 201, response.get_json()
    version = response.get_json()
    assert version["imported"]["layout"] == "columns"
    assert version["imported"]["framework"] == "scikit-learn"
    assert version["signature"]["output"]["classes"] == [0, 1, 2]
    rows = features.iloc[::10].to_dict(orient="records")
    got = client.post("/api/v1/models/iris/predict", json={"instances": rows}).get_json()
    want = iris_logistic.predict(features.iloc[::10])
    assert got["predictions"] == want.tolist()
    np.testing.assert_allclose(
        got["probabilities"], iris_logistic.predict_proba(features.iloc[::10]), atol=1e-6
    )


def test_skops_pipeline_equals_pipeline_and_takes_aliases(
    client: FlaskClient,
    wine_skops: bytes,
    wine_pipeline: Pipeline,
    wine_data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    features, _ = wine_data
    rows = features.head(3).to_dict(orient="records")
    response = import_file(client, "wine", wine_skops, "wine.skops", sample=rows)
    assert response.status_code == 201, response.get_json()
    version = response.get_json()
    assert version["runtime"] == "sklearn"
    assert version["imported"]["layout"] == "pipeline"
    assert [t["name"] for t in version["imported"]["tensors"]["outputs"]] == [
        "predict",
        "predict_proba",
    ]
    moved = client.put("/api/v1/models/wine/aliases/production", json={"version": 1})
    assert moved.status_code == 200
    got = client.post(
        "/api/v1/models/wine/predict?alias=production",
        json={"instances": features.to_dict(orient="records")},
    ).get_json()
    assert got["predictions"] == wine_pipeline.predict(features).tolist()
    np.testing.assert_allclose(
        got["probabilities"], wine_pipeline.predict_proba(features), rtol=0, atol=1e-9
    )


def test_import_needs_the_trainer_role(app: Any, wine_skops: bytes) -> None:
    from tests.conftest import keyed_client

    viewer = keyed_client(app, "viewer")
    response = import_file(viewer, "wine", wine_skops, "wine.skops")
    assert_error(response, 403, "forbidden")


class _Payload:
    """Unpickling this would run a shell command (it never is)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _external_data() -> bytes:
    model = linear_graph()
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../secret_key"
    return model.SerializeToString()


def _unknown_domain() -> bytes:
    model = linear_graph()
    model.graph.node[1].domain = "com.evil"
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    return model.SerializeToString()


def _declared_10_gb() -> bytes:
    model = linear_graph()
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[50_000, 50_000])
    model.graph.initializer[0].CopyFrom(huge)
    return model.SerializeToString()


def _skops_of(value: Any) -> bytes:
    return sio.dumps(value)


HOSTILE: list[tuple[str, Any, str, int, str]] = [
    ("pickle", lambda tmp: pickle.dumps(_Payload(tmp / "owned")), "model.onnx", 422, "ONNX"),
    ("external", lambda tmp: _external_data(), "model.onnx", 422, "external"),
    ("domain", lambda tmp: _unknown_domain(), "model.onnx", 422, "com.evil"),
    (
        "truncated",
        lambda tmp: linear_graph().SerializeToString()[:60],
        "model.onnx",
        422,
        "ONNX|checker",
    ),
    ("10gb", lambda tmp: _declared_10_gb(), "model.onnx", 413, "max_model_bytes"),
    ("eval", lambda tmp: _skops_of({"f": eval}), "model.skops", 422, "builtins.eval"),
    ("system", lambda tmp: _skops_of([os.system]), "model.skops", 422, "system"),
    ("empty-onnx", lambda tmp: b"", "model.onnx", 422, "empty"),
    ("empty-skops", lambda tmp: b"", "model.skops", 422, "empty"),
    ("joblib", lambda tmp: b"\x80\x04K\x01.", "model.joblib", 422, "refused"),
]


@pytest.mark.parametrize(
    ("case", "make", "filename", "status", "match"), HOSTILE, ids=[c[0] for c in HOSTILE]
)
def test_hostile_files_are_refused_and_leave_nothing(
    client: FlaskClient,
    ctx: Context,
    tmp_path: Path,
    case: str,
    make: Any,
    filename: str,
    status: int,
    match: str,
) -> None:
    before = stored_state(ctx)
    response = import_file(client, "hostile", make(tmp_path), filename)
    assert response.status_code == status, response.get_json()
    message = response.get_json()["error"]["message"]
    assert re.search(match, message), message
    assert stored_state(ctx) == before
    assert not (tmp_path / "owned").exists()


def test_refused_types_are_listed(client: FlaskClient) -> None:
    response = import_file(client, "hostile", _skops_of({"f": eval}), "m.skops")
    assert "builtins.eval" in response.get_json()["error"]["details"]["types"]


def test_file_over_max_model_bytes_is_413(settings: Any, tmp_path: Path, wine_skops: bytes) -> None:
    from mlserve import create_app
    from tests.conftest import keyed_client

    small = settings.model_copy(update={"max_model_bytes": 1000})
    application = create_app(small)
    response = import_file(keyed_client(application), "wine", wine_skops, "w.skops")
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("metadata", "sample", "match"),
    [
        ('{"task": "clustering"}', None, "metadata.task"),
        ("[1]", None, "JSON object"),
        ("{", None, "not valid JSON"),
        ('{"feature_names": ["a", "b"]}', None, "3 columns"),
        (None, '{"x": [["a", "b", "c"]]}', "sample input 'x'"),
    ],
)
def test_bad_metadata_and_sample_are_422(
    client: FlaskClient, ctx: Context, metadata: str | None, sample: str | None, match: str
) -> None:
    before = stored_state(ctx)
    data = linear_graph().SerializeToString()
    form: dict[str, Any] = {"file": (io.BytesIO(data), "m.onnx")}
    if metadata is not None:
        form["metadata"] = metadata
    if sample is not None:
        form["sample"] = sample
    response = client.post(
        "/api/v1/models/m/versions", data=form, content_type="multipart/form-data"
    )
    error = assert_error(response, 422, "validation_error")
    assert match in error["message"]
    assert stored_state(ctx) == before
