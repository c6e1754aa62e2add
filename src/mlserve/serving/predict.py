"""The prediction service: resolve a version, validate, predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlserve.context import Context
from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.prediction_log import new_prediction_id


@dataclass
class PredictionResult:
    """Predictions for a batch of instances.

    Attributes
    ----------
    model_name : str
    model_version : int
    predictions : ndarray of shape (n_instances,)
        Target values (regression) or class labels (classification).
    probabilities : ndarray of shape (n_instances, n_classes) or None
        Class probabilities, columns in ``classes`` order (classifiers with
        ``predict_proba`` only).
    classes : list or None
    prediction_id : str
        Identifies the request for feedback (``POST /api/v1/predictions/{id}/feedback``);
        logged as :mod:`mlserve.prediction_log` samples.
    """

    model_name: str
    model_version: int
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    prediction_id: str = ""


def predict(
    ctx: Context,
    name: str,
    instances: Any = None,
    alias: str | None = None,
    version: int | None = None,
    *,
    inputs: Any = None,
) -> PredictionResult:
    """Predict ``instances`` (or columnar ``inputs``) with the version that alias/version select.

    Parameters
    ----------
    ctx : Context
    name : str
        Registered model name.
    instances : list of dict
        Rows as ``{feature: value}``; at most ``settings.max_batch_rows``.
    inputs : dict of str to list, optional
        The same data by column, ``{feature: [value, ...]}`` (TensorFlow
        Serving's columnar format), given instead of ``instances``.
    alias, version : str or int, optional
        See :func:`mlserve.registry.resolve` (default: ``production``, else latest).
        The lookup is cached per process (:class:`mlserve.serving.resolver.Resolver`).

    Raises
    ------
    PayloadTooLarge
        More rows than ``max_batch_rows``.
    ValidationFailed
        An instance does not match the signature (names row and field).
    NotFound
        Unknown model, alias or version.
    Conflict
        Artifact missing, failing its sha256 check or the type allow-list.
    """
    limit = ctx.settings.max_batch_rows
    field, n_rows = _rows(instances, inputs)
    if n_rows > limit:
        raise PayloadTooLarge(
            f"{n_rows} rows exceed max_batch_rows={limit}", {"field": field, "limit": limit}
        )
    row = ctx.resolver.resolve(name, alias=alias, version=version)
    model = ctx.models.get(row)
    if inputs is not None:
        columns = model.validator.columns_from_inputs(inputs)
    else:
        columns = model.validator.columns(instances)
    predictions, probabilities = model.predict(columns, len(next(iter(columns.values()))))
    prediction_id = new_prediction_id()
    ctx.prediction_log.submit(
        prediction_id, model.model_name, model.version, instances, inputs, predictions
    )
    return PredictionResult(
        model.model_name, model.version, predictions, probabilities, model.classes, prediction_id
    )


def _rows(instances: Any, inputs: Any) -> tuple[str, int]:
    """The body field used and its number of rows (0 when not countable yet)."""
    if inputs is not None:
        if instances is not None:
            raise ValidationFailed("give instances or inputs, not both", {"field": "inputs"})
        first = next(iter(inputs.values()), None) if isinstance(inputs, dict) else None
        return "inputs", len(first) if isinstance(first, list) else 0
    return "instances", len(instances) if isinstance(instances, list) else 0
