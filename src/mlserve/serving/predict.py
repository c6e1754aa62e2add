"""The prediction service: resolve a version, validate, predict."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlserve.context import Columns, Context, Outputs, RowValidator, ServableVersion
from mlserve.errors import PayloadTooLarge, ValidationFailed

EXTRA_CHOICES = frozenset({"refuse", "ignore"})
_COUNT_LOCK = threading.Lock()


@dataclass(kw_only=True)
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
    warnings : list of dict
        Per row, nulls the model imputed and text values unseen in training
        (:meth:`mlserve.serving.validation.InstanceValidator.warnings`).
    prediction_id : str
        Identifies the request for feedback (``POST /api/v1/predictions/{id}/feedback``);
        logged by :mod:`mlserve.monitoring.prediction_log`.
    """

    model_name: str
    model_version: int
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    prediction_id: str = ""
    warnings: list[dict[str, Any]] = field(default_factory=list)


def predict(
    ctx: Context,
    name: str,
    instances: Any = None,
    alias: str | None = None,
    version: int | None = None,
    *,
    inputs: Any = None,
    routing_key: str | None = None,
    extra: str = "refuse",
) -> PredictionResult:
    """Predict ``instances`` (or columnar ``inputs``) with the version that alias/version select.

    With a traffic policy on the alias (:mod:`mlserve.registry.traffic`), a candidate
    may answer instead of the primary (``model_version`` of the result says which),
    and the shadow versions get a copy of the request off the request path
    (:mod:`mlserve.serving.shadow`). Every request is counted per version
    (:mod:`mlserve.serving.traffic_stats`).

    Parameters
    ----------
    ctx : Context
    name : str
        Registered model name.
    instances : list of dict or list of list
        Rows as ``{feature: value}``, or as lists of values in signature order (KServe
        V1's list form); at most ``settings.max_batch_rows``.
    inputs : dict of str to list, optional
        The same data by column, ``{feature: [value, ...]}`` (TensorFlow
        Serving's columnar format), given instead of ``instances``.
    extra : {"refuse", "ignore"}
        Keys that are not features: a 422 naming the first (default), or ignored.
    alias, version : str or int, optional
        See :func:`mlserve.registry.service.resolve` (default: ``production``, else latest).
        The lookup is cached per process (:class:`mlserve.serving.resolver.Resolver`).
    routing_key : str, optional
        Sticky routing under a split: the same key is answered by the same version.

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
    field, n_rows = count_rows(instances, inputs)
    if n_rows > limit:
        raise PayloadTooLarge(
            f"{n_rows} rows exceed max_batch_rows={limit}", {"field": field, "limit": limit}
        )
    if extra not in EXTRA_CHOICES:
        raise ValidationFailed('extra must be "refuse" or "ignore"', {"field": "extra"})
    route = ctx.resolver.route(name, alias=alias, version=version)
    row = route.choose(routing_key)
    if not row.signature["inputs"]:
        raise ValidationFailed(
            f"version {row.version} of {name!r} takes tensors, not rows: "
            f"POST /v2/models/{name}/versions/{row.version}/infer",
            {"field": field, "version": row.version},
        )
    started = time.perf_counter()
    try:
        model = ctx.models.get(row)
        if isinstance(instances, list) and instances and type(instances[0]) is list:
            instances = model.validator.rows_from_lists(instances)  # logged as objects
        columns = validated_columns(model.validator, instances, inputs, extra)
        predictions, probabilities = model.predict(columns, len(next(iter(columns.values()))))
    except Exception:
        ctx.traffic.record(row.model_name, row.version, role="live", seconds=0.0, ok=False)
        raise
    ctx.traffic.record(
        row.model_name, row.version, role="live", seconds=time.perf_counter() - started
    )
    warnings = model.validator.warnings(columns)
    if warnings:
        with _COUNT_LOCK:
            for entry in warnings:
                ctx.prediction_warnings[(model.model_name, entry["warning"])] += 1
    prediction_id = new_prediction_id()
    logged = ctx.prediction_log.submit(
        prediction_id,
        model.model_name,
        model.version,
        instances=instances,
        inputs=inputs,
        predictions=predictions,
    )
    if route.shadows:
        ctx.shadows.submit(
            route.shadows,
            instances=instances,
            inputs=inputs,
            logged_as=prediction_id if logged else None,
        )
    return PredictionResult(
        model_name=model.model_name,
        model_version=model.version,
        predictions=predictions,
        probabilities=probabilities,
        classes=model.classes,
        prediction_id=prediction_id,
        warnings=warnings,
    )


def answer(model: ServableVersion, instances: Any, inputs: Any) -> Outputs:
    """Validate ``instances`` (or columnar ``inputs``) against ``model``'s signature and
    predict them (keys that are not features refused, as by default).

    Raises
    ------
    ValidationFailed
        A row does not match the signature (names row and field).
    """
    columns = validated_columns(model.validator, instances, inputs, "refuse")
    return model.predict(columns, len(next(iter(columns.values()))))


def validated_columns(validator: RowValidator, instances: Any, inputs: Any, extra: str) -> Columns:
    """``instances`` (rows as objects) or ``inputs`` (by column) checked against
    a version's signature (its ``validator``), as the columns its ``predict`` takes
    (rows given as lists, KServe V1's form, included). Every value is of a type a JSON
    parser gives (a parsed request body, or a CSV's cells as
    :func:`mlserve.serving.csvio.feature_inputs` reads them).

    Raises
    ------
    ValidationFailed
        A row does not match the signature (names row and field), or carries a key that
        is not a feature and ``extra`` is ``"refuse"``.
    """
    if inputs is not None:
        return validator.columns_from_inputs(inputs, extra, json_values=True)
    return validator.columns(instances, extra, json_values=True)


def new_prediction_id() -> str:
    """A prediction id: 32 lowercase hex characters, a random (version 4) UUID.

    The layout of RFC 9562, section 5.4, set on 16 random bytes directly: what
    ``uuid.uuid4().hex`` gives, without building a ``UUID`` object per request.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10
    return raw.hex()


def count_rows(instances: Any, inputs: Any) -> tuple[str, int]:
    """The body field used and its number of rows (0 when not countable yet)."""
    if inputs is not None:
        if instances is not None:
            raise ValidationFailed("give instances or inputs, not both", {"field": "inputs"})
        first = next(iter(inputs.values()), None) if isinstance(inputs, dict) else None
        return "inputs", len(first) if isinstance(first, list) else 0
    return "instances", len(instances) if isinstance(instances, list) else 0


def model_status(ctx: Context, name: str) -> dict[str, Any]:
    """KServe V1 model status of the version a plain prediction of ``name`` uses.

    Returns
    -------
    dict
        ``{"name", "ready": true, "model_version_status": [{"version", "state":
        "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`` (KServe's
        ``ready`` and TF Serving's version status), once the version is loaded here.

    Raises
    ------
    NotFound
        Unknown model.
    Conflict
        Its artifact cannot be loaded.
    """
    model = ctx.models.get(ctx.resolver.resolve(name, alias=None, version=None))
    status = {"error_code": "OK", "error_message": ""}
    return {
        "name": model.model_name,
        "ready": True,
        "model_version_status": [
            {"version": str(model.version), "state": "AVAILABLE", "status": status}
        ],
    }
