"""Compiled inference: a fitted pipeline as an ONNX graph, kept only if it predicts the same.

:func:`compile_pipeline` converts a fitted mlserve pipeline with skl2onnx (plus
mlserve's converters, :mod:`mlserve.serving.onnx_converters` and
:mod:`mlserve.serving.onnx_trees`), runs it with onnxruntime on held-out rows
and compares with the pipeline itself (see docs/serving.md). The graph
is kept (``report["runtime"] == "onnx"``) only when every prediction agrees
within :data:`TOLERANCE` and, for classifiers, every label agrees exactly and
every probability within :data:`TOLERANCE`. Otherwise the version is served by
scikit-learn and ``report["reason"]`` says why. Nothing here raises for a model
that cannot be converted.

:class:`OnnxModel` (:mod:`mlserve.serving.onnx_model`) runs a kept graph on a feed built
by :func:`feed_from_frame`.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import skl2onnx
from onnx import ModelProto, TensorProto
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlserve.serving import onnx_converters as conv
from mlserve.serving import onnx_encoders, onnx_fuse, onnx_linear, onnx_torch
from mlserve.serving import onnx_trees as trees
from mlserve.serving.onnx_model import (
    META_INPUTS,
    META_PACKED,
    META_PROBA,
    MISSING_TEXT,
    OnnxModel,
)
from mlserve.store.documents import CompileReport, Signature

__all__ = [
    "MISSING_TEXT",
    "OPSET",
    "TOLERANCE",
    "Compiled",
    "OnnxModel",
    "compile_pipeline",
    "feed_from_frame",
]

# Every value must satisfy |onnx - sklearn| <= atol + rtol * scale, scale being the largest
# |sklearn| value among the checked predictions (regression, target units) or probabilities
# (classification, so scale <= 1). Relative to the output's scale rather than to each value:
# a prediction near 0 that sums terms of 1e5 carries the rounding of those terms. A faithful
# float64 graph differs from scikit-learn only by the order of operations (about 1e-16 per
# operation; below 1e-12 of scale over the catalogue, see docs/serving.md), while any float32
# step (1.2e-7 per rounding) or a wrong constant goes beyond 1e-9: the check also proves the
# graph computes in double precision.
TOLERANCE: dict[str, float] = {"rtol": 1e-9, "atol": 1e-9}
# Asked of skl2onnx; a graph with trees imports ai.onnx.ml 5 (conv.finalize).
OPSET: dict[str, int] = {"": 21, "ai.onnx.ml": conv.DECLARED_ML_OPSET}
META_FOLDED = "mlserve.folded_scaling"  # the graph's linear weights absorbed a scaler
IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 13; onnx 1.23 writes 14 unless told
UNSEEN_TEXT = "\x01unseen"  # probe category no training set contains
_TREE_REGRESSORS = (DecisionTreeRegressor, RandomForestRegressor, ExtraTreesRegressor)
_TREE_CLASSIFIERS = (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier)
# Classifiers parsed without ZipMap by conv.parse_classifier (no zipmap option needed).
_OWN_CLASSIFIERS = (*_TREE_CLASSIFIERS, HistGradientBoostingClassifier)
# mlserve's converters (onnx_converters, onnx_trees), passed to each convert_sklearn call.
_CUSTOM: dict[str, dict[type, Any]] = {
    "custom_conversion_functions": {
        SimpleImputer: conv.convert_imputer,
        TransformedTargetRegressor: conv.convert_transformed_target,
        SVR: conv.convert_svr,
        CalibratedClassifierCV: conv.convert_calibrated,
        HistGradientBoostingRegressor: trees.convert_hist_regressor,
        HistGradientBoostingClassifier: trees.convert_hist_classifier,
        **dict.fromkeys(_TREE_REGRESSORS, trees.convert_forest_regressor),
        **dict.fromkeys(_TREE_CLASSIFIERS, trees.convert_forest_classifier),
        **onnx_torch.CONVERTERS,
        **onnx_encoders.CONVERTERS,
    },
    "custom_shape_calculators": {
        SimpleImputer: conv.shape_imputer,
        CalibratedClassifierCV: conv.shape_classifier,
        HistGradientBoostingClassifier: conv.shape_classifier,
        **dict.fromkeys(_TREE_CLASSIFIERS, conv.shape_classifier),
        **dict.fromkeys(
            (TransformedTargetRegressor, SVR, HistGradientBoostingRegressor, *_TREE_REGRESSORS),
            conv.shape_regressor,
        ),
        **onnx_torch.SHAPE_CALCULATORS,
        **onnx_encoders.SHAPE_CALCULATORS,
    },
    "custom_parsers": {
        TransformedTargetRegressor: conv.parse_transformed_target,
        **dict.fromkeys(_OWN_CLASSIFIERS, conv.parse_classifier),
    },
}
onnx_torch.register_classifier_options()


def feed_from_frame(frame: pd.DataFrame, signature: Signature) -> dict[str, np.ndarray]:
    """Arrays onnxruntime takes, one per feature.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_features)
        Feature columns as :func:`mlserve.training.signature.model_frame` casts them.
    signature : dict
        The model's signature; its ``inputs`` name the columns.

    Returns
    -------
    dict of str to ndarray
        Feature name -> array of shape (n_samples, 1): ``float64`` for numeric,
        integer and boolean features (NaN for missing), ``object`` holding
        ``str`` for text features, :data:`MISSING_TEXT` for missing (NaN or None).

    Raises
    ------
    KeyError
        If a signature feature is not a column of ``frame``.
    """
    numeric = [spec["name"] for spec in signature["inputs"] if spec["type"] != "string"]
    # All numeric columns in one conversion (one per column cost 40 us each), one
    # contiguous row of the transposed block per feature; the frame itself when it holds
    # just those columns in that order (selecting them copies it first: 0.35 ms for 64).
    same = frame.shape[1] == len(numeric) and frame.columns.tolist() == numeric
    block = (frame if same else frame[numeric]).to_numpy(dtype=np.float64, na_value=np.nan)
    block = block.T.copy()
    rows = dict(zip(numeric, block, strict=True))
    feed: dict[str, np.ndarray] = {}
    for spec in signature["inputs"]:
        name = spec["name"]
        if spec["type"] == "string":
            feed[name] = _text(frame[name]).reshape(-1, 1)
        else:
            feed[name] = rows[name].reshape(-1, 1)
    return feed


def _text(column: pd.Series) -> np.ndarray:
    """An object array of ``str``: each value as text, :data:`MISSING_TEXT` where missing."""
    values = column.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = MISSING_TEXT
    if pd.api.types.infer_dtype(values, skipna=False) != "string":  # a number among them
        values = np.array([str(v) for v in values], dtype=object)
    return values


@dataclass(frozen=True, kw_only=True)
class Compiled:
    """Result of :func:`compile_pipeline`.

    Attributes
    ----------
    onnx : bytes or None
        Serialized ``onnx.ModelProto``; ``None`` when scikit-learn serves the version.
    report : dict
        JSON-serializable: ``runtime`` ("onnx" or "sklearn"), ``reason`` (why not
        ONNX, else None), ``tolerance``, ``rows_checked``, ``max_abs_error`` and
        ``max_rel_error`` (largest ``|onnx - sklearn|`` over predictions, or
        probabilities for classifiers, and the same divided by ``output_scale``,
        the largest ``|sklearn|``; None when no comparison ran), ``label_mismatches``
        (classifiers), ``precision`` ("float64" or "float32": element type of the
        graph's real-valued output; None without a graph), ``opset`` (the graph's
        imports, else those asked of the converter), ``converter``, ``seconds``.
    model : OnnxModel or None
        The session the check ran on, when the graph is kept (reused to serve or
        time it instead of loading the graph a second time).
    """

    onnx: bytes | None
    report: CompileReport
    model: OnnxModel | None = field(default=None, repr=False, compare=False)


def compile_pipeline(pipeline: Pipeline, signature: Signature, check: pd.DataFrame) -> Compiled:
    """Convert ``pipeline`` to ONNX and keep the graph only if it predicts as the pipeline does.

    The comparison runs on ``check`` plus two probe rows (every feature missing;
    every text feature an unseen category, numbers 0), so the missing-value and
    unknown-category paths are always exercised.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted mlserve pipeline (``preprocess`` then ``estimator``).
    signature : dict
        Its signature; ``output.classes`` present means a classifier.
    check : DataFrame of shape (n_rows, n_features)
        Held-out rows with :func:`mlserve.training.signature.model_frame` dtypes; at least one.

    Returns
    -------
    Compiled
        ``onnx`` set and ``report["runtime"] == "onnx"`` when every prediction
        matched; else ``onnx`` is None and ``report["reason"]`` says why
        (converter error, onnxruntime error, no rows, mismatch with the maximum
        errors or the first differing label).

    Notes
    -----
    Errors of the conversion and of onnxruntime are reported, not raised;
    an exception from the scikit-learn pipeline itself on ``check`` propagates.
    A linear model's standardisation is folded into its weights
    (:mod:`mlserve.serving.onnx_linear`, ``report["folded_scaling"]``); when the
    folded graph fails the check, the unfolded one is compiled and checked instead.
    """
    started = time.perf_counter()
    compiled = _compile(pipeline, signature, check, fold_linear=True)
    if compiled.onnx is None and compiled.report.get("folded_scaling"):
        compiled = _compile(pipeline, signature, check, fold_linear=False)
    compiled.report["seconds"] = round(time.perf_counter() - started, 3)
    return compiled


def _compile(
    pipeline: Pipeline, signature: Signature, check: pd.DataFrame, *, fold_linear: bool
) -> Compiled:
    """:func:`compile_pipeline` with the linear fold on or off."""
    started = time.perf_counter()
    report: CompileReport = {
        "runtime": "sklearn",
        "reason": None,
        "tolerance": dict(TOLERANCE),
        "rows_checked": 0,
        "max_abs_error": None,
        "max_rel_error": None,
        "output_scale": None,
        "precision": None,
        "opset": dict(OPSET),
        "converter": f"skl2onnx {skl2onnx.__version__}",
        "seconds": 0.0,
        "folded_scaling": False,
    }
    classifier = "classes" in signature["output"]
    with_proba = classifier and hasattr(pipeline, "predict_proba")
    if classifier:
        report["label_mismatches"] = None

    def done(data: bytes | None, reason: str | None, model: OnnxModel | None = None) -> Compiled:
        report["reason"] = reason
        report["runtime"] = "onnx" if reason is None else "sklearn"
        report["seconds"] = round(time.perf_counter() - started, 3)
        if reason is not None:
            return Compiled(onnx=None, report=report)
        return Compiled(onnx=data, report=report, model=model)

    if len(check) == 0:
        return done(None, "no held-out rows to check the ONNX graph against")
    try:
        proto = _convert(pipeline, signature, with_proba, fold_linear=fold_linear)
        data = proto.SerializeToString()
    except Exception as exc:  # any converter failure means: serve with scikit-learn
        return done(None, f"conversion failed: {_describe(exc)}")
    report["folded_scaling"] = any(e.key == META_FOLDED for e in proto.metadata_props)
    report["opset"] = {entry.domain: entry.version for entry in proto.opset_import}
    real = proto.graph.output[-1].type.tensor_type.elem_type
    report["precision"] = {TensorProto.DOUBLE: "float64", TensorProto.FLOAT: "float32"}.get(real)
    frame = pd.concat([check[[s["name"] for s in signature["inputs"]]], _probes(signature)])
    try:
        model = OnnxModel(data, signature)
        predictions, proba = model.run(feed_from_frame(frame, signature))
    except Exception as exc:  # onnxruntime refuses the graph or fails running it
        return done(None, f"onnxruntime failed: {_describe(exc)}")
    report["rows_checked"] = len(frame)
    expected = pipeline.predict(frame)
    if classifier:
        wrong = np.flatnonzero(np.asarray(predictions != expected, dtype=bool))
        report["label_mismatches"] = len(wrong)
        if len(wrong):
            i = wrong[0]
            return done(
                None,
                f"class labels differ from scikit-learn on {len(wrong)} of {len(frame)} rows "
                f"(row {i}: onnx {predictions[i]!r}, scikit-learn {expected[i]!r})",
            )
        if not with_proba:
            return done(data, None, model)
        got, want = proba, pipeline.predict_proba(frame)
    else:
        got, want = predictions, expected
    return done(data, _compare(got, np.asarray(want, dtype=np.float64), report), model)


def _compare(got: np.ndarray | None, want: np.ndarray, report: CompileReport) -> str | None:
    """Record the largest error of ``got`` against ``want``; a reason if beyond tolerance.

    Passes when ``|got - want| <= atol + rtol * scale`` everywhere, ``scale`` the
    largest ``|want|`` (see :data:`TOLERANCE`); NaN must face NaN.
    """
    if got is None or got.shape != want.shape:
        shape = None if got is None else got.shape
        return f"ONNX output has shape {shape}, scikit-learn {want.shape}"
    diff = np.abs(got - want)
    diff[np.isnan(got) & np.isnan(want)] = 0.0
    diff[np.isnan(diff)] = np.inf  # NaN on one side only
    finite = np.abs(want[np.isfinite(want)])
    scale = float(finite.max(initial=0.0))
    worst = float(diff.max(initial=0.0))
    report["max_abs_error"] = worst
    report["max_rel_error"] = worst / scale if scale else worst
    report["output_scale"] = scale
    bound = TOLERANCE["atol"] + TOLERANCE["rtol"] * scale
    bad = diff > bound
    if not bad.any():
        return None
    rows = int(bad.reshape(len(bad), -1).any(axis=1).sum())
    what = "probabilities" if got.ndim == 2 else "predictions"
    return (
        f"{what} differ from scikit-learn by up to {worst:.3g} "
        f"(max_rel_error={report['max_rel_error']:.3g}) on {rows} of {len(got)} rows, "
        f"beyond atol + rtol * scale = {bound:.3g}"
    )


def _probes(signature: Signature) -> pd.DataFrame:
    """Two rows: every feature missing; every text feature unseen and every number 0."""
    return pd.DataFrame(
        {
            spec["name"]: pd.Series([np.nan, UNSEEN_TEXT], dtype=object)
            if spec["type"] == "string"
            else pd.Series([np.nan, 0.0], dtype=np.float64)
            for spec in signature["inputs"]
        }
    )


def _describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 300 else text[:297] + "..."


def _convert(
    pipeline: Pipeline,
    signature: Signature,
    with_proba: bool,
    *,
    fuse: bool = True,
    fold_linear: bool = False,
) -> ModelProto:
    """skl2onnx conversion, classifier without ZipMap, then the exact rewrites of onnx_fuse
    and, with ``fold_linear``, the standardisation folded into linear weights
    (:mod:`mlserve.serving.onnx_linear`; metadata ``mlserve.folded_scaling`` when it applied).

    The graph takes one input per text feature, (N, 1) or (N,) where only its column is
    read, and, when the rewrite applies, one (N, k) float64 input for the k numeric
    features (metadata ``mlserve.packed``: its name and the former per-feature inputs in
    column order).
    """
    initial_types = [
        (
            spec["name"],
            (StringTensorType if spec["type"] == "string" else DoubleTensorType)([None, 1]),
        )
        for spec in signature["inputs"]
    ]
    options: dict[int, dict[str, Any]] = {}
    estimator = pipeline.steps[-1][1]
    if "classes" in signature["output"] and type(estimator) not in _OWN_CLASSIFIERS:
        options[id(estimator)] = {"zipmap": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model: ModelProto = skl2onnx.convert_sklearn(
            pipeline,
            initial_types=initial_types,
            target_opset=OPSET,
            # None, not {}: skl2onnx walks every sub-estimator for option names when
            # options are given (0.1 s twice for a 100-tree forest, computing each tree's
            # feature_importances_ on the way)
            options=options or None,
            **_CUSTOM,
        )
    conv.finalize(model)
    model.ir_version = IR_VERSION
    names = [i.name for i in model.graph.input]
    metadata = {META_INPUTS: json.dumps(names), META_PROBA: "1" if with_proba else "0"}
    packed = onnx_fuse.fuse(model) if fuse else None
    if packed is not None:
        metadata[META_PACKED] = json.dumps({"input": packed[0], "columns": packed[1]})
    if fuse and fold_linear and onnx_linear.fold_standardization(model):
        metadata[META_FOLDED] = "1"
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model
