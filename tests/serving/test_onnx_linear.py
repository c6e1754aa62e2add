"""Tests of mlserve.serving.onnx_linear: a scaler folded into linear weights.

Fitted california models are compiled with and without the fold: two nodes fewer, the
same predictions within far less than the compiler's tolerance, labels identical, on
3,000 other rows with missing numbers and text. Hand-built graphs check the arithmetic
of each weight layout and what the fold must decline; a folded graph that fails the
equality check makes the compiler keep the unfolded one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlserve.serving import onnx as compiled_onnx
from mlserve.serving import onnx_linear
from mlserve.serving.onnx import OnnxModel, compile_pipeline, feed_from_frame
from mlserve.serving.ort_options import session_options
from mlserve.training.fit import TrainResult
from mlserve.training.signature import model_frame
from tests.serving.conftest import PRICE_BAND, fit_california

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TARGET = "median_house_value"
# (algorithm, task): every linear entry the fold applies to, one per weight layout
CASES = [
    ("linear_regression", "regression"),  # Gemm
    ("ridge", "regression"),
    ("logistic_regression", "classification"),  # MatMul + Add of a (1, M) bias
]


@pytest.fixture(scope="module")
def california(california_frame: pd.DataFrame) -> pd.DataFrame:
    frame = california_frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    frame[PRICE_BAND] = np.where(frame[TARGET] > 180_000, "high", "low")
    frame.loc[frame.index[2_100:2_200], "ocean_proximity"] = None
    frame.loc[frame.index[2_300:2_400], "housing_median_age"] = np.nan
    return frame


@pytest.fixture(scope="module")
def fitted(california: pd.DataFrame) -> dict[str, TrainResult]:
    return {
        algorithm: fit_california(
            california.iloc[:2_000], TARGET if task == "regression" else PRICE_BAND, algorithm, task
        )
        for algorithm, task in CASES
    }


@pytest.mark.parametrize(("algorithm", "task"), CASES)
def test_fold_drops_the_scaler_and_keeps_the_predictions(
    fitted: dict[str, TrainResult], california: pd.DataFrame, algorithm: str, task: str
) -> None:
    result = fitted[algorithm]
    signature, proba = result.signature, task == "classification"
    plain = compiled_onnx._convert(result.pipeline, signature, proba)
    folded = compiled_onnx._convert(result.pipeline, signature, proba, fold_linear=True)
    ops = [n.op_type for n in folded.graph.node]
    before = [n.op_type for n in plain.graph.node]
    assert len(ops) == len(before) - 2
    for op in ("Sub", "Div"):
        assert ops.count(op) == before.count(op) - 1
    assert {e.key: e.value for e in folded.metadata_props}[compiled_onnx.META_FOLDED] == "1"
    rows = model_frame(california.iloc[2_000:5_000], signature)
    assert rows["housing_median_age"].isna().sum() == 100
    feed = feed_from_frame(rows, signature)
    got = OnnxModel(folded.SerializeToString(), signature).run(feed)
    want = OnnxModel(plain.SerializeToString(), signature).run(feed)
    if task == "classification":
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-12)
    else:
        scale = np.abs(want[0]).max()
        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12 * scale)
        assert not np.array_equal(got[0], want[0])  # the roundings did move: a real fold


@pytest.mark.parametrize(("algorithm", "task"), CASES)
def test_compile_keeps_the_folded_graph_and_says_so(
    fitted: dict[str, TrainResult], california: pd.DataFrame, algorithm: str, task: str
) -> None:
    result = fitted[algorithm]
    check = model_frame(california.iloc[2_000:3_000], result.signature)
    compiled = compile_pipeline(result.pipeline, result.signature, check)
    assert compiled.report["runtime"] == "onnx", compiled.report["reason"]
    assert compiled.report["folded_scaling"] is True
    assert compiled.report["max_rel_error"] is not None
    assert compiled.report["max_rel_error"] < 1e-12


def test_compile_falls_back_to_the_unfolded_graph_when_the_fold_fails_the_check(
    fitted: dict[str, TrainResult], california: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_linear.fold_standardization

    def off_by_a_millionth(model: onnx.ModelProto) -> int:
        folded = real(model)
        for tensor in model.graph.initializer:
            if tensor.name.endswith("_folded") and tensor.data_type == TensorProto.DOUBLE:
                values = numpy_helper.to_array(tensor) * (1 + 1e-6)
                tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
        return folded

    monkeypatch.setattr(onnx_linear, "fold_standardization", off_by_a_millionth)
    result = fitted["linear_regression"]
    check = model_frame(california.iloc[2_000:3_000], result.signature)
    compiled = compile_pipeline(result.pipeline, result.signature, check)
    assert compiled.report["runtime"] == "onnx", compiled.report["reason"]
    assert compiled.report["folded_scaling"] is False
    assert compiled.onnx is not None
    ops = [n.op_type for n in onnx.load_from_string(compiled.onnx).graph.node]
    assert "Sub" in ops and "Div" in ops


def _standardised_linear(
    k: int, m: int, *, op: str = "Gemm", trans_b: int = 0, alpha: float = 1.0, reader: str = ""
) -> onnx.ModelProto:
    """x (N, k) -> (x - mean) / scale -> Concat with c (N, 2) -> weights; scalar scale."""
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(k + 2, m)) * 1e3
    constants: dict[str, np.ndarray] = {
        "mean": rng.normal(size=k) * 100,
        "scale": np.array([2.5]),
        "w": weights.T.copy() if trans_b else weights,
        "b": rng.normal(size=(1, m)) * 1e4,
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["z"]),
        helper.make_node("Concat", ["z", "c"], ["a"], axis=1),
    ]
    if op == "Gemm":
        nodes.append(helper.make_node("Gemm", ["a", "w", "b"], ["y"], transB=trans_b, alpha=alpha))
    else:
        nodes += [
            helper.make_node("MatMul", ["a", "w"], ["p"]),
            helper.make_node("Add", ["p", "b"], ["y"]),
        ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)]
    if reader:
        nodes.append(helper.make_node(reader, ["z"], ["r"]))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.DOUBLE, None))
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, k]),
            helper.make_tensor_value_info("c", TensorProto.DOUBLE, [None, 2]),
        ],
        outputs,
        [numpy_helper.from_array(v, name) for name, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), session_options())
    return np.asarray(session.run(["y"], feed)[0])


@pytest.mark.parametrize(
    "layout",
    [{"op": "Gemm"}, {"op": "Gemm", "trans_b": 1}, {"op": "MatMul"}],
    ids=["gemm", "gemm-transposed", "matmul-add"],
)
def test_fold_computes_the_same_affine_map(layout: dict[str, Any]) -> None:
    plain, folded = _standardised_linear(5, 3, **layout), _standardised_linear(5, 3, **layout)
    assert onnx_linear.fold_standardization(folded) == 1
    assert folded.graph.node[0].op_type == "Concat"
    assert {t.name for t in folded.graph.initializer}.isdisjoint({"mean", "scale"})
    rng = np.random.default_rng(4)
    feed = {"x": rng.normal(size=(500, 5)) * 50, "c": rng.integers(0, 2, (500, 2)).astype(float)}
    want, got = _run(plain, feed), _run(folded, feed)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * np.abs(want).max())


@pytest.mark.parametrize(
    "changed",
    [{"alpha": 2.0}, {"reader": "Abs"}],
    ids=["gemm-alpha", "scaled-columns-read-elsewhere"],
)
def test_fold_declines(changed: dict[str, Any]) -> None:
    model = _standardised_linear(4, 1, **changed)
    before = model.SerializeToString()
    assert onnx_linear.fold_standardization(model) == 0
    assert model.SerializeToString() == before
