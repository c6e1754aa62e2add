"""Tests of mlserve.serving.onnx_fuse: the rewrites leave fewer inputs and nodes, same values.

The catalogue's defaults and a classifier are fitted on 2,000 california rows and
converted twice, with and without the rewrites; both graphs run on 3,000 other rows
(missing numbers, missing and unseen text included) and must agree bit for bit.
Hand-built graphs check that each rewrite declines what it must not touch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlserve.serving import onnx as compiled_onnx
from mlserve.serving import onnx_fold, onnx_fuse
from mlserve.serving.onnx import MISSING_TEXT, OnnxModel, feed_from_frame
from mlserve.training.fit import TrainResult
from mlserve.training.signature import model_frame
from tests.serving.conftest import PRICE_BAND, fit_california

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TARGET = "median_house_value"
# (algorithm, task, params, graph nodes at most after the rewrites)
CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("linear_regression", "regression", {}, 10),
    ("gradient_boosting", "regression", {}, 3),
    ("random_forest", "regression", {"n_estimators": 10}, 4),
    ("logistic_regression", "classification", {}, 17),
]


@pytest.fixture(scope="module")
def california(california_frame: pd.DataFrame) -> pd.DataFrame:
    """Shuffled rows, with ``price_band`` (a text class) and some missing and unseen text."""
    frame = california_frame.sample(frac=1.0, random_state=11).reset_index(drop=True)
    frame[PRICE_BAND] = np.where(frame[TARGET] > 180_000, "high", "low")
    frame.loc[frame.index[2_100:2_200], "ocean_proximity"] = None
    frame.loc[frame.index[2_200:2_300], "ocean_proximity"] = "ON THE MOON"
    return frame


@pytest.fixture(scope="module")
def fitted(california: pd.DataFrame) -> dict[str, TrainResult]:
    results = {}
    for algorithm, task, params, _ in CASES:
        target = TARGET if task == "regression" else PRICE_BAND
        results[algorithm] = fit_california(
            california.iloc[:2_000], target, algorithm, task, **params
        )
    return results


@pytest.mark.parametrize(("algorithm", "task", "params", "max_nodes"), CASES)
def test_rewrites_change_no_value(
    fitted: dict[str, TrainResult],
    california: pd.DataFrame,
    algorithm: str,
    task: str,
    params: dict[str, Any],
    max_nodes: int,
) -> None:
    result = fitted[algorithm]
    signature, proba = result.signature, task == "classification"
    fused = compiled_onnx._convert(result.pipeline, signature, proba)
    plain = compiled_onnx._convert(result.pipeline, signature, proba, fuse=False)
    rows = model_frame(california.iloc[2_000:5_000], signature)
    feed = feed_from_frame(rows, signature)
    assert (feed["ocean_proximity"] == MISSING_TEXT).sum() == 100
    assert rows["total_bedrooms"].isna().any()
    got = OnnxModel(fused.SerializeToString(), signature).run(feed)
    want = OnnxModel(plain.SerializeToString(), signature).run(feed)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit; NaN faces NaN
    # The rows as the service passes them (one 1-D column per feature) give the same.
    columns = {name: values.reshape(-1) for name, values in feed.items()}
    one_d = OnnxModel(fused.SerializeToString(), signature).run(columns)
    np.testing.assert_array_equal(one_d[0], want[0])
    assert [i.name for i in fused.graph.input] == ["merged_columns", "ocean_proximity"]
    assert len(plain.graph.input) == 9
    assert len(fused.graph.node) <= max_nodes < len(plain.graph.node)
    # The text is imputed inside its LabelEncoder, which reads the 1-D input itself.
    assert {n.op_type for n in fused.graph.node if "ocean_proximity" in n.input} == {"LabelEncoder"}
    if task == "regression":
        assert not {n.op_type for n in fused.graph.node} & {"Equal", "Identity", "Reshape"}


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[Any]]],
    outputs: list[str],
    initializers: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
        [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 3)]
    )


DOUBLE_IN = [("a", TensorProto.DOUBLE, [None, 1]), ("b", TensorProto.DOUBLE, [None, 1])]


def test_pack_numeric_inputs_packs_one_concat_of_every_number() -> None:
    model = _model(
        [
            helper.make_node("Concat", ["b", "a"], ["x"], axis=1),
            helper.make_node("Abs", ["x"], ["y"]),
        ],
        DOUBLE_IN,
        ["y"],
    )
    assert onnx_fuse.pack_numeric_inputs(model) == ("x", ["b", "a"])
    assert [i.name for i in model.graph.input] == ["x"]
    assert [n.op_type for n in model.graph.node] == ["Abs"]


@pytest.mark.parametrize(
    "nodes",
    [
        # an input read twice
        [
            helper.make_node("Concat", ["a", "b"], ["x"], axis=1),
            helper.make_node("Add", ["x", "a"], ["y"]),
        ],
        # not every number
        [
            helper.make_node("Concat", ["a", "a"], ["x"], axis=1),
            helper.make_node("Abs", ["x"], ["y"]),
        ],
        # rows, not columns
        [
            helper.make_node("Concat", ["a", "b"], ["x"], axis=0),
            helper.make_node("Abs", ["x"], ["y"]),
        ],
    ],
)
def test_pack_numeric_inputs_declines(nodes: list[onnx.NodeProto]) -> None:
    model = _model(nodes, DOUBLE_IN, ["y"])
    before = model.SerializeToString()
    assert onnx_fuse.pack_numeric_inputs(model) is None
    assert model.SerializeToString() == before


def _text_imputer(extra_reader: bool) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Equal", ["t", "marker"], ["eq"]),
        helper.make_node("Where", ["eq", "fill", "t"], ["w"]),
        helper.make_node("Gather", ["w", "col"], ["c"], axis=1),
        helper.make_node(
            "LabelEncoder",
            ["c"],
            ["code"],
            domain="ai.onnx.ml",
            keys_strings=["a", "b"],
            values_int64s=[0, 1],
            default_int64=2,
        ),
    ]
    outputs = ["code"]
    if extra_reader:
        nodes.append(helper.make_node("Identity", ["w"], ["raw"]))
        outputs.append("raw")
    return _model(
        nodes,
        [("t", TensorProto.STRING, [None, 1])],
        outputs,
        {
            "marker": np.array([MISSING_TEXT.encode()], dtype=object),
            "fill": np.array([[b"b"]], dtype=object),
            "col": np.array(0, dtype=np.int64),
        },
    )


def test_fold_text_imputer_maps_the_marker_to_the_statistic_code() -> None:
    model = _text_imputer(extra_reader=False)
    assert onnx_fuse.fold_text_imputer(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Gather", "LabelEncoder"]
    encoder = {a.name: a for a in model.graph.node[1].attribute}
    keys = [k.decode() for k in encoder["keys_strings"].strings]
    assert dict(zip(keys, encoder["values_int64s"].ints, strict=True)) == {
        "a": 0,
        "b": 1,
        MISSING_TEXT: 1,
    }
    assert model.graph.node[0].input[0] == "t"


def test_fold_text_imputer_declines_when_the_imputed_text_is_read_elsewhere() -> None:
    model = _text_imputer(extra_reader=True)
    assert onnx_fuse.fold_text_imputer(model) == 0
    assert [n.op_type for n in model.graph.node][:2] == ["Equal", "Where"]


def test_drop_identities_rewires_and_keeps_an_input_passed_to_an_output() -> None:
    model = _model(
        [
            helper.make_node("Identity", ["a"], ["a_out"]),
            helper.make_node("Abs", ["b"], ["m"]),
            helper.make_node("Concat", ["m"], ["one"], axis=1),
            helper.make_node("Reshape", ["one", "shape"], ["y"]),
        ],
        DOUBLE_IN,
        ["a_out", "y"],
        {"shape": np.array([-1, 1], dtype=np.int64)},
    )
    assert onnx_fold.drop_identities(model) == 2
    assert [(n.op_type, list(n.input), list(n.output)) for n in model.graph.node] == [
        ("Identity", ["a"], ["a_out"]),
        ("Abs", ["b"], ["y"]),
    ]


def _reshaped_to_1d() -> onnx.ModelProto:
    """An (N, 1) input reshaped to (N,): not a copy."""
    return _model(
        [helper.make_node("Reshape", ["a", "shape"], ["y"])],
        DOUBLE_IN[:1],
        ["y"],
        {"shape": np.array([-1], dtype=np.int64)},
    )


def test_drop_identities_infers_shapes_only_for_a_gather_or_reshape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def inferred(model: onnx.ModelProto) -> dict[str, list[int | None]]:
        calls.append(1)
        return {}

    monkeypatch.setattr(onnx_fold, "inferred_shapes", inferred)
    copies = _model(
        [helper.make_node("Abs", ["a"], ["m"]), helper.make_node("Identity", ["m"], ["y"])],
        DOUBLE_IN[:1],
        ["y"],
        {},
    )
    assert onnx_fold.drop_identities(copies) == 1
    assert calls == []  # a forest's graph is not serialized for nothing
    assert onnx_fold.drop_identities(_reshaped_to_1d()) == 0
    assert calls == [1]


def test_drop_identities_keeps_a_reshape_that_changes_the_shape() -> None:
    assert onnx_fold.drop_identities(_reshaped_to_1d()) == 0


def _gathered_tree(reader: str) -> onnx.ModelProto:
    tree = helper.make_node(
        "TreeEnsemble",
        ["g"],
        ["y"],
        domain="ai.onnx.ml",
        nodes_featureids=[0, 1],
        nodes_modes=numpy_helper.from_array(np.array([0, 0], dtype=np.uint8)),
    )
    nodes = [helper.make_node("Gather", ["x", "order"], ["g"], axis=1), tree]
    if reader:
        nodes.append(helper.make_node(reader, ["g"], ["z"]))
    return _model(
        nodes,
        [("x", TensorProto.DOUBLE, [None, 3])],
        ["y", "z"] if reader else ["y"],
        {"order": np.array([2, 0], dtype=np.int64)},
    )


def test_fold_column_gather_renumbers_the_tree_features() -> None:
    model = _gathered_tree(reader="")
    assert onnx_fold.fold_column_gather(model) == 1
    (tree,) = model.graph.node
    ids = next(a for a in tree.attribute if a.name == "nodes_featureids")
    assert list(ids.ints) == [2, 0]
    assert list(tree.input) == ["x"]


def test_fold_column_gather_declines_when_another_node_reads_the_columns() -> None:
    model = _gathered_tree(reader="Abs")
    assert onnx_fold.fold_column_gather(model) == 0
    assert model.graph.node[0].op_type == "Gather"


def _linear(k: int, m: int, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["y"])],
        [("x", TensorProto.DOUBLE, [None, k])],
        ["y"],
        {"w": rng.normal(size=(k, m)) * 1e3, "b": rng.normal(size=m) * 1e5},
    )
    model.ir_version = 10
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    from mlserve.serving.ort_options import session_options

    session = ort.InferenceSession(model.SerializeToString(), session_options())
    return np.asarray(session.run(None, feed)[0])


@pytest.mark.parametrize(("k", "m"), [(13, 1), (64, 3), (onnx_fold.GEMM_MAX_K, 1)])
def test_fuse_matmul_add_gives_the_same_sums(k: int, m: int) -> None:
    plain, fused = _linear(k, m), _linear(k, m)
    assert onnx_fold.fuse_matmul_add(fused) == 1
    assert [n.op_type for n in fused.graph.node] == ["Gemm"]
    x = np.random.default_rng(1).normal(size=(2_000, k)) * [10.0 ** (i % 7) for i in range(k)]
    np.testing.assert_array_equal(_run(fused, {"x": x}), _run(plain, {"x": x}))
    np.testing.assert_array_equal(_run(fused, {"x": x[:1]}), _run(plain, {"x": x[:1]}))


def test_fuse_matmul_add_declines_beyond_one_block() -> None:
    model = _linear(onnx_fold.GEMM_MAX_K + 1, 1)
    assert onnx_fold.fuse_matmul_add(model) == 0
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]


def _text_reader(second: str) -> onnx.ModelProto:
    nodes = [helper.make_node("Gather", ["t", "zero"], ["c"], axis=1)]
    outputs = ["c"] if not second else ["c", "d"]
    if second:
        nodes.append(helper.make_node(second, ["t"], ["d"]))
    nodes.append(helper.make_node("Identity", ["c"], ["e"]))
    return _model(
        nodes,
        [("t", TensorProto.STRING, [None, 1])],
        [*outputs[1:], "e"],
        {"zero": np.array(0, dtype=np.int64)},
    )


def test_flatten_text_inputs_reads_the_column_as_the_input() -> None:
    model = _text_reader(second="")
    assert onnx_fuse.flatten_text_inputs(model) == ["t"]
    assert [(n.op_type, list(n.input)) for n in model.graph.node] == [("Identity", ["t"])]
    assert len(model.graph.input[0].type.tensor_type.shape.dim) == 1


def test_flatten_text_inputs_declines_when_the_input_is_read_whole() -> None:
    model = _text_reader(second="Identity")
    assert onnx_fuse.flatten_text_inputs(model) == []
    assert len(model.graph.input[0].type.tensor_type.shape.dim) == 2
