"""JSON-ready views of the registry: models, versions and their aliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import NotFound
from mlserve.registry.service import (
    aliases,
    all_aliases,
    get_model,
    get_version,
    latest_versions,
    list_models,
    list_versions,
)
from mlserve.store.orm import ModelVersion


def version_view(
    row: ModelVersion, version_aliases: list[str] | None = None, has_reference: bool = False
) -> dict[str, Any]:
    """JSON-ready view of a model version.

    Parameters
    ----------
    row : ModelVersion
    version_aliases : list of str, optional
        The aliases pointing at the version.
    has_reference : bool
        Whether drift can be measured: the version has reference statistics, its own
        or (versions made by online updates) its lineage root's
        (see :func:`reference_flags`).
    """
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
        "report": row.report,
        "source": row.source,
        "imported": row.imported,
        "has_evaluation": bool(row.has_evaluation),
        "has_reference": has_reference,
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
    root = row.root_version
    known = {row.version: bool(row.has_own_reference)}
    if root not in known:
        with ctx.db.session() as session:
            query = select(ModelVersion.has_own_reference).where(
                ModelVersion.model_name == name, ModelVersion.version == root
            )
            known[root] = bool(session.scalar(query))
    return version_view(row, sorted(names), reference_flags([row], known)[row.version])


def reference_flags(rows: list[ModelVersion], own: dict[int, bool]) -> dict[int, bool]:
    """Version -> whether drift can be measured for it (``has_reference`` of the views).

    A version measures drift against its own reference statistics, or, made by an
    online update, its lineage root's (:func:`mlserve.monitoring.live.reference_of`).

    Parameters
    ----------
    rows : list of ModelVersion
    own : dict
        Version number -> whether that version stored reference statistics, for
        ``rows`` and their lineage roots.
    """
    return {r.version: own.get(r.version, False) or own.get(r.root_version, False) for r in rows}


def describe_evaluation(ctx: Context, name: str, version: int) -> dict[str, Any]:
    """Plot data of one version on held-out rows (see :mod:`mlserve.training.evaluation`).

    Returns
    -------
    dict
        ``model_name``, ``version``, then the evaluation recorded at training time
        (on the test split) or by the online update (on its guard window).

    Raises
    ------
    NotFound
        If the model or version does not exist, or the version has no evaluation
        (registered before mlserve recorded one; ``has_evaluation`` is false).
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
    references = reference_flags(versions, {v.version: bool(v.has_own_reference) for v in versions})
    return {
        "name": model.name,
        "latest_version": versions[0].version if versions else None,
        "aliases": model_aliases,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "versions": [
            version_view(v, sorted(by_version.get(v.version, [])), references[v.version])
            for v in versions
        ],
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
