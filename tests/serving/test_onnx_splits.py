"""Tests of mlserve.serving.onnx_splits: preprocessing folded into tree splits, same routes.

Fitted trees (california): every folded split is checked at its boundary with ONNX
Runtime running the original preprocessing (the raw value ``x*`` passes the original
threshold, the next double up does not, NaN goes where the imputed statistic went),
and both graphs predict the same on held-out rows and on rows at the boundaries.
Hand-built stumps cover ``BRANCH_LT``, splits every value or no value passes, infinite
inputs, float32 overflow, and the patterns the rewrite must leave alone.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlserve.serving import onnx as compiled_onnx
from mlserve.serving import onnx_splits
from mlserve.serving.onnx import MISSING_TEXT, OnnxModel, feed_from_frame
from mlserve.serving.ort_options import session_options
from mlserve.serving.validation import InstanceValidator
from mlserve.training.fit import TrainResult
from mlserve.training.signature import model_frame
from tests.serving.conftest import CALIFORNIA_TARGET, PRICE_BAND, fit_california

LEQ, LT, GTE = 0, 1, 2
PREPROCESSING = {"IsNaN", "Where", "Sub", "Div", "Cast"}
# (algorithm, task, params)
TREES: list[tuple[str, str, dict[str, Any]]] = [
    ("gradient_boosting", "regression", {"max_iter": 30}),
    ("random_forest", "regression", {"n_estimators": 8}),
    ("random_forest", "classification", {"n_estimators": 8}),
]


@pytest.fixture(scope="module")
def california(california_frame: pd.DataFrame) -> pd.DataFrame:
    frame = california_frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    frame[PRICE_BAND] = np.where(frame[CALIFORNIA_TARGET] > 180_000, "high", "low")
    return frame


@pytest.fixture(scope="module", params=TREES, ids=lambda t: f"{t[0]}-{t[1]}")
def fitted(request: pytest.FixtureRequest, california: pd.DataFrame) -> tuple[TrainResult, str]:
    algorithm, task, params = request.param
    target = CALIFORNIA_TARGET if task == "regression" else PRICE_BAND
    return fit_california(california.iloc[:2_000], target, algorithm, task, **params), task


def _tree(model: onnx.ModelProto) -> dict[str, Any]:
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsemble"]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {
        "input": node.input[0],
        "feature": np.asarray(attrs["nodes_featureids"]),
        "split": numpy_helper.to_array(attrs["nodes_splits"]),
        "mode": numpy_helper.to_array(attrs["nodes_modes"]),
        "nan_true": np.asarray(attrs.get("nodes_missing_value_tracks_true", [])),
    }


def _upstream(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    ops = [n.op_type for n in model.graph.node]
    return list(model.graph.node)[: ops.index("TreeEnsemble") + 1]


def _tree_input(model: onnx.ModelProto, rows: pd.DataFrame, signature: Any) -> np.ndarray:
    """What the (unfused) graph's preprocessing gives its tree ensemble for ``rows``."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    name = _tree(model)["input"]
    probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, None))
    session = ort.InferenceSession(probe.SerializeToString(), session_options())
    return np.asarray(session.run([name], feed_from_frame(rows, signature))[0])


