"""The explanation service: per-row SHAP contributions of the version a request selects.

``POST /api/v1/models/{name}/explain`` takes the body of a prediction and selects the
version as a prediction does (alias, version, traffic policy and routing key:
:meth:`mlserve.registry.traffic.Route.choose`), so that an explanation is of the
version that would answer. The explainer (:mod:`mlserve.training.explain`) is built
once per version and kept in a small per-process cache
(:class:`mlserve.serving.explain_cache.ExplainerCache`); it
explains the scikit-learn pipeline of the version's artifact (sha256-checked, loaded
with the allow-list of :func:`mlserve.serving.loader.load_pipeline`), whatever runtime
serves its predictions.

The background sample of the linear and permutation explainers is the one the training
job stored with the version (``explain_background`` in its evaluation); a version
made by an online update uses its lineage root's; a version trained before
explanations existed draws 100 seeded rows from its dataset if the dataset is still
stored, else its explanations are refused (422). TreeSHAP needs none. An imported
version (ONNX or skops file) is explained through its own runtime by
:mod:`mlserve.serving.explain_imported`, over the sample rows it was registered with.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from sqlalchemy import select

from mlserve.context import Context
from mlserve.datasets import service as datasets
from mlserve.errors import PayloadTooLarge, ValidationFailed
from mlserve.serving.explain_imported import ImportedExplainer
from mlserve.serving.loader import load_pipeline
from mlserve.serving.predict import EXTRA_CHOICES, count_rows, validated_columns
from mlserve.serving.validation import InstanceValidator
from mlserve.store.orm import ModelVersion
from mlserve.training.explain import BACKGROUND_ROWS, PipelineExplainer, needs_background
from mlserve.training.signature import model_frame, to_json_scalar

Entry = tuple[PipelineExplainer | ImportedExplainer, InstanceValidator]


def explain(
    ctx: Context,
    name: str,
    instances: Any = None,
    alias: str | None = None,
    version: int | None = None,
    *,
    inputs: Any = None,
    routing_key: str | None = None,
    extra: str = "refuse",
) -> dict[str, Any]:
    """Explain ``instances`` (or columnar ``inputs``) with the version they select.

    ``instances``, ``inputs``, ``routing_key`` and ``extra`` (keys that are not
    features: ``"refuse"`` or ``"ignore"``) as in :func:`mlserve.serving.predict.predict`.

    Returns
    -------
    dict
        ``model_name``, ``model_version``, ``method`` (linear, tree, permutation),
        ``output_space`` (raw, log-odds, probability), ``features``, and
        ``explanations``: per row ``prediction`` (the model's answer), ``class`` (the
        class explained, classifiers), ``output`` (the model's output in
        ``output_space``), ``base_value`` and ``contributions`` ({feature: value},
        adding up to ``output - base_value``).

    Raises
    ------
    PayloadTooLarge
        More rows than ``explain_max_rows``.
    ValidationFailed
        A row does not match the signature; no background sample for the version;
        the explanation ran over ``explain_budget_s``.
    NotFound, Conflict
        As :func:`mlserve.serving.predict.predict`.
    """
    field, n_rows = count_rows(instances, inputs)
    limit = ctx.settings.explain_max_rows
    if n_rows > limit:
        raise PayloadTooLarge(
            f"{n_rows} rows exceed explain_max_rows={limit}", {"field": field, "limit": limit}
        )
    if extra not in EXTRA_CHOICES:
        raise ValidationFailed('extra must be "refuse" or "ignore"', {"field": "extra"})
    row = ctx.resolver.route(name, alias=alias, version=version).choose(routing_key)
    explainer, validator = _explainer(ctx, row)  # built once per process, not in the budget
    started = time.perf_counter()
    columns = validated_columns(validator, instances, inputs, extra)
    frame = validator.frame(columns)
    budget = ctx.settings.explain_budget_s - (time.perf_counter() - started)
    explained = explainer.explain(frame, max(budget, 0.0))
    assert explained.predictions is not None
    rows = []
    for i, prediction in enumerate(explained.predictions.tolist()):
        item: dict[str, Any] = {
            "prediction": to_json_scalar(prediction),
            "output": float(explained.output[i]),
            "base_value": float(explained.base[i]),
            "contributions": dict(
                zip(explained.features, explained.contributions[i].tolist(), strict=True)
            ),
        }
        if explained.explained is not None:
            item["class"] = to_json_scalar(explained.explained[i])
        rows.append(item)
    return {
        "model_name": row.model_name,
        "model_version": row.version,
        "method": explained.method,
        "output_space": explained.output_space,
        "features": explained.features,
        "explanations": rows,
    }


def _explainer(ctx: Context, row: ModelVersion) -> Entry:
    key = (row.model_name, row.version, row.artifact_sha256)
    found = ctx.explainers.get(key)
    if found is not None:
        return found
    validator = InstanceValidator(row.signature)
    if row.source == "imported":
        entry: Entry = (_imported_explainer(ctx, row, validator), validator)
    else:
        pipeline = load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))
        background = background_of(ctx, row) if needs_background(pipeline) else None
        classes = row.signature["output"].get("classes")
        entry = (PipelineExplainer(pipeline, classes=classes, background=background), validator)
    ctx.explainers.put(key, entry)
    return entry


def _imported_explainer(
    ctx: Context, row: ModelVersion, validator: InstanceValidator
) -> ImportedExplainer:
    """The sampling explainer of an imported version, over its registration sample.

    Raises
    ------
    ValidationFailed
        A tensor model (no tabular features), or a version imported without a sample.
    """
    if row.imported is not None and row.imported["layout"] == "tensor":
        raise ValidationFailed(
            "this version takes tensors, not named features: explanations need a tabular signature",
            {"field": "version"},
        )
    stored = _stored_background(ctx, row)
    if not stored:
        raise ValidationFailed(
            "no background sample for this version: import it again with a `sample` of "
            "rows (they become the background of its explanations)",
            {"field": "version"},
        )
    background = validator.frame(validator.columns(stored))
    return ImportedExplainer(ctx.models.get(row), background)


def _stored_background(ctx: Context, row: ModelVersion) -> list[dict[str, Any]] | None:
    """The background rows stored with the version (``explain_background`` of its
    evaluation, a deferred column), else with its lineage root, else ``None``."""
    with ctx.db.session() as session:
        for number in dict.fromkeys([row.version, row.root_version]):
            evaluation = session.scalar(
                select(ModelVersion.evaluation).where(
                    ModelVersion.model_name == row.model_name, ModelVersion.version == number
                )
            )
            stored = (evaluation or {}).get("explain_background")
            if stored:
                return list(stored)
    return None


def background_of(ctx: Context, row: ModelVersion) -> pd.DataFrame | None:
    """The version's background sample: stored at training (its own, else its lineage
    root's), else 100 seeded rows of its dataset if still stored, else ``None``."""
    stored = _stored_background(ctx, row)
    if stored:
        return model_frame(pd.DataFrame.from_records(stored), row.signature)
    dataset = datasets.find_dataset(ctx, row.dataset_id) if row.dataset_id else None
    if dataset is None:
        return None
    try:
        frame = datasets.read_frame(ctx, dataset)
    except Exception:  # missing or damaged file: no background
        return None
    names = [f["name"] for f in row.signature["inputs"]]
    if not set(names) <= set(frame.columns):
        raise ValidationFailed("the version's dataset lacks its features", {"field": "version"})
    sample = frame[names].sample(min(BACKGROUND_ROWS, len(frame)), random_state=0)
    return model_frame(sample, row.signature)
