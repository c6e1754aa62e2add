"""Inference runtimes: what turns validated feature columns into predictions.

A model version is served by one of two runtimes, chosen at registration
(:func:`mlserve.serving.onnx.compile_pipeline`):

- ``onnx``: the pipeline compiled to ONNX and run by ONNX Runtime with one
  intra-op thread, fed numpy arrays directly (no pandas on the request path);
- ``sklearn``: the fitted scikit-learn pipeline, fed a DataFrame.

:func:`calibrate` times a runtime on one row and on a batch, which decides
whether concurrent requests are worth batching (:mod:`mlserve.serving.batching`).
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlserve.lazy import lazy_module
from mlserve.serving.validation import Columns, InstanceValidator
from mlserve.store.documents import BatchingCalibration, Signature

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlserve.serving.onnx_model import OnnxModel
else:
    pd = lazy_module("pandas")

Outputs = tuple[np.ndarray, np.ndarray | None]


class Runtime(Protocol):
    """Something that predicts from validated columns."""

    name: str
    validator: InstanceValidator

    def predict(self, columns: Columns) -> Outputs:
        """Predictions of shape (n_rows,) and probabilities of shape (n_rows, n_classes) or None."""
        ...


class SklearnRuntime:
    """Serve a fitted scikit-learn pipeline.

    Parameters
    ----------
    pipeline : Pipeline
    signature : dict
    """

    name = "sklearn"

    def __init__(self, pipeline: Pipeline, signature: Signature) -> None:
        self.pipeline = pipeline
        self.validator = InstanceValidator(signature)
        self._proba = signature["output"].get("classes") is not None and hasattr(
            pipeline, "predict_proba"
        )

    def predict(self, columns: Columns) -> Outputs:
        """Predict from ``columns`` (see :meth:`InstanceValidator.columns`)."""
        frame = self.validator.frame(columns)
        predictions = self.pipeline.predict(frame)
        probabilities = self.pipeline.predict_proba(frame) if self._proba else None
        return predictions, probabilities


class OnnxRuntime:
    """Serve a compiled ONNX model with ONNX Runtime.

    Parameters
    ----------
    data : bytes
        Serialised ONNX model (already checked against its sha256).
    signature : dict
    model : OnnxModel, optional
        A session already built from ``data`` (at registration, the one the
        check ran on); else one is built here.

    Raises
    ------
    ValueError
        If the graph refers to external tensor data (:func:`refuse_external_data`).
    """

    name = "onnx"

    def __init__(self, data: bytes, signature: Signature, model: OnnxModel | None = None) -> None:
        from mlserve.serving.onnx_model import MISSING_TEXT, OnnxModel

        refuse_external_data(data)
        self.model = model if model is not None else OnnxModel(data, signature)
        self.validator = InstanceValidator(signature, missing_text=MISSING_TEXT)

    def predict(self, columns: Columns) -> Outputs:
        """Predict from ``columns`` (:meth:`OnnxModel.run` shapes them for the graph)."""
        return self.model.run(columns)


def refuse_external_data(data: bytes) -> None:
    """Refuse a graph whose tensors live in external files.

    ONNX Runtime would read such a file relative to its working directory, so
    a planted graph could serve the bytes of any file there (the server's
    secret, say). mlserve never writes external data.

    Raises
    ------
    ValueError
        If any tensor (initializer or constant attribute) has external data.
    """
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    model = onnx.load_model_from_string(data)  # external files are not read here
    for tensor in _get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise ValueError("the graph refers to external tensor data")


def sample_columns(runtime: Runtime, frame: pd.DataFrame, n_rows: int) -> Columns:
    """The first ``n_rows`` rows of ``frame`` as validated columns for ``runtime``.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_features)
        Rows in :func:`mlserve.training.signature.model_frame` dtypes.
    n_rows : int
        Rows wanted; ``frame`` is repeated if it is shorter.
    """
    repeats = n_rows // max(len(frame), 1) + 1
    rows = pd.concat([frame] * repeats, ignore_index=True).head(n_rows) if repeats > 1 else frame
    return runtime.validator.columns_from_frame(rows.head(n_rows))


def calibrate(
    runtime: Runtime,
    frame: pd.DataFrame,
    batch_rows: int,
    min_single_row_ms: float,
    repeats: int = 15,
) -> BatchingCalibration:
    """Decide whether micro-batching pays for ``runtime`` by timing it.

    Batching makes each request wait up to ``max_batch_wait_ms`` for others, so
    it is worth it only where one call has a high fixed cost: when one row
    takes at least ``min_single_row_ms`` and a row inside a batch of
    ``batch_rows`` costs at most half of that.

    Parameters
    ----------
    runtime : Runtime
    frame : DataFrame of shape (n_samples, n_features)
        Real rows (held-out test rows at registration).
    batch_rows : int
        Batch size timed (``max_batch_size``).
    min_single_row_ms : float
        Single-row latency below which batching is never enabled, in milliseconds.
    repeats : int
        Timed calls per size; medians are kept.

    Returns
    -------
    dict
        ``{"enabled", "single_row_ms", "batched_row_ms", "batch_rows", "reason"}``
        (times in milliseconds, medians).
    """
    one = sample_columns(runtime, frame, 1)
    many = sample_columns(runtime, frame, batch_rows)
    # Rounded once, here: the reason quotes the figures the report holds.
    single_ms = round(_median_ms(lambda: runtime.predict(one), repeats), 4)
    batch_ms = _median_ms(lambda: runtime.predict(many), max(3, repeats // 3))
    per_row_ms = round(batch_ms / batch_rows, 4)
    if single_ms < min_single_row_ms:
        enabled, reason = False, f"one row takes {single_ms:.3f} ms < {min_single_row_ms} ms"
    elif per_row_ms > single_ms / 2:
        enabled, reason = False, "a row in a batch costs more than half of a single row"
    else:
        enabled = True
        reason = f"a row in a batch of {batch_rows} costs {per_row_ms / single_ms:.0%} of one row"
    return {
        "enabled": enabled,
        "single_row_ms": single_ms,
        "batched_row_ms": per_row_ms,
        "batch_rows": batch_rows,
        "reason": reason,
    }


def _median_ms(call: Any, repeats: int) -> float:
    call()  # warm-up: first calls allocate
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