def test_folded_splits_route_every_boundary_as_before(
    fitted: tuple[TrainResult, str], california: pd.DataFrame
) -> None:
    result, task = fitted
    signature, proba = result.signature, task == "classification"
    fused = compiled_onnx._convert(result.pipeline, signature, proba)
    plain = compiled_onnx._convert(result.pipeline, signature, proba, fuse=False)
    upstream = _upstream(fused)  # the nodes up to the tree ensemble
    assert not {n.op_type for n in upstream} & PREPROCESSING
    assert len(upstream) <= 4 < len(_upstream(plain)) - 3
    columns = json.loads(next(p.value for p in fused.metadata_props if p.key == "mlserve.packed"))
    columns = columns["columns"]
    before, after = _tree(plain), _tree(fused)
    numeric = np.flatnonzero(after["feature"] < len(columns))
    assert len(numeric) > 50
    # One row per folded split and value: x*, the next double up, NaN.
    base = model_frame(california.iloc[2_000:3_000], signature)
    rng = np.random.default_rng(0)
    rows = base.iloc[rng.integers(0, len(base), 3 * len(numeric))].reset_index(drop=True)
    raw = after["split"][numeric]
    values = np.concatenate([raw, np.nextafter(raw, np.inf), np.full(len(raw), np.nan)])
    names = np.array(columns)[after["feature"][np.tile(numeric, 3)]]
    for name in columns:
        rows.loc[names == name, name] = values[names == name]
    seen = _tree_input(plain, rows, signature)
    n = len(numeric)
    at = seen[np.arange(3 * n), before["feature"][np.tile(numeric, 3)]]
    threshold = np.tile(before["split"][numeric], 3)
    assert set(np.unique(before["mode"][numeric])) == {LEQ}
    passed = at <= threshold
    assert passed[:n].all()  # x* passes the original threshold ...
    assert not passed[n : 2 * n][np.isfinite(raw)].any()  # ... the next double up does not
    np.testing.assert_array_equal(passed[2 * n :], after["nan_true"][numeric] == 1)
    # Both graphs predict the same on those rows and on held-out rows.
    for frame in (rows, base):
        feed = feed_from_frame(frame, signature)
        got = OnnxModel(fused.SerializeToString(), signature).run(feed)
        want = OnnxModel(plain.SerializeToString(), signature).run(feed)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_one_checked_row_feeds_the_packed_input_as_is(
    fitted: tuple[TrainResult, str], california: pd.DataFrame
) -> None:
    """The one-row check's numeric block is the packed graph's input, unchanged, and each
    row predicts as it does within the batch (nulls and text included)."""
    result, task = fitted
    signature = result.signature
    fused = compiled_onnx._convert(result.pipeline, signature, task == "classification")
    packed = json.loads(next(p.value for p in fused.metadata_props if p.key == "mlserve.packed"))
    model = OnnxModel(fused.SerializeToString(), signature)
    validator = InstanceValidator(signature, missing_text=MISSING_TEXT)
    features = [spec["name"] for spec in signature["inputs"]]
    frame = california.iloc[2_000:2_030][features].astype(object)
    rows = frame.where(frame.notna(), None).to_dict("records")
    nullable = [spec["name"] for spec in signature["inputs"] if spec["nullable"]]
    for index, name in enumerate(nullable):
        rows[index][name] = None
    want = model.run(validator.columns(rows, json_values=True))
    for index, row in enumerate(rows):
        columns = validator.columns([row], json_values=True)
        assert model.graph_feed(columns)[packed["input"]] is columns.numeric_row  # type: ignore[attr-defined]
        got = model.run(columns)
        np.testing.assert_array_equal(got[0], want[0][index : index + 1])
        if want[1] is not None:
            np.testing.assert_array_equal(got[1], want[1][index : index + 1])


def _stumps(
    preprocessing: list[onnx.NodeProto],
    splits: list[tuple[int, float, int]],
    initializers: dict[str, np.ndarray],
    tree_input: str = "t",
    extra: list[onnx.NodeProto] | None = None,
) -> onnx.ModelProto:
    """Packed input ``x`` (N, 2) -> ``preprocessing`` -> one stump per ``(feature, split,
    mode)``; output column j is 1.0 where stump j's test passes, else 0.0."""
    n = len(splits)
    tree = helper.make_node(
        "TreeEnsemble",
        [tree_input],
        ["y"],
        domain="ai.onnx.ml",
        n_targets=n,
        aggregate_function=1,
        post_transform=0,
        tree_roots=list(range(n)),
        nodes_featureids=[f for f, _, _ in splits],
        nodes_splits=numpy_helper.from_array(np.array([s for _, s, _ in splits])),
        nodes_modes=numpy_helper.from_array(np.array([m for _, _, m in splits], dtype=np.uint8)),
        nodes_truenodeids=[2 * j for j in range(n)],
        nodes_trueleafs=[1] * n,
        nodes_falsenodeids=[2 * j + 1 for j in range(n)],
        nodes_falseleafs=[1] * n,
        nodes_missing_value_tracks_true=[0] * n,
        leaf_targetids=[j for j in range(n) for _ in (0, 1)],
        leaf_weights=numpy_helper.from_array(np.tile([1.0, 0.0], n)),
    )
    graph = helper.make_graph(
        [*preprocessing, tree, *(extra or [])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, n])],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), session_options())
    return np.asarray(session.run(None, {"x": x})[0])


IMPUTE_SCALE_ROUND = [
    helper.make_node("IsNaN", ["x"], ["nan"]),
    helper.make_node("Where", ["nan", "stat", "x"], ["w"]),
    helper.make_node("Sub", ["w", "mean"], ["s"]),
    helper.make_node("Div", ["s", "scale"], ["d"]),
    helper.make_node("Cast", ["d"], ["f"], to=TensorProto.FLOAT),
    helper.make_node("Cast", ["f"], ["t"], to=TensorProto.DOUBLE),
]
CONSTANTS = {
    "stat": np.array([0.3, -7.0]),
    "mean": np.array([0.1, -3.3]),
    "scale": np.array([3.0, 1e-300]),  # the second overflows float32 for most values
}
SPLITS = [
    (0, 0.0, LEQ),
    (0, 0.0, LT),
    (0, 0.1 / 3, LEQ),
    (0, 1e30, LT),
    (0, np.inf, LEQ),  # every number passes
    (0, -np.inf, LT),  # no number passes
    (1, -np.inf, LEQ),  # only -inf (after the scaling: everything below about -3.3e-300)
    (1, 0.0, LEQ),
    (1, 2.5, LT),
    (1, np.inf, LT),
]


