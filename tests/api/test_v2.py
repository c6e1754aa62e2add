"""The Open Inference Protocol (V2) REST routes: JSON tensors, binary tensors, errors."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import onnx
import orjson
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.store.orm import PredictionLog
from tests.conftest import frame_csv, keyed_client, train, upload
from tests.serving.conftest import import_file, linear_graph

HEADER = "Inference-Header-Content-Length"


def binary_body(document: dict[str, Any], arrays: list[np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """A binary-extension body: each array becomes the input of the same position."""
    for item, array in zip(document["inputs"], arrays, strict=True):
        item.setdefault("parameters", {})["binary_data_size"] = array.nbytes
    head = orjson.dumps(document)
    body = head + b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    return body, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def split_binary(response: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON part and each binary output's bytes of a binary-extension response."""
    body = response.get_data()
    length = int(response.headers[HEADER])
    document = orjson.loads(body[:length])
    rest, at, raw = body[length:], 0, {}
    for output in document["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw[output["name"]] = rest[at : at + size]
            at += size
    return document, raw


@pytest.fixture
def linear(client: FlaskClient) -> onnx.ModelProto:
    graph = linear_graph()
    assert import_file(client, "linear", graph.SerializeToString()).status_code == 201
    return graph


def expected(graph: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    weight, bias = (onnx.numpy_helper.to_array(t) for t in graph.graph.initializer)
    return x @ weight + bias


def test_server_routes_are_public(app: Flask) -> None:
    anonymous = app.test_client()
    assert anonymous.get("/v2/health/live").get_json() == {"live": True}
    assert anonymous.get("/v2/health/ready").get_json() == {"ready": True}
    meta = anonymous.get("/v2").get_json()
    assert meta["name"] == "mlserve" and "binary_tensor_data" in meta["extensions"]
    refused = anonymous.get("/v2/models/linear")
    assert refused.status_code == 401
    assert set(refused.get_json()) == {"error"} and isinstance(refused.get_json()["error"], str)


def test_tensor_model_metadata_and_ready(client: FlaskClient, linear: onnx.ModelProto) -> None:
    meta = client.get("/v2/models/linear").get_json()
    assert meta["name"] == "linear" and meta["versions"] == ["1"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.get("/v2/models/linear/versions/1").get_json()["inputs"] == meta["inputs"]
    assert client.get("/v2/models/linear/ready").get_json() == {"name": "linear", "ready": True}
    missing = client.get("/v2/models/linear/versions/7")
    assert missing.status_code == 404 and "error" in missing.get_json()


@pytest.mark.parametrize("rows", [1, 64])
def test_tensor_infer_json_and_binary_agree(
    client: FlaskClient, linear: onnx.ModelProto, rows: int
) -> None:
    x = np.random.default_rng(rows).normal(size=(rows, 3)).astype(np.float32)
    want = expected(linear, x)
    document = {
        "id": "req-1",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [rows, 3], "data": x.ravel().tolist()}
        ],
    }
    answer = client.post("/v2/models/linear/infer", json=document).get_json()
    assert answer["id"] == "req-1" and answer["model_version"] == "1"
    assert len(answer["parameters"]["prediction_id"]) == 32
    (output,) = answer["outputs"]
    assert output["shape"] == [rows, 2] and output["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(output["data"], (rows, 2)), want, rtol=1e-6)
    document = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 3]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
    }
    body, headers = binary_body(document, [x])
    response = client.post("/v2/models/linear/versions/1/infer", data=body, headers=headers)
    assert response.status_code == 200, response.get_data()
    _meta, raw = split_binary(response)
    got = np.frombuffer(raw["y"], dtype="<f4").reshape(rows, 2)
    np.testing.assert_allclose(got, want, rtol=1e-6)


