"""Model files for the import tests: built here from small real data, never downloaded;
and the california fit of the compiler tests."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import skops.io as sio
from flask.testing import FlaskClient
from onnx import TensorProto, helper
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlserve.training.fit import TrainResult, train
from mlserve.training.spec import TrainSpec


def import_file(
    client: FlaskClient,
    name: str,
    data: bytes,
    filename: str = "model.onnx",
    metadata: dict[str, Any] | None = None,
    sample: Any = None,
) -> Any:
    """POST a model file to /api/v1/models/{name}/versions and return the response."""
    form: dict[str, Any] = {"file": (io.BytesIO(data), filename)}
    if metadata is not None:
        form["metadata"] = json.dumps(metadata)
    if sample is not None:
        form["sample"] = json.dumps(sample)
    return client.post(
        f"/api/v1/models/{name}/versions", data=form, content_type="multipart/form-data"
    )


def linear_graph(n_features: int = 3, n_outputs: int = 2, seed: int = 0) -> onnx.ModelProto:
    """A float32 ``y = x @ W + b`` graph with a dynamic batch axis (a tensor model)."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(n_features, n_outputs)).astype(np.float32)
    bias = rng.normal(size=n_outputs).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_outputs])],
        [
            onnx.numpy_helper.from_array(weight, "W"),
            onnx.numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="tests"
    )
    model.ir_version = 10
    return model


@pytest.fixture(scope="session")
def iris_data() -> tuple[pd.DataFrame, np.ndarray]:
    bunch = load_iris(as_frame=True)
    features = bunch.frame.drop(columns="target")
    features.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in features.columns]
    return features, bunch.target.to_numpy()


@pytest.fixture(scope="session")
def iris_logistic(iris_data: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    features, target = iris_data
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))]).fit(
        features, target
    )


@pytest.fixture(scope="session")
def wine_data() -> tuple[pd.DataFrame, np.ndarray]:
    bunch = load_wine(as_frame=True)
    features = bunch.frame.drop(columns="target")
    features.columns = [c.replace("/", "_") for c in features.columns]
    return features, bunch.target.to_numpy()


@pytest.fixture(scope="session")
def wine_pipeline(wine_data: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    """A ColumnTransformer pipeline (scaled chemistry, passthrough proline) on the wine data."""
    features, target = wine_data
    scaled = [c for c in features.columns if c != "proline"]
    columns = ColumnTransformer(
        [("scaled", StandardScaler(), scaled), ("kept", "passthrough", ["proline"])]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=5000))]).fit(
        features, target
    )


@pytest.fixture(scope="session")
def wine_skops(wine_pipeline: Pipeline) -> bytes:
    return sio.dumps(wine_pipeline)


CALIFORNIA_TARGET, PRICE_BAND = "median_house_value", "price_band"


def fit_california(
    frame: pd.DataFrame, target: str, algorithm: str, task: str, **params: Any
) -> TrainResult:
    """Train ``algorithm`` on ``frame`` (california, maybe with ``price_band``) for ``target``:
    every other column but the two targets, 10 % held out, no cross-validation, seed 0."""
    spec = TrainSpec(
        dataset_id="ds",
        target=target,
        algorithm=algorithm,
        model_name="m",
        task=task,
        params=params,
        features=[c for c in frame.columns if c not in (CALIFORNIA_TARGET, PRICE_BAND, target)],
        test_size=0.1,
        cv_folds=0,
        random_state=0,
    )
    return train(frame, spec, task)