def test_stumps_fold_preprocessing_with_the_same_routes() -> None:
    plain = _stumps(IMPUTE_SCALE_ROUND, SPLITS, CONSTANTS)
    fused = _stumps(IMPUTE_SCALE_ROUND, SPLITS, CONSTANTS)
    assert onnx_splits.fold_into_splits(fused, "x", 2) == 6
    assert [n.op_type for n in fused.graph.node] == ["TreeEnsemble"]
    raw = _tree(fused)["split"]
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.normal(size=2_000) * 10.0 ** rng.integers(-320, 308, 2_000),
            raw,
            np.nextafter(raw, np.inf),
            np.nextafter(raw, -np.inf),
            [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324],
        ]
    )
    x = np.column_stack([values, rng.permutation(values)])
    np.testing.assert_array_equal(_run(fused, x), _run(plain, x))
    np.testing.assert_array_equal(_run(fused, x[:1]), _run(plain, x[:1]))


@pytest.mark.parametrize(
    ("case", "constants", "splits", "extra"),
    [
        ("a non-positive scale", {**CONSTANTS, "scale": np.array([3.0, -1.0])}, SPLITS, []),
        (
            "a scale that is not a constant per column",
            {**CONSTANTS, "scale": np.ones(3)},
            SPLITS,
            [],
        ),
        ("a split that is not <= or <", CONSTANTS, [(1, 0.0, GTE)], []),
        ("the scaled values read by another node", CONSTANTS, SPLITS, ["d"]),
        ("the tree input read by another node", CONSTANTS, SPLITS, ["t"]),
    ],
)
def test_fold_into_splits_declines(
    case: str,
    constants: dict[str, np.ndarray],
    splits: list[tuple[int, float, int]],
    extra: list[str],
) -> None:
    readers = [helper.make_node("Abs", [name], [f"abs_{name}"]) for name in extra]
    model = _stumps(IMPUTE_SCALE_ROUND, splits, constants, extra=readers)
    before = model.SerializeToString()
    assert onnx_splits.fold_into_splits(model, "x", 2) == 0, case
    assert model.SerializeToString() == before


@pytest.mark.parametrize(("table", "folds"), [([0.0, 1.0, 0.5], True), ([0.0, 1.0, 0.1], False)])
def test_rounding_goes_only_when_float32_holds_the_other_columns(
    table: list[float], folds: bool
) -> None:
    nodes = [
        helper.make_node("Gather", ["table", "code"], ["g"], axis=0),
        helper.make_node("Concat", ["x", "g"], ["c"], axis=1),
        helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["f"], ["t"], to=TensorProto.DOUBLE),
    ]
    model = _stumps(
        nodes,
        [(0, 1.5, LEQ), (2, 0.1, LEQ)],
        {"table": np.array(table).reshape(3, 1), "code": np.array([[2]], dtype=np.int64)},
    )
    assert onnx_splits.fold_into_splits(model, "x", 2) == (2 if folds else 0)
    assert [n.op_type for n in model.graph.node][:2] == ["Gather", "Concat"]


def test_largest_true_from_near_and_from_all_doubles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scaled, float32-rounded columns: the bisection from ``g⁻¹(t) ± 2⁻²⁰`` (most splits)
    and from every double (thresholds whose inverse overflows) both end at the last double
    that passes; the narrowed start changes the work, not the result."""
    rng = np.random.default_rng(3)
    mean, scale = np.array([5.0, -1e3, 0.0]), np.array([2.0, 1e-10, 1e30])
    chain = onnx_splits._Chain(steps=[("Sub", mean), ("Div", scale)], float32=True)
    feature = rng.integers(0, 3, 600)
    threshold = rng.normal(0, 3, 600)
    feature[:40], threshold[:40] = 2, 1e300 * rng.choice([-1.0, 1.0], 40)  # inverse: inf
    strict = rng.random(600) < 0.5
    starts: list[int] = []
    bisect = onnx_splits._bisect
    monkeypatch.setattr(
        onnx_splits,
        "_bisect",
        lambda p, rows, lo, hi: starts.append(len(rows)) or bisect(p, rows, lo, hi),
    )
    raw, never = onnx_splits._largest_true(chain, feature, threshold, strict)
    assert starts[0] > 500 and starts[1] >= 40  # the near start, then every double
    with np.errstate(all="ignore"):
        for x, expect in ((raw, True), (np.nextafter(raw, np.inf), False)):
            got = onnx_splits._test(chain.apply(x, feature), threshold, strict)
            finite = ~never & np.isfinite(raw)
            np.testing.assert_array_equal(got[finite], expect)