BAD_INPUTS = [
    ({"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}, 422, "FP32"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}, 422, "shape"),
    ({"name": "z", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}, 422, "'z'"),
    ({"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2]}, 422, "2 values"),
    ({"name": "x", "datatype": "FP99", "shape": [1, 3], "data": [1, 2, 3]}, 422, "FP99"),
]


@pytest.mark.parametrize(("item", "status", "match"), BAD_INPUTS)
def test_bad_tensors_are_named_in_v2_errors(
    client: FlaskClient, linear: onnx.ModelProto, item: dict[str, Any], status: int, match: str
) -> None:
    response = client.post("/v2/models/linear/infer", json={"inputs": [item]})
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error"} and match in body["error"]


def test_binary_header_that_lies_is_400(client: FlaskClient, linear: onnx.ModelProto) -> None:
    x = np.ones((2, 3), dtype=np.float32)
    body, headers = binary_body(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3]}]}, [x]
    )
    for lie in (str(len(body) + 10), "-1", "abc"):
        response = client.post(
            "/v2/models/linear/infer", data=body, headers={**headers, HEADER: lie}
        )
        assert response.status_code == 400, lie
        assert isinstance(response.get_json()["error"], str)
    short = body[:-4]
    response = client.post("/v2/models/linear/infer", data=short, headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["outputs"][0].update(parameters="binary"), "'y'"),
        (lambda d: d["outputs"][0].update(parameters=[1]), "'y'"),
        (lambda d: d["inputs"][0].update(parameters="x"), "'x'"),
    ],
)
@pytest.mark.parametrize("route", ["/v2/models/linear/infer", "/v2/models/linear/versions/1/infer"])
def test_parameters_that_are_not_objects_are_4xx(
    client: FlaskClient, linear: onnx.ModelProto, change: Any, named: str, route: str
) -> None:
    """Found by schemathesis's coverage phase: a string as an output's parameters was a 500."""
    document = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}],
        "outputs": [{"name": "y"}],
    }
    change(document)
    response = client.post(route, json=document)
    assert response.status_code == 422, response.get_data()
    assert named in response.get_json()["error"] and "parameters" in response.get_json()["error"]


def test_unknown_output_is_422(client: FlaskClient, linear: onnx.ModelProto) -> None:
    document = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}],
        "outputs": [{"name": "nope"}],
    }
    response = client.post("/v2/models/linear/infer", json=document)
    assert response.status_code == 422 and "nope" in response.get_json()["error"]


def test_trained_version_over_v2_equals_v1(
    client: FlaskClient, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    features = diabetes_frame.drop(columns="target").head(5)
    v1 = client.post(
        "/api/v1/models/diabetes/predict", json={"instances": features.to_dict("records")}
    ).get_json()
    meta = client.get("/v2/models/diabetes").get_json()
    assert [t["name"] for t in meta["inputs"]] == list(features.columns)
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    document = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [5], "data": features[c].tolist()}
            for c in features.columns
        ]
    }
    answer = client.post("/v2/models/diabetes/infer", json=document).get_json()
    assert answer["outputs"][0]["data"] == pytest.approx(v1["predictions"], rel=1e-12)
    arrays = [features[c].to_numpy(np.float64) for c in features.columns]
    body, headers = binary_body(
        {
            "inputs": [{"name": c, "datatype": "FP64", "shape": [5]} for c in features.columns],
            "parameters": {"binary_data_output": True},
        },
        arrays,
    )
    _meta_out, raw = split_binary(
        client.post("/v2/models/diabetes/infer", data=body, headers=headers)
    )
    np.testing.assert_allclose(np.frombuffer(raw["predict"], "<f8"), v1["predictions"], rtol=1e-12)


def test_classifier_over_v2_gives_labels_and_probabilities(
    client: FlaskClient, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    features = iris_frame.drop(columns="target").iloc[::30]
    v1 = client.post(
        "/api/v1/models/iris/predict", json={"instances": features.to_dict("records")}
    ).get_json()
    document = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(features)], "data": features[c].tolist()}
            for c in features.columns
        ]
    }
    answer = client.post("/v2/models/iris/infer", json=document).get_json()
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict"]["datatype"] == "BYTES"
    assert outputs["predict"]["data"] == v1["predictions"]
    np.testing.assert_allclose(
        np.reshape(outputs["predict_proba"]["data"], outputs["predict_proba"]["shape"]),
        v1["probabilities"],
        rtol=1e-12,
    )
    missing = client.post("/v2/models/iris/infer", json={"inputs": document["inputs"][1:]})
    assert missing.status_code == 422 and features.columns[0] in missing.get_json()["error"]


