"""Explanations of imported versions (ONNX and skops files) through their own runtime,
over the rows they were registered with (mlserve.serving.explain_imported)."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from flask.testing import FlaskClient
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from mlserve.serving.explain_imported import _encode
from tests.api.test_api_datasets import assert_error
from tests.serving.conftest import import_file, linear_graph


def _adds_up(body: dict) -> None:
    for row in body["explanations"]:
        total = row["base_value"] + sum(row["contributions"].values())
        assert total == pytest.approx(row["output"], abs=1e-6)


def test_linear_graph_contributions_are_weight_times_distance_to_the_background(
    client: FlaskClient,
) -> None:
    """For an additive model the sampling explainer is exact: w_j (x_j - mean of the
    background's x_j), the graph's own float32 weights."""
    graph = linear_graph(n_features=3, n_outputs=1, seed=3)
    metadata = {"task": "regression", "feature_names": ["a", "b", "c"], "output_name": "y"}
    rng = np.random.default_rng(0)
    sample = [dict(zip("abc", map(float, row), strict=True)) for row in rng.normal(size=(20, 3))]
    response = import_file(
        client, "reg", graph.SerializeToString(), metadata=metadata, sample=sample
    )
    assert response.status_code == 201, response.get_json()
    rows = [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": -1.0, "b": 0.5, "c": 0.0}]
    answer = client.post("/api/v1/models/reg/explain", json={"instances": rows})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["method"], body["output_space"], body["features"]) == (
        "permutation",
        "raw",
        ["a", "b", "c"],
    )
    _adds_up(body)
    weight = onnx.numpy_helper.to_array(graph.graph.initializer[0]).ravel().astype(np.float64)
    means = np.array([[r[k] for k in "abc"] for r in sample]).mean(axis=0)
    predicted = client.post("/api/v1/models/reg/predict", json={"instances": rows}).get_json()
    for row, explained, prediction in zip(
        rows, body["explanations"], predicted["predictions"], strict=True
    ):
        x = np.array([row[k] for k in "abc"])
        got = np.array([explained["contributions"][k] for k in "abc"])
        np.testing.assert_allclose(got, weight * (x - means), rtol=0, atol=1e-4)
        assert explained["prediction"] == pytest.approx(prediction, rel=1e-9)


def test_skops_classifier_explains_the_probability_of_its_predicted_class(
    client: FlaskClient, wine_skops: bytes, wine_data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    features, _ = wine_data
    sample = features.sample(30, random_state=0).to_dict(orient="records")
    assert import_file(client, "wine", wine_skops, "wine.skops", sample=sample).status_code == 201
    rows = features.iloc[[0, 70, 140]].to_dict(orient="records")
    body = client.post("/api/v1/models/wine/explain", json={"instances": rows}).get_json()
    assert (body["method"], body["output_space"]) == ("permutation", "probability")
    _adds_up(body)
    predicted = client.post("/api/v1/models/wine/predict", json={"instances": rows}).get_json()
    for i, explained in enumerate(body["explanations"]):
        assert explained["prediction"] == explained["class"] == predicted["predictions"][i]
        k = predicted["classes"].index(explained["class"])
        assert explained["output"] == pytest.approx(predicted["probabilities"][i][k], abs=1e-9)
    assert [e["class"] for e in body["explanations"]] == [0, 1, 2]


def test_onnx_per_column_classifier_is_explained(
    client: FlaskClient, iris_logistic: Pipeline, iris_data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    features, _ = iris_data
    onx = to_onnx(
        iris_logistic,
        features.astype(np.float64).iloc[:1],
        options={"zipmap": False},
        target_opset={"": 21, "ai.onnx.ml": 3},
    )
    sample = features.iloc[::5].to_dict(orient="records")
    assert import_file(client, "iris", onx.SerializeToString(), sample=sample).status_code == 201
    rows = features.iloc[[10, 60]].to_dict(orient="records")
    body = client.post("/api/v1/models/iris/explain", json={"instances": rows}).get_json()
    assert body["output_space"] == "probability"
    _adds_up(body)
    want = iris_logistic.predict_proba(features.iloc[[10, 60]])
    for i, explained in enumerate(body["explanations"]):
        assert explained["class"] == explained["prediction"] == int(np.argmax(want[i]))
        assert explained["output"] == pytest.approx(want[i].max(), abs=1e-6)


@pytest.mark.parametrize("case", ["tensor model", "no sample"])
def test_what_cannot_be_explained_is_422(client: FlaskClient, case: str) -> None:
    if case == "tensor model":
        import_file(client, "m", linear_graph().SerializeToString())
        body = {"inputs": {"x": [[1.0, 2.0, 3.0]]}}
        message = "takes tensors"
    else:
        metadata = {"task": "regression", "feature_names": ["a", "b", "c"], "output_name": "y"}
        import_file(client, "m", linear_graph(n_outputs=1).SerializeToString(), metadata=metadata)
        body = {"instances": [{"a": 1.0, "b": 2.0, "c": 3.0}]}
        message = "no background sample"
    details = assert_error(
        client.post("/api/v1/models/m/explain", json=body), 422, "validation_error"
    )
    assert message in details["message"] and details["field"] == "version"


def test_codes_give_back_the_values_of_every_type() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, np.nan, 1.5, -2.0, np.nan],
            "t": pd.Series(["a", None, "b", "a", None], dtype=object),
        }
    )
    codes, values = _encode(frame)
    assert codes[:, 0].tolist() == [0, 1, 0, 2, 1] and codes[:, 1].tolist() == [0, 1, 2, 0, 1]
    for j, name in enumerate(frame.columns):
        decoded = values[j][codes[:, j].astype(int)]
        assert decoded.dtype == frame[name].to_numpy().dtype
        back = pd.Series(decoded, dtype=decoded.dtype)
        pd.testing.assert_series_equal(back, frame[name], check_names=False)
