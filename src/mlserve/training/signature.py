"""Model signatures: the inputs a model version accepts and the output it gives.

A signature is stored as JSON with the version::

    {"inputs": [{"name", "type", "nullable", "categories"?}, ...],
     "output": {"name", "type", "classes"?}}

``type`` is one of ``"number"``, ``"integer"``, ``"boolean"``, ``"string"``;
``nullable`` says whether the feature had missing values in the training data;
``imputed`` that the pipeline imputes it, so ``null`` is accepted at prediction time
(versions without ``imputed`` accept ``null`` only for ``nullable`` features, as MLflow's
schema enforcement treats required columns); ``categories`` lists the values seen in
training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlserve.lazy import lazy_module
from mlserve.store.documents import FeatureSpec, OutputSpec, Signature

if TYPE_CHECKING:
    import pandas as pd

    from mlserve.datasets import stats
else:
    pd = lazy_module("pandas")
    stats = lazy_module("mlserve.datasets.stats")

MAX_CATEGORIES_LISTED = 1000


def infer_signature(
    features: pd.DataFrame, target: pd.Series, task: str, classes: Sequence[Any] | None
) -> Signature:
    """Build the signature of a model trained on ``features`` to predict ``target``.

    Parameters
    ----------
    features : DataFrame of shape (n_samples, n_features)
    target : Series of shape (n_samples,)
    task : {"regression", "classification"}
    classes : sequence or None
        Class labels in the estimator's order (classification only).
    """
    inputs: list[FeatureSpec] = []
    for name in features.columns:
        column = features[name]
        spec: FeatureSpec = {
            "name": str(name),
            "type": stats.logical_type(column),
            "nullable": bool(column.isna().any()),
            # mlserve's preprocessing imputes every feature (training.preprocessing).
            "imputed": True,
        }
        if spec["type"] == "string":
            seen = sorted(column.dropna().astype(str).unique().tolist())
            spec["categories"] = seen[:MAX_CATEGORIES_LISTED]
        inputs.append(spec)
    return {"inputs": inputs, "output": output_signature(target, task, classes)}


def output_signature(target: pd.Series, task: str, classes: Sequence[Any] | None) -> OutputSpec:
    """The ``output`` part of a signature: target name, type and, for classifiers, classes.

    Parameters
    ----------
    target : Series of shape (n_samples,)
    task : {"regression", "classification"}
    classes : sequence or None
        Class labels in the estimator's order; without them the output is
        described as a number.
    """
    output: OutputSpec = {"name": str(target.name), "type": "number"}
    if task == "classification" and classes is not None:
        output["type"] = stats.logical_type(target)
        output["classes"] = [to_json_scalar(c) for c in classes]
    return output


def to_json_scalar(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def model_frame(frame: pd.DataFrame, signature: Signature) -> pd.DataFrame:
    """Cast ``frame`` to the dtypes the pipeline was fitted on.

    Numeric and boolean features become ``float64`` (booleans as 0/1, missing as
    NaN); text features become ``object`` with NaN for missing, which
    ``SimpleImputer`` recognises (``None`` would pass as a category of its own).

    Returns
    -------
    DataFrame of shape (n_samples, n_features) with columns in signature order.
    """
    columns = {}
    for spec in signature["inputs"]:
        column = frame[spec["name"]]
        if spec["type"] == "string":
            columns[spec["name"]] = column.astype(object).where(column.notna(), np.nan)
        else:
            columns[spec["name"]] = pd.to_numeric(column.astype(object), errors="coerce").astype(
                "float64"
            )
    return pd.DataFrame(columns, index=frame.index)
