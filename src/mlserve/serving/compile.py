"""What registration decides about serving a new version: runtime and batching.

Runs in the training job after the pipeline is fitted: the pipeline is compiled
to ONNX and checked on the held-out rows (:func:`mlserve.serving.onnx.compile_pipeline`),
then the runtime that will serve it is timed to decide on micro-batching
(:func:`mlserve.serving.runtime.calibrate`). Both reports are stored with the
version (``serving`` in its metadata).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlserve.serving.onnx import OnnxModel, compile_pipeline, feed_from_frame
from mlserve.serving.runtime import OnnxRuntime, Runtime, SklearnRuntime, calibrate
from mlserve.settings import Settings
from mlserve.store.documents import ServingReport, Signature

MAX_CHECK_ROWS = 20_000


@dataclass(frozen=True, kw_only=True)
class ServingPlan:
    """How a version will be served.

    Attributes
    ----------
    onnx : bytes or None
        The compiled model to store, when it passed its check.
    serving : dict
        ``{"compile": <compile report>, "batching": <calibration>}``, JSON-ready.
    predict : callable or None
        The kept graph's predictions, of shape (n_rows,), of a DataFrame of shape
        (n_rows, n_features) in model input dtypes (equal to the pipeline's within the
        compiler's tolerance); None when scikit-learn serves the version.
    """

    onnx: bytes | None
    serving: ServingReport
    predict: Callable[[pd.DataFrame], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )


def plan_serving(
    pipeline: Pipeline, signature: Signature, check: pd.DataFrame, settings: Settings
) -> ServingPlan:
    """Compile ``pipeline``, check it on ``check`` and calibrate batching.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted.
    signature : dict
    check : DataFrame of shape (n_rows, n_features)
        Held-out rows in model input dtypes; at most ``MAX_CHECK_ROWS`` are used.
    settings : Settings
        ``max_batch_size`` and ``batching_min_single_row_ms`` drive the calibration.

    Returns
    -------
    ServingPlan
    """
    check = check.head(MAX_CHECK_ROWS)
    compiled = compile_pipeline(pipeline, signature, check)
    runtime: Runtime
    if compiled.onnx is not None:
        runtime = OnnxRuntime(compiled.onnx, signature, compiled.model)
    else:
        runtime = SklearnRuntime(pipeline, signature)
    batching = calibrate(
        runtime, check, settings.max_batch_size, settings.batching_min_single_row_ms
    )
    batching["runtime"] = runtime.name
    return ServingPlan(
        onnx=compiled.onnx,
        serving={"compile": compiled.report, "batching": batching},
        predict=_graph_predict(compiled.model, signature) if compiled.model else None,
    )


def _graph_predict(model: OnnxModel, signature: Signature) -> Callable[[pd.DataFrame], np.ndarray]:
    """``frame -> predictions`` of the compiled graph (labels for a classifier)."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return model.run(feed_from_frame(frame, signature))[0]

    return predict