def test_bytes_tensors_in_binary(client: FlaskClient, iris_model: dict[str, Any]) -> None:
    """A BYTES tensor where numbers are expected is refused naming the feature."""
    values = [b"1.0"]
    raw = b"".join(struct.pack("<I", len(v)) + v for v in values)
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "sepal length (cm)",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    response = client.post(
        "/v2/models/iris/infer",
        data=head + raw,
        headers={HEADER: str(len(head)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422


def test_infer_needs_the_predict_role(app: Flask, ctx: Context, linear: onnx.ModelProto) -> None:
    viewer = keyed_client(app, "viewer")
    document = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}
    assert viewer.post("/v2/models/linear/infer", json=document).status_code == 403
    predictor = keyed_client(app, "predictor")
    assert predictor.post("/v2/models/linear/infer", json=document).status_code == 200
    ctx.prediction_log.flush()


def test_metadata_datatypes_are_what_infer_accepts(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    """A client that builds its request from ``GET /v2/models/{name}`` (as tritonclient
    does) gets predictions for boolean, integer and text features too: booleans are BOOL
    and whole numbers INT64 (both were FP64, which the boolean check then refused)."""
    frame = diabetes_frame.head(60).copy()
    frame["smoker"] = frame.index % 3 == 0
    frame["visits"] = frame.index % 7
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    dataset = upload(client, frame_csv(frame), "mixed.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="mixed", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    meta = {t["name"]: t["datatype"] for t in client.get("/v2/models/mixed").get_json()["inputs"]}
    assert (meta["smoker"], meta["visits"], meta["sex"], meta["bmi"]) == (
        "BOOL",
        "INT64",
        "BYTES",
        "FP64",
    )
    rows = frame.drop(columns="target").head(4)
    arrays = []
    for name in meta:
        column = rows[name]
        if meta[name] == "BYTES":
            arrays.append(
                np.frombuffer(
                    b"".join(struct.pack("<I", len(v)) + v for v in column.str.encode("utf-8")),
                    dtype=np.uint8,
                )
            )
        else:
            arrays.append(
                column.to_numpy({"BOOL": np.bool_, "INT64": "<i8", "FP64": "<f8"}[meta[name]])
            )
    document = {"inputs": [{"name": n, "datatype": d, "shape": [4]} for n, d in meta.items()]}
    body, headers = binary_body(document, arrays)
    answer = client.post("/v2/models/mixed/infer", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data()
    v1 = client.post(
        "/api/v1/models/mixed/predict", json={"instances": rows.to_dict("records")}
    ).get_json()
    assert answer.get_json()["outputs"][0]["data"] == pytest.approx(v1["predictions"], rel=1e-12)


def test_tabular_binary_tensors_predict_as_json_lists(
    client: FlaskClient, ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    """Binary FP64 tensors are taken as arrays (mlserve.serving.tensor_columns): the same
    answer as the same values in JSON; a value the JSON path refuses is refused the same."""
    features = [f["name"] for f in iris_model["version"]["signature"]["inputs"]]
    arrays = [iris_frame[name].to_numpy(np.float64) for name in features]
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [len(a)]}
        for n, a in zip(features, arrays, strict=True)
    ]
    as_json = [{**item, "data": a.tolist()} for item, a in zip(inputs, arrays, strict=True)]
    expected = client.post("/v2/models/iris/infer", json={"inputs": as_json})
    assert expected.status_code == 200
    body, headers = binary_body({"inputs": [dict(i) for i in inputs]}, arrays)
    ctx.prediction_log.sample_rate = 1.0  # type: ignore[attr-defined]
    answer = client.post("/v2/models/iris/infer", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data()
    assert ctx.prediction_log.flush()
    logged_id = answer.get_json()["parameters"]["prediction_id"]
    with ctx.db.session() as session:
        logged = session.get(PredictionLog, logged_id)
        assert logged is not None and logged.n_rows == 150
        assert logged.features[features[0]] == arrays[0].tolist()  # JSON numbers
    got, want = answer.get_json()["outputs"], expected.get_json()["outputs"]
    assert got[0]["data"] == want[0]["data"]
    assert len(got[0]["data"]) == 150
    np.testing.assert_allclose(got[1]["data"], want[1]["data"], rtol=0, atol=0)
    arrays[0] = arrays[0].copy()
    arrays[0][3] = np.inf
    body, headers = binary_body({"inputs": [dict(i) for i in inputs]}, arrays)
    refused = client.post("/v2/models/iris/infer", data=body, headers=headers)
    assert refused.status_code == 422
    assert features[0] in refused.get_json()["error"]
    assert ctx.prediction_log.flush()
