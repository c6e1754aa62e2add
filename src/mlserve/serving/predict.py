"""The prediction service: resolve a version, validate, predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlserve.context import Context
from mlserve.errors import PayloadTooLarge


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
    """

    model_name: str
    model_version: int
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None


def predict(
    ctx: Context, name: str, instances: Any, alias: str | None = None, version: int | None = None
) -> PredictionResult:
    """Predict ``instances`` with the version of ``name`` that alias/version select.

    Parameters
    ----------
    ctx : Context
    name : str
        Registered model name.
    instances : list of dict
        Rows as ``{feature: value}``; at most ``settings.max_batch_rows``.
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
    if isinstance(instances, list) and len(instances) > limit:
        raise PayloadTooLarge(
            f"{len(instances)} instances exceed max_batch_rows={limit}",
            {"field": "instances", "limit": limit},
        )
    row = ctx.resolver.resolve(name, alias=alias, version=version)
    model = ctx.models.get(row)
    columns = model.validator.columns(instances)
    predictions, probabilities = model.predict(columns, len(instances))
    return PredictionResult(
        model.model_name, model.version, predictions, probabilities, model.classes
    )
