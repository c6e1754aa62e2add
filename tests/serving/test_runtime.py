"""Inference runtimes: scikit-learn and ONNX agree; calibration decides batching by timing."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.serving.onnx import MISSING_TEXT
from mlserve.serving.runtime import (
    OnnxRuntime,
    Outputs,
    SklearnRuntime,
    calibrate,
    sample_columns,
)
from mlserve.serving.validation import Columns, InstanceValidator
from mlserve.training.signature import model_frame
from tests.conftest import frame_csv, train, upload

SIGNATURE = {
    "inputs": [
        {"name": "x", "type": "number", "nullable": False},
        {"name": "flag", "type": "boolean", "nullable": True},
        {"name": "colour", "type": "string", "nullable": True},
    ],
    "output": {"name": "y", "type": "number"},
}


def _frame() -> pd.DataFrame:
    raw = pd.DataFrame(
        {"x": [1.0, 2.5, -3.0], "flag": [True, None, False], "colour": ["red", None, "blue"]}
    )
    return model_frame(raw, SIGNATURE)


class FakeRuntime:
    """A runtime whose cost is ``fixed_ms`` per call plus ``per_row_ms`` per row."""

    name = "fake"

    def __init__(self, fixed_ms: float = 0.0, per_row_ms: float = 0.0) -> None:
        self.validator = InstanceValidator(SIGNATURE)
        self.fixed_ms = fixed_ms
        self.per_row_ms = per_row_ms
        self.sizes: list[int] = []

    def predict(self, columns: Columns) -> Outputs:
        n_rows = len(columns["x"])
        self.sizes.append(n_rows)
        time.sleep((self.fixed_ms + self.per_row_ms * n_rows) / 1000)
        return columns["x"] * 2, None


CALIBRATION_KEYS = {"enabled", "single_row_ms", "batched_row_ms", "batch_rows", "reason"}


def test_calibrate_enables_batching_for_a_fixed_cost_per_call() -> None:
    runtime = FakeRuntime(fixed_ms=3.0)
    report = calibrate(runtime, _frame(), batch_rows=32, min_single_row_ms=0.5, repeats=6)
    assert set(report) == CALIBRATION_KEYS
    assert report["enabled"] is True
    assert report["batch_rows"] == 32
    assert report["single_row_ms"] >= 3.0
    # A batch costs about what one row costs: a row in it ~1/32 of a single row.
    assert 3.0 / 32 <= report["batched_row_ms"] < report["single_row_ms"] / 2
    assert re.fullmatch(r"a row in a batch of 32 costs \d+% of one row", report["reason"])
    # One warm-up then `repeats` single rows; one warm-up then max(3, repeats // 3) batches.
    assert runtime.sizes == [1] * 7 + [32] * 4


def test_calibrate_keeps_batching_off_for_a_cost_per_row() -> None:
    runtime = FakeRuntime(per_row_ms=1.0)
    report = calibrate(runtime, _frame(), batch_rows=16, min_single_row_ms=0.1, repeats=3)
    assert report["enabled"] is False
    assert report["reason"] == "a row in a batch costs more than half of a single row"
    assert report["single_row_ms"] >= 1.0 and report["batched_row_ms"] >= 1.0
    assert report["batch_rows"] == 16
    assert runtime.sizes == [1] * 4 + [16] * 4


def test_calibrate_keeps_batching_off_below_min_single_row_latency() -> None:
    runtime = FakeRuntime(fixed_ms=2.0)
    report = calibrate(runtime, _frame(), batch_rows=8, min_single_row_ms=1000.0, repeats=3)
    assert report["enabled"] is False
    single = report["single_row_ms"]
    assert single >= 2.0
    assert report["reason"] == f"one row takes {single:.3f} ms < 1000.0 ms"
    assert set(report) == CALIBRATION_KEYS


@pytest.mark.parametrize(
    ("n_rows", "expected_x"),
    [
        (1, [1.0]),
        (2, [1.0, 2.5]),
        (3, [1.0, 2.5, -3.0]),
        (7, [1.0, 2.5, -3.0, 1.0, 2.5, -3.0, 1.0]),
        (9, [1.0, 2.5, -3.0] * 3),
    ],
)
def test_sample_columns_repeats_a_short_frame(n_rows: int, expected_x: list[float]) -> None:
    runtime = FakeRuntime()
    columns = sample_columns(runtime, _frame(), n_rows)
    assert list(columns) == ["x", "flag", "colour"]
    assert columns["x"].tolist() == expected_x
    assert columns["x"].dtype == np.float64
    cycle = [1.0, math.nan, 0.0]
    flags = columns["flag"].tolist()
    for index, value in enumerate(flags):
        expected = cycle[index % 3]
        assert value == expected or (math.isnan(value) and math.isnan(expected))
    colours = columns["colour"].tolist()
    assert colours[::3] == ["red"] * len(colours[::3])
    assert colours[2::3] == ["blue"] * len(colours[2::3])
    assert all(isinstance(v, float) and math.isnan(v) for v in colours[1::3])


def test_sample_columns_uses_the_runtime_missing_text_marker() -> None:
    runtime = FakeRuntime()
    runtime.validator = InstanceValidator(SIGNATURE, missing_text=MISSING_TEXT)
    columns = sample_columns(runtime, _frame(), 4)
    assert columns["colour"].tolist() == ["red", MISSING_TEXT, "blue", "red"]


# --------------------------------------------------------------------------- real runtimes


def _runtimes(ctx: Context, name: str) -> tuple[SklearnRuntime, OnnxRuntime, Any]:
    row = registry.get_version(ctx, name, 1)
    assert row.runtime == "onnx", row.serving
    pipeline = load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))
    onnx = OnnxRuntime(ctx.store.get_bytes(row.onnx_artifact_key, row.onnx_sha256), row.signature)
    return SklearnRuntime(pipeline, row.signature), onnx, pipeline


def _instances(frame: pd.DataFrame, target: str = "target") -> list[dict[str, Any]]:
    records = frame.drop(columns=target).to_dict(orient="records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]


def _both(
    sklearn: SklearnRuntime, onnx: OnnxRuntime, instances: list[dict[str, Any]]
) -> tuple[Outputs, Outputs]:
    return (
        sklearn.predict(sklearn.validator.columns(instances)),
        onnx.predict(onnx.validator.columns(instances)),
    )


def test_runtimes_agree_on_regression(
    ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    sklearn, onnx, pipeline = _runtimes(ctx, "diabetes")
    assert (sklearn.name, onnx.name) == ("sklearn", "onnx")
    instances = _instances(diabetes_frame)
    (sk_pred, sk_proba), (ox_pred, ox_proba) = _both(sklearn, onnx, instances)
    assert sk_proba is None and ox_proba is None
    assert sk_pred.shape == ox_pred.shape == (len(diabetes_frame),)
    np.testing.assert_allclose(ox_pred, sk_pred, rtol=1e-9, atol=1e-9)
    signature = registry.get_version(ctx, "diabetes", 1).signature
    expected = pipeline.predict(model_frame(diabetes_frame, signature))
    np.testing.assert_allclose(sk_pred, expected, rtol=0, atol=0)
    # One row at a time (the validator's single-row path) gives the same numbers.
    for index in (0, 17, 441):
        one_sk, one_ox = _both(sklearn, onnx, [instances[index]])
        np.testing.assert_allclose(one_sk[0], sk_pred[index : index + 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(one_ox[0], sk_pred[index : index + 1], rtol=1e-9, atol=1e-9)


def test_runtimes_agree_on_classification(
    ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    sklearn, onnx, pipeline = _runtimes(ctx, "iris")
    (sk_pred, sk_proba), (ox_pred, ox_proba) = _both(sklearn, onnx, _instances(iris_frame))
    assert sk_proba is not None and ox_proba is not None
    assert sk_proba.shape == ox_proba.shape == (150, 3)
    assert ox_pred.tolist() == sk_pred.tolist()
    assert set(sk_pred.tolist()) == {"setosa", "versicolor", "virginica"}
    X = model_frame(iris_frame, registry.get_version(ctx, "iris", 1).signature)
    assert sk_pred.tolist() == pipeline.predict(X).tolist()
    np.testing.assert_allclose(ox_proba, sk_proba, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ox_proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_runtimes_agree_with_text_booleans_and_nulls(
    client: FlaskClient, ctx: Context, diabetes_frame: pd.DataFrame
) -> None:
    frame = diabetes_frame.head(200).copy()
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female").astype(object)
    frame.loc[frame.index % 7 == 0, "sex"] = None
    frame.loc[frame.index % 11 == 0, "bmi"] = np.nan
    frame["smoker"] = frame.index % 3 == 0
    dataset = upload(client, frame_csv(frame), "mixed.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="mixed", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    sklearn, onnx, _pipeline = _runtimes(ctx, "mixed")
    instances = _instances(frame)
    assert sum(r["sex"] is None for r in instances) == 29
    sk_columns = sklearn.validator.columns(instances)
    ox_columns = onnx.validator.columns(instances)
    # Each runtime gets missing text in its own spelling.
    assert sum(isinstance(v, float) and math.isnan(v) for v in sk_columns["sex"]) == 29
    assert sum(v == MISSING_TEXT for v in ox_columns["sex"]) == 29
    np.testing.assert_allclose(
        onnx.predict(ox_columns)[0], sklearn.predict(sk_columns)[0], rtol=1e-9, atol=1e-9
    )
