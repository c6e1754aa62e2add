"""Stored samples as model input: features in the signature's dtypes, and targets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlserve.store.documents import Signature
from mlserve.store.orm import Sample
from mlserve.training.signature import model_frame


def samples_frame(rows: list[Sample], signature: Signature) -> pd.DataFrame:
    """Stored samples' features as a model input frame of shape (n_samples, n_features)."""
    names = [f["name"] for f in signature["inputs"]]
    frame = pd.DataFrame.from_records([row.features for row in rows], columns=names)
    return model_frame(frame, signature)


def samples_target(rows: list[Sample], task: str) -> np.ndarray:
    """Stored samples' targets, shape (n_samples,): float64 (regression); class labels as
    numbers or booleans, or text as ``object`` (as pandas holds text labels at training):
    metrics refuse integer labels held as ``object`` ("unknown" targets)."""
    values = [row.target for row in rows]
    if task == "regression":
        return np.asarray(values, dtype=np.float64)
    labels = np.asarray(values)
    return labels.astype(object) if labels.dtype.kind in "USO" else labels


def concat_targets(parts: list[np.ndarray]) -> np.ndarray:
    """Targets of several row sets in one array (empty parts do not change the dtype)."""
    kept = [part for part in parts if len(part)] or parts[:1]
    return np.concatenate(kept)
