"""Tests of mlserve.serving.onnx: every catalogue algorithm compiled and checked on real data.

Each algorithm is trained by :func:`mlserve.training.fit.train` on a seeded 2,000-row
sample of california_housing (regression on ``median_house_value``; classification
on ``price_band``, the value in four string bands, with the numeric features and
the text ``ocean_proximity``), compiled with 1,000 other rows as the check, then
compared with scikit-learn on all 20,640 rows, the 207 with a missing
``total_bedrooms`` included. Binary integer labels are covered on breast_cancer.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import skl2onnx
from onnx import numpy_helper
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from mlserve.serving import onnx as compiled_onnx
from mlserve.serving.onnx import (
    MISSING_TEXT,
    TOLERANCE,
    OnnxModel,
    compile_pipeline,
    feed_from_frame,
)
from mlserve.training.catalogue import CATALOGUE
from mlserve.training.fit import TrainResult
from mlserve.training.preprocessing import build_preprocessor
from mlserve.training.signature import infer_signature, model_frame, output_signature
from tests.serving.conftest import fit_california

# Lasso/ElasticNet defaults do not converge on targets in dollars; that is the catalogue's
# behaviour, not this module's.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TARGET = "median_house_value"
BAND = "price_band"
N_TRAIN, N_CHECK = 2_000, 1_000
# Runtime each catalogue entry must compile to: a change to "sklearn" is a regression.
EXPECTED_RUNTIME: dict[tuple[str, str], str] = {key: "onnx" for key in CATALOGUE}
TREES = {"decision_tree", "random_forest", "extra_trees", "gradient_boosting"}


def _band(values: pd.Series) -> pd.Series:
    bins = [-np.inf, 120_000, 180_000, 260_000, np.inf]
    return pd.cut(values, bins, labels=["low", "mid", "high", "top"]).astype(object)


@pytest.fixture(scope="module")
def california(california_frame: pd.DataFrame) -> pd.DataFrame:
    """california_housing plus ``price_band``; rows shuffled once with a fixed seed."""
    frame = california_frame.copy()
    frame[BAND] = _band(frame[TARGET])
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


def _assert_matches(result: TrainResult, model: OnnxModel, frame: pd.DataFrame) -> None:
    """OnnxModel on ``frame`` equals the pipeline: labels exactly, numbers within TOLERANCE."""
    X = model_frame(frame, result.signature)
    predictions, proba = model.run(feed_from_frame(X, result.signature))
    expected = result.pipeline.predict(X)
    if result.task == "regression":
        assert proba is None
        assert predictions.dtype == np.float64 and predictions.shape == (len(frame),)
        got, want = predictions, expected
    else:
        text = expected.dtype.kind in "OU"  # MLPClassifier gives <U labels, the others object
        assert predictions.dtype == (np.dtype(object) if text else expected.dtype)
        np.testing.assert_array_equal(predictions, expected)
        if not hasattr(result.pipeline, "predict_proba"):  # hinge and perceptron: labels only
            assert proba is None
            return
        got, want = proba, result.pipeline.predict_proba(X)
        assert got is not None and got.shape == (len(frame), len(model.classes or []))
    scale = float(np.max(np.abs(want)))
    bound = TOLERANCE["atol"] + TOLERANCE["rtol"] * scale
    assert float(np.max(np.abs(got - want))) <= bound


def _compile(result: TrainResult, check: pd.DataFrame) -> compiled_onnx.Compiled:
    compiled = compile_pipeline(
        result.pipeline, result.signature, model_frame(check, result.signature)
    )
    json.dumps(compiled.report)  # JSON-serializable
    return compiled


def test_expected_runtime_table_covers_the_catalogue() -> None:
    assert set(EXPECTED_RUNTIME) == set(CATALOGUE)
    assert len([k for k in CATALOGUE if k[0] == "regression"]) == 14
    assert len([k for k in CATALOGUE if k[0] == "classification"]) == 13


@pytest.mark.parametrize(("task", "algorithm"), sorted(CATALOGUE))
def test_catalogue_compiles_and_matches_sklearn_on_every_california_row(
    california: pd.DataFrame, task: str, algorithm: str
) -> None:
    target = TARGET if task == "regression" else BAND
    result = fit_california(california.iloc[:N_TRAIN], target, algorithm, task)
    compiled = _compile(result, california.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    report = compiled.report

    assert report["runtime"] == EXPECTED_RUNTIME[(task, algorithm)], report["reason"]
    assert report["reason"] is None and compiled.onnx is not None
    assert report["precision"] == "float64"
    assert report["rows_checked"] == N_CHECK + 2  # + the two probe rows
    assert report["converter"] == f"skl2onnx {skl2onnx.__version__}"
    assert report["tolerance"] == TOLERANCE
    # 3: the text encoders' LabelEncoder (ai.onnx.ml 2, imported at 3); 5: TreeEnsemble.
    expected_ml = 5 if algorithm in TREES else 3
    assert report["opset"]["ai.onnx.ml"] == expected_ml
    if task == "classification":
        assert report["label_mismatches"] == 0
    onnx.checker.check_model(onnx.load_from_string(compiled.onnx), full_check=True)
    model = OnnxModel(compiled.onnx, result.signature)
    assert model.classes == result.signature["output"].get("classes")
    assert california["total_bedrooms"].isna().sum() == 207
    _assert_matches(result, model, california)


@pytest.fixture(scope="module")
def breast_cancer() -> pd.DataFrame:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.mark.parametrize("algorithm", sorted(n for t, n in CATALOGUE if t == "classification"))
def test_binary_integer_labels_match_sklearn(breast_cancer: pd.DataFrame, algorithm: str) -> None:
    result = fit_california(breast_cancer.iloc[:400], "target", algorithm, "classification")
    assert result.signature["output"]["classes"] == [0, 1]
    compiled = _compile(result, breast_cancer.iloc[400:])
    assert compiled.report["runtime"] == "onnx", compiled.report["reason"]
    assert compiled.onnx is not None
    _assert_matches(result, OnnxModel(compiled.onnx, result.signature), breast_cancer)


@pytest.mark.parametrize(
    ("task", "algorithm"),
    [
        ("classification", "logistic_regression"),
        ("classification", "random_forest"),
        ("classification", "svc"),
        ("regression", "gradient_boosting"),
        ("regression", "mlp"),
    ],
)
def test_missing_text_and_unseen_categories_match_sklearn(
    california: pd.DataFrame, task: str, algorithm: str
) -> None:
    target = TARGET if task == "regression" else BAND
    result = fit_california(california.iloc[:N_TRAIN], target, algorithm, task)
    compiled = _compile(result, california.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    assert compiled.onnx is not None, compiled.report["reason"]
    rows = california.iloc[:6].copy()
    rows["ocean_proximity"] = [np.nan, None, "ATLANTIS", "", "near bay", "NEAR BAY"]
    rows.loc[rows.index[:3], "total_bedrooms"] = np.nan
    rows.loc[rows.index[0], "median_income"] = np.nan
    feed = feed_from_frame(model_frame(rows, result.signature), result.signature)
    assert feed["ocean_proximity"][:2, 0].tolist() == [MISSING_TEXT, MISSING_TEXT]
    assert feed["ocean_proximity"].dtype == object and feed["ocean_proximity"].shape == (6, 1)
    assert feed["total_bedrooms"].dtype == np.float64 and np.isnan(feed["total_bedrooms"][0, 0])
    _assert_matches(result, OnnxModel(compiled.onnx, result.signature), rows)


def _ridge_pipeline(california: pd.DataFrame, estimator: Any) -> tuple[Pipeline, dict[str, Any]]:
    frame = california.iloc[:N_TRAIN]
    features = frame.drop(columns=[TARGET, BAND])
    y = frame[TARGET]
    signature = infer_signature(features, y, "regression", None)
    numeric = [s["name"] for s in signature["inputs"] if s["type"] != "string"]
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(numeric, ["ocean_proximity"])), ("estimator", estimator)]
    )
    pipeline.fit(model_frame(features, signature), y)
    signature["output"] = output_signature(y, "regression", None)
    return pipeline, signature


def _check_rows(california: pd.DataFrame, signature: dict[str, Any]) -> pd.DataFrame:
    return model_frame(california.iloc[N_TRAIN : N_TRAIN + N_CHECK], signature)


def test_converter_failure_serves_sklearn_with_reason(
    california: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, signature = _ridge_pipeline(california, Ridge())

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(skl2onnx, "convert_sklearn", boom)
    compiled = compile_pipeline(pipeline, signature, _check_rows(california, signature))
    assert compiled.onnx is None
    assert compiled.report["runtime"] == "sklearn"
    assert compiled.report["reason"] == "conversion failed: RuntimeError: boom"
    assert compiled.report["precision"] is None and compiled.report["max_abs_error"] is None


@pytest.mark.parametrize(
    ("estimator", "reason"),
    [
        (KernelRidge(), "KernelRidge"),
        (
            TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1),
            "target transformer FunctionTransformer is not supported",
        ),
    ],
    ids=["no-converter", "unsupported-target-transform"],
)
def test_unconvertible_estimator_serves_sklearn_with_reason(
    california: pd.DataFrame, estimator: Any, reason: str
) -> None:
    pipeline, signature = _ridge_pipeline(california, estimator)
    compiled = compile_pipeline(pipeline, signature, _check_rows(california, signature))
    assert compiled.onnx is None and compiled.report["runtime"] == "sklearn"
    assert compiled.report["reason"].startswith("conversion failed: ")
    assert reason in compiled.report["reason"]


def _corrupting(initializer: str, change: Any) -> Any:
    """A stand-in for ``_convert`` whose graph has ``initializer`` passed through ``change``."""
    convert = compiled_onnx._convert

    def corrupt(*args: Any, **kwargs: Any) -> onnx.ModelProto:
        # Unfolded: the linear fold (onnx_linear) renames the weights it rewrites.
        model = convert(*args, **{**kwargs, "fold_linear": False})
        found = next(i for i in model.graph.initializer if i.name == initializer)
        found.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(found)), found.name))
        return model

    return corrupt


def test_graph_off_by_float32_rounding_is_rejected_with_its_error(
    california: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, signature = _ridge_pipeline(california, Ridge())
    check = _check_rows(california, signature)
    assert compile_pipeline(pipeline, signature, check).report["runtime"] == "onnx"

    def nudge(coef: np.ndarray) -> np.ndarray:  # one coefficient off by float32 epsilon
        coef = coef.copy()
        coef[0] *= 1 + 1.2e-7
        return coef

    monkeypatch.setattr(compiled_onnx, "_convert", _corrupting("coef", nudge))
    report = compile_pipeline(pipeline, signature, check).report
    assert report["runtime"] == "sklearn"
    assert report["max_abs_error"] > TOLERANCE["atol"] + TOLERANCE["rtol"] * report["output_scale"]
    assert report["max_rel_error"] < 1e-6
    assert report["reason"].startswith("predictions differ from scikit-learn by up to ")
    assert f"{report['max_abs_error']:.3g}" in report["reason"]


def test_wrong_class_labels_are_rejected(
    california: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = fit_california(california.iloc[:N_TRAIN], BAND, "decision_tree", "classification")
    monkeypatch.setattr(compiled_onnx, "_convert", _corrupting("classes", lambda c: c[::-1]))
    compiled = _compile(result, california.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    assert compiled.onnx is None
    assert compiled.report["label_mismatches"] > 0
    assert compiled.report["reason"].startswith("class labels differ from scikit-learn on ")


def test_classifier_without_predict_proba_returns_labels_only(california: pd.DataFrame) -> None:
    result = fit_california(
        california.iloc[:N_TRAIN], BAND, "sgd_classifier", "classification", loss="hinge"
    )
    assert not hasattr(result.pipeline, "predict_proba")
    compiled = _compile(result, california.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    assert compiled.onnx is not None, compiled.report["reason"]
    model = OnnxModel(compiled.onnx, result.signature)
    X = model_frame(california, result.signature)
    labels, proba = model.run(feed_from_frame(X, result.signature))
    assert proba is None
    np.testing.assert_array_equal(labels, result.pipeline.predict(X))


@pytest.mark.parametrize(
    ("task", "algorithm", "params", "reason"),
    [
        # ONNX Runtime's extended optimizations would fold gamma into a float32 FusedMatMul alpha.
        ("classification", "svc", {"kernel": "poly"}, None),
        ("classification", "svc", {"kernel": "sigmoid"}, None),
        ("regression", "svr", {"kernel": "poly"}, None),
        ("regression", "gradient_boosting", {"loss": "poisson"}, None),
        ("regression", "decision_tree", {"min_samples_split": 5000}, None),  # one leaf
        ("classification", "mlp", {"activation": "tanh"}, None),
        # skl2onnx 1.20 bugs the check catches: KNN distance weights collapse to uniform
        # (TopK distances negated), SGD modified_huber labels from clipped probabilities.
        ("regression", "knn", {"weights": "distance"}, "predictions differ from scikit-learn"),
        ("classification", "sgd_classifier", {"loss": "modified_huber"}, "class labels differ"),
    ],
)
def test_non_default_hyper_parameters(
    california: pd.DataFrame, task: str, algorithm: str, params: dict[str, Any], reason: str | None
) -> None:
    target = TARGET if task == "regression" else BAND
    result = fit_california(california.iloc[:N_TRAIN], target, algorithm, task, **params)
    compiled = _compile(result, california.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    if reason is None:
        assert compiled.onnx is not None, compiled.report["reason"]
        _assert_matches(result, OnnxModel(compiled.onnx, result.signature), california)
    else:
        assert compiled.onnx is None and compiled.report["runtime"] == "sklearn"
        assert compiled.report["reason"].startswith(reason)


def test_no_check_rows_means_sklearn(california: pd.DataFrame) -> None:
    pipeline, signature = _ridge_pipeline(california, Ridge())
    compiled = compile_pipeline(pipeline, signature, _check_rows(california, signature).iloc[:0])
    assert compiled.onnx is None
    assert compiled.report["reason"] == "no held-out rows to check the ONNX graph against"


def test_odd_feature_names_are_mapped_to_graph_inputs(california: pd.DataFrame) -> None:
    renamed = california.rename(
        columns={"median_income": "median income (10k$)", "latitude": "label"}
    )
    result = fit_california(renamed.iloc[:N_TRAIN], BAND, "logistic_regression", "classification")
    compiled = _compile(result, renamed.iloc[N_TRAIN : N_TRAIN + N_CHECK])
    assert compiled.onnx is not None, compiled.report["reason"]
    graph_inputs = [i.name for i in onnx.load_from_string(compiled.onnx).graph.input]
    assert "median income (10k$)" not in graph_inputs  # skl2onnx sanitizes names
    _assert_matches(result, OnnxModel(compiled.onnx, result.signature), renamed.iloc[:500])


def test_feed_from_frame_gives_one_column_per_feature_with_missing_values_marked() -> None:
    signature: Any = {
        "inputs": [
            {"name": "city", "type": "string"},
            {"name": "rooms", "type": "integer"},
            {"name": "area", "type": "number"},
            {"name": "new", "type": "boolean"},
        ],
        "output": {},
    }
    frame = pd.DataFrame(
        {
            "city": pd.Series(["Oslo", None, np.nan, 7], dtype=object),
            "rooms": pd.Series([1, None, 3, 4], dtype="Int64"),
            "area": [10.5, np.nan, -1.0, 0.0],
            "new": pd.Series([True, False, None, True], dtype="boolean"),
        }
    )
    feed = feed_from_frame(frame, signature)
    assert list(feed) == ["city", "rooms", "area", "new"]
    assert feed["city"].dtype == object and feed["city"].shape == (4, 1)
    assert feed["city"].ravel().tolist() == ["Oslo", MISSING_TEXT, MISSING_TEXT, "7"]
    expected = {
        "rooms": [1.0, np.nan, 3.0, 4.0],
        "area": [10.5, np.nan, -1.0, 0.0],
        "new": [1.0, 0.0, np.nan, 1.0],
    }
    for name, values in expected.items():
        assert feed[name].dtype == np.float64 and feed[name].shape == (4, 1)
        assert feed[name].flags.c_contiguous
        np.testing.assert_array_equal(feed[name].ravel(), values)


@pytest.mark.parametrize(
    "columns",
    [["rooms", "area", "new"], ["area", "rooms", "new"], ["rooms", "area", "new", "other"]],
    ids=["the numeric features in order", "reordered", "an extra column"],
)
def test_feed_from_frame_is_the_same_whichever_columns_the_frame_holds(
    columns: list[str],
) -> None:
    """A frame of exactly the numeric features is converted whole, others are selected
    first: the same arrays either way."""
    signature: Any = {
        "inputs": [{"name": n, "type": "number"} for n in ["rooms", "area", "new"]],
        "output": {},
    }
    rng = np.random.default_rng(0)
    values = {n: rng.normal(size=50) for n in ["rooms", "area", "new", "other"]}
    values["area"][3] = np.nan
    feed = feed_from_frame(pd.DataFrame({n: values[n] for n in columns}), signature)
    assert list(feed) == ["rooms", "area", "new"]
    for name in feed:
        assert feed[name].shape == (50, 1) and feed[name].flags.c_contiguous
        np.testing.assert_array_equal(feed[name].ravel(), values[name])


_SMALL: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 5},
    "gradient_boosting": {"max_iter": 5},
    "logistic_regression": {},
}


@pytest.mark.parametrize(
    ("algorithm", "task", "options"),
    [
        ("random_forest", "classification", None),  # parsed without ZipMap, no options
        ("gradient_boosting", "classification", None),
        ("random_forest", "regression", None),
        ("logistic_regression", "classification", {"zipmap": False}),  # skl2onnx's parser
    ],
)
def test_options_reach_skl2onnx_only_where_its_parser_needs_them(
    california: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    algorithm: str,
    task: str,
    options: dict[str, bool] | None,
) -> None:
    """skl2onnx walks every sub-estimator for option names when given any (0.1 s twice
    for a 100-tree forest); the graph is the same either way: labels and probabilities,
    no ZipMap."""
    target = BAND if task == "classification" else TARGET
    result = fit_california(california.iloc[:500], target, algorithm, task, **_SMALL[algorithm])
    seen: list[Any] = []
    convert = skl2onnx.convert_sklearn

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["options"])
        return convert(*args, **kwargs)

    monkeypatch.setattr(skl2onnx, "convert_sklearn", spy)
    model = compiled_onnx._convert(result.pipeline, result.signature, task == "classification")
    estimator = result.pipeline.steps[-1][1]
    assert seen == [None if options is None else {id(estimator): options}]
    assert "ZipMap" not in {n.op_type for n in model.graph.node}
    expected = ["label", "probabilities"] if task == "classification" else ["variable"]
    assert [o.name for o in model.graph.output] == expected
    compiled = compile_pipeline(result.pipeline, result.signature, california.iloc[500:700])
    assert compiled.report["runtime"] == "onnx", compiled.report["reason"]
