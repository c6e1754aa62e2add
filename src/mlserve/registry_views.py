"""JSON-ready views of the registry: models, versions and their aliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import NotFound
from mlserve.models import ModelVersion
from mlserve.registry import (
    aliases,
    all_aliases,
    get_model,
    get_version,
    latest_versions,
    list_models,
    list_versions,
)


def version_view(row: ModelVersion, version_aliases: list[str] | None = None) -> dict[str, Any]:
    """JSON-ready view of a model version."""
    return {
        "model_name": row.model_name,
        "version": row.version,
        "task": row.task,
        "algorithm": row.algorithm,
        "params": row.params,
        "metrics": row.metrics,
        "cv_metrics": row.cv_metrics,
        "signature": row.signature,
        "dataset_id": row.dataset_id,
        "job_id": row.job_id,
        "training_seconds": row.training_seconds,
        "artifact_sha256": row.artifact_sha256,
        "artifact_size_bytes": row.artifact_size_bytes,
        "runtime": row.runtime,
        "serving": row.serving or {},
        "onnx_sha256": row.onnx_sha256,
        "onnx_size_bytes": row.onnx_size_bytes,
        "corrupt_reason": row.corrupt_reason,
        "online": row.online,
        "aliases": version_aliases or [],
        "created_at": row.created_at,
    }


def describe_version(ctx: Context, name: str, version: int) -> dict[str, Any]:
    """JSON-ready view of one version with the aliases pointing at it.

    Raises
    ------
    NotFound
    """
    row = get_version(ctx, name, version)
    names = [a for a, v in aliases(ctx, name).items() if v == version]
    return version_view(row, sorted(names))


def describe_evaluation(ctx: Context, name: str, version: int) -> dict[str, Any]:
    """Plot data of one version on its test split (see :mod:`mlserve.evaluation`).

    Returns
    -------
    dict
        ``model_name``, ``version``, then the evaluation recorded at training time.

    Raises
    ------
    NotFound
        If the model or version does not exist, or the version has no evaluation
        (registered before mlserve recorded one).
    """
    row = get_version(ctx, name, version)
    with ctx.db.session() as session:
        recorded = session.scalar(select(ModelVersion.evaluation).where(ModelVersion.id == row.id))
    if not recorded:
        raise NotFound(
            f"model {name!r} version {version} has no evaluation recorded "
            "(it was registered before mlserve recorded them)",
            {"resource": "evaluation", "model": name, "version": version},
        )
    return {"model_name": name, "version": version, **recorded}


def describe_model(ctx: Context, name: str) -> dict[str, Any]:
    """JSON-ready view of a model with its aliases and versions (newest first).

    Raises
    ------
    NotFound
    """
    model = get_model(ctx, name)
    model_aliases = aliases(ctx, name)
    versions = list_versions(ctx, name)
    by_version: dict[int, list[str]] = {}
    for alias_name, number in model_aliases.items():
        by_version.setdefault(number, []).append(alias_name)
    return {
        "name": model.name,
        "latest_version": versions[0].version if versions else None,
        "aliases": model_aliases,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "versions": [version_view(v, sorted(by_version.get(v.version, []))) for v in versions],
    }


def describe_models(ctx: Context) -> list[dict[str, Any]]:
    """JSON-ready views of every model (without their versions)."""
    latest = latest_versions(ctx)
    every_alias = all_aliases(ctx)
    return [
        {
            "name": m.name,
            "latest_version": latest.get(m.name),
            "aliases": every_alias.get(m.name, {}),
            "created_at": m.created_at,
            "updated_at": m.updated_at,
        }
        for m in list_models(ctx)
    ]
