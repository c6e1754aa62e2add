"""Checking an uploaded skops file and planning its version.

skops reads a file without running code, listing the types it holds first
(:func:`skops.io.get_untrusted_types`); anything neither skops nor
:data:`mlserve.serving.loader.ALLOWED_TYPES` trusts is refused with the list of
refused types before a single object is built. The estimator must have ``predict``;
its features come from ``feature_names_in_`` or the metadata, their types from the
metadata or the sample, and the sample runs before anything is stored.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.serving.import_meta import ImportMetadata, sample_columns, tabular_tensors
from mlserve.serving.import_plan import ImportPlan
from mlserve.serving.loader import load_estimator
from mlserve.serving.runtime import SklearnRuntime
from mlserve.store.documents import FeatureSpec, ImportInfo, Signature

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def plan_skops(
    data: bytes, meta: ImportMetadata, sample: Any, max_model_bytes: int
) -> tuple[ImportPlan, Pipeline]:
    """Check a skops file, derive its signature and run the sample.

    Parameters
    ----------
    data : bytes
    meta : ImportMetadata
    sample : object or None
        Rows as a list of records or ``{feature: [values]}``.
    max_model_bytes : int

    Returns
    -------
    plan : ImportPlan
    pipeline : Pipeline
        The estimator (wrapped in a one-step pipeline if it is not one).

    Raises
    ------
    PayloadTooLarge
        A file over ``max_model_bytes``.
    ValidationFailed
        Empty or unreadable file, refused types (``details["types"]``), no
        ``predict``, unknown feature names, or a failing sample run.
    """
    if not data:
        raise ValidationFailed("the model file is empty", {"field": "file"})
    if len(data) > max_model_bytes:
        raise PayloadTooLarge(
            f"model file of {len(data)} bytes exceeds max_model_bytes={max_model_bytes}",
            {"field": "file", "limit": max_model_bytes},
        )
    pipeline = load_estimator(data)
    features = _features(pipeline, meta, sample)
    classes = getattr(pipeline, "classes_", None)
    task = "classification" if classes is not None else "regression"
    signature: Signature = {
        "inputs": features,
        "output": {"name": meta.output_name or "prediction", "type": "number"},
    }
    if classes is not None:
        labels = [v.item() if isinstance(v, np.generic) else v for v in classes]
        kind = "string" if isinstance(labels[0], str) else "integer"
        signature["output"] = {"name": signature["output"]["name"], "type": kind, "classes": labels}
    runtime = SklearnRuntime(pipeline, signature)
    try:
        runtime.predict(sample_columns(runtime.validator, signature, sample))
    except ValidationFailed:
        raise
    except Exception as exc:  # the estimator's own errors (wrong columns, unseen values)
        raise ValidationFailed(
            f"the model could not predict the sample: {type(exc).__name__}: {str(exc)[:300]}",
            {"field": "sample"},
        ) from exc
    info: ImportInfo = {
        "format": "skops",
        "framework": meta.framework or "scikit-learn",
        "producer_name": "skops",
        "producer_version": _skops_version(data),
        "opset": {},
        "layout": "pipeline",
        "tensors": tabular_tensors(signature),
        "label_output": None,
        "proba_output": None,
        "metadata": meta.model_dump(exclude_none=True),
    }
    return ImportPlan(task=task, signature=signature, info=info, runtime="sklearn"), pipeline


def _features(pipeline: Pipeline, meta: ImportMetadata, sample: Any) -> list[FeatureSpec]:
    if meta.features is not None:
        return [{"name": f.name, "type": f.type, "nullable": True} for f in meta.features]
    names = meta.feature_names
    if names is None and hasattr(pipeline, "feature_names_in_"):
        names = [str(n) for n in pipeline.feature_names_in_]
    if names is None:
        raise ValidationFailed(
            "the estimator has no feature names: give metadata feature_names or features",
            {"field": "metadata", "key": "feature_names"},
        )
    return [{"name": n, "type": _sample_type(sample, n), "nullable": True} for n in names]


def _sample_type(sample: Any, name: str) -> Any:
    """The logical type of feature ``name`` from the first sample value (default number)."""
    values: list[Any] = []
    if isinstance(sample, dict) and isinstance(sample.get(name), list):
        values = sample[name]
    elif isinstance(sample, list):
        values = [row.get(name) for row in sample if isinstance(row, dict)]
    for value in values:
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, str):
            return "string"
        if isinstance(value, int):
            return "integer"
        if value is not None:
            return "number"
    return "number"


def _skops_version(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return str(json.loads(archive.read("schema.json")).get("_skops_version", ""))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return ""
