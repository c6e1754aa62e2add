"""Model registry: named models, integer versions, aliases, artifacts with sha256.

Following MLflow's model registry: a registered model has versions numbered
1, 2, 3... and aliases (``production``, ``staging``) that point at one version.
A version's artifact is the fitted pipeline saved with skops, written atomically
before the version row is committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sklearn.pipeline import Pipeline
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlserve.context import Context
from mlserve.errors import Conflict, ValidationFailed
from mlserve.registry import lookup
from mlserve.registry.lookup import bump_generation, no_alias
from mlserve.registry.traffic import policy_versions
from mlserve.store.artifacts import StoredArtifact
from mlserve.store.documents import (
    ImportInfo,
    Memory,
    ServingReport,
    Signature,
    TrafficPolicy,
    TrainingReport,
)
from mlserve.store.orm import ModelAlias, ModelVersion, RegisteredModel, utcnow
from mlserve.training.fit import TrainResult

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def save_artifact(ctx: Context, pipeline: Pipeline, key: str) -> StoredArtifact:
    """Serialise ``pipeline`` with skops and write it under ``key`` atomically."""
    import skops.io as sio  # 5-10 s to import (it scans scikit-learn): only where used

    return ctx.store.put_bytes(key, sio.dumps(pipeline))


def add_version(
    session: Session,
    model_name: str,
    *,
    result: TrainResult,
    algorithm: str,
    artifact: StoredArtifact,
    dataset_id: str | None,
    job_id: str | None,
    serving: ServingReport | None = None,
    onnx_artifact: StoredArtifact | None = None,
    memory: Memory | None = None,
    report: TrainingReport | None = None,
) -> ModelVersion:
    """Add the next version of ``model_name`` inside the caller's transaction.

    The version number is ``max(version) + 1`` for the name; a concurrent
    writer that takes the same number makes the commit fail on the
    ``(model_name, version)`` unique constraint rather than duplicate it.

    Parameters
    ----------
    serving : dict, optional
        How the version is served: the compilation report and the batching
        calibration (see :mod:`mlserve.serving.compile`).
    onnx_artifact : StoredArtifact, optional
        The compiled ONNX model, when the pipeline compiled and passed its check;
        the version's runtime is then ``onnx``.
    memory : dict, optional
        What online updates of the version remember (:mod:`mlserve.training.memory`,
        :mod:`mlserve.online.replay`).
    report : dict, optional
        The training job's report: columns used and why, encodings, leaderboard.

    Returns
    -------
    ModelVersion
        Flushed, not yet committed.
    """
    latest = _touch_model(session, model_name)
    version = ModelVersion(
        model_name=model_name,
        version=(latest or 0) + 1,
        task=result.task,
        algorithm=algorithm,
        params=result.params,
        metrics=result.metrics,
        cv_metrics=result.cv_metrics,
        signature=result.signature,
        dataset_id=dataset_id,
        job_id=job_id,
        training_seconds=result.training_seconds,
        artifact_key=artifact.key,
        artifact_sha256=artifact.sha256,
        artifact_size_bytes=artifact.size_bytes,
        runtime="onnx" if onnx_artifact is not None else "sklearn",
        serving=serving or {},
        onnx_artifact_key=onnx_artifact.key if onnx_artifact else None,
        onnx_sha256=onnx_artifact.sha256 if onnx_artifact else None,
        onnx_size_bytes=onnx_artifact.size_bytes if onnx_artifact else None,
        evaluation=result.evaluation,
        reference=result.reference,
        memory=memory,
        report=report,
    )
    session.add(version)
    bump_generation(session)
    session.flush()
    return version


@dataclass(kw_only=True)
class ImportedVersion:
    """What an imported model file gives its version (:mod:`mlserve.serving.imports`)."""

    task: str
    algorithm: str
    signature: Signature
    runtime: str
    imported: ImportInfo
    artifact: StoredArtifact


def add_imported_version(
    session: Session, model_name: str, fields: ImportedVersion
) -> ModelVersion:
    """Add the next version of ``model_name`` from an imported file, in the caller's transaction.

    Numbered as :func:`add_version` numbers; ``source`` is ``imported``, with no
    metrics, dataset, job or training time.

    Returns
    -------
    ModelVersion
        Flushed, not yet committed.
    """
    latest = _touch_model(session, model_name)
    version = ModelVersion(
        model_name=model_name,
        version=(latest or 0) + 1,
        task=fields.task,
        algorithm=fields.algorithm,
        params={},
        metrics={},
        cv_metrics={"folds": 0},
        signature=fields.signature,
        training_seconds=0.0,
        artifact_key=fields.artifact.key,
        artifact_sha256=fields.artifact.sha256,
        artifact_size_bytes=fields.artifact.size_bytes,
        runtime=fields.runtime,
        serving={},
        source="imported",
        imported=fields.imported,
    )
    session.add(version)
    bump_generation(session)
    session.flush()
    return version


def _touch_model(session: Session, model_name: str) -> int | None:
    """Create ``model_name`` if new, mark it updated; return its latest version number."""
    model = session.get(RegisteredModel, model_name)
    if model is None:
        model = RegisteredModel(name=model_name)
        session.add(model)
        session.flush()
    model.updated_at = utcnow()
    return session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_name == model_name)
    )


def list_models(ctx: Context) -> list[RegisteredModel]:
    """Every registered model, by name."""
    with ctx.db.session() as session:
        return list(session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)))


def list_versions(ctx: Context, name: str) -> list[ModelVersion]:
    """Versions of ``name``, newest first.

    Raises
    ------
    NotFound
        If the model does not exist.
    """
    get_model(ctx, name)
    with ctx.db.session() as session:
        query = (
            select(ModelVersion)
            .where(ModelVersion.model_name == name)
            .order_by(ModelVersion.version.desc())
        )
        return list(session.scalars(query))


def aliases(ctx: Context, name: str) -> dict[str, int]:
    """Alias -> version number for ``name``."""
    with ctx.db.session() as session:
        rows = session.scalars(select(ModelAlias).where(ModelAlias.model_name == name))
        return {row.alias: row.version for row in rows}


def all_aliases(ctx: Context) -> dict[str, dict[str, int]]:
    """Model name -> (alias -> version), for every model."""
    result: dict[str, dict[str, int]] = {}
    with ctx.db.session() as session:
        for row in session.scalars(select(ModelAlias)):
            result.setdefault(row.model_name, {})[row.alias] = row.version
    return result


def latest_versions(ctx: Context) -> dict[str, int]:
    """Model name -> highest version number."""
    with ctx.db.session() as session:
        query = select(ModelVersion.model_name, func.max(ModelVersion.version)).group_by(
            ModelVersion.model_name
        )
        return {name: int(version) for name, version in session.execute(query)}


def set_alias(
    ctx: Context, name: str, alias: str, version: int, policy: TrafficPolicy | None = None
) -> ModelAlias:
    """Point ``alias`` of ``name`` at ``version`` (creating or moving it), with a policy.

    Parameters
    ----------
    policy : TrafficPolicy, optional
        Candidates and shadows (:func:`mlserve.registry.traffic.parse_policy`); ``None``
        makes the alias plain (removing any policy it had).

    Raises
    ------
    ValidationFailed
        If the alias is not 1-64 lowercase letters, digits, ``_`` or ``-``
        starting with a letter, or is ``latest`` (reserved).
    NotFound
        If the model or a version the alias or its policy names does not exist.
    """
    if not ALIAS_PATTERN.fullmatch(alias) or alias == "latest":
        raise ValidationFailed(
            "alias must be 1-64 characters of a-z, 0-9, '_' or '-', start with a letter, "
            "and not be 'latest'",
            {"field": "alias", "value": alias},
        )
    for number in policy_versions(version, policy):
        get_version(ctx, name, number)
    try:
        with ctx.db.session() as session:
            row = session.get(ModelAlias, (name, alias))
            if row is None:
                row = ModelAlias(model_name=name, alias=alias, version=version)
                session.add(row)
            row.version = version
            row.policy = policy
            row.updated_at = utcnow()
            bump_generation(session)
    except IntegrityError:  # created concurrently: move it instead
        return set_alias(ctx, name, alias, version, policy)
    ctx.resolver.invalidate(name)
    return row


def get_alias(ctx: Context, name: str, alias: str) -> ModelAlias:
    """The alias row (version and policy).

    Raises
    ------
    NotFound
        If the model or the alias does not exist.
    """
    with ctx.db.session() as session:
        row = session.get(ModelAlias, (name, alias))
    if row is None:
        get_model(ctx, name)
        raise no_alias(name, alias)
    return row


def promote(ctx: Context, name: str, alias: str, version: int | None = None) -> ModelAlias:
    """Make a candidate (or shadow) of the alias's policy its primary, and drop the policy.

    Parameters
    ----------
    version : int, optional
        The candidate to promote; default: the policy's only candidate or shadow.

    Raises
    ------
    NotFound
        If the model or the alias does not exist.
    Conflict
        If the alias has no policy.
    ValidationFailed
        If ``version`` is not in the policy, or is omitted and the policy has several.
    """
    row = get_alias(ctx, name, alias)
    if row.policy is None:
        raise Conflict(f"alias {alias!r} has no traffic policy", {"field": "alias"})
    candidates = policy_versions(row.version, row.policy)[1:]
    if version is None:
        if len(candidates) != 1:
            raise ValidationFailed(
                "the policy has several candidates: name the version", {"field": "version"}
            )
        version = candidates[0]
    if version not in candidates:
        raise ValidationFailed(
            f"version {version} is not a candidate of alias {alias!r}", {"field": "version"}
        )
    return set_alias(ctx, name, alias, version, None)


def delete_alias(ctx: Context, name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``.

    Raises
    ------
    NotFound
        If the alias does not exist.
    """
    with ctx.db.session() as session:
        row = session.get(ModelAlias, (name, alias))
        if row is None:
            raise no_alias(name, alias)
        session.delete(row)
        bump_generation(session)
    ctx.resolver.invalidate(name)


def generation(ctx: Context) -> int:
    """Current registry generation (0 before the first change); see :mod:`.lookup`."""
    return lookup.generation(ctx.db)


def find_model(ctx: Context, name: str) -> RegisteredModel | None:
    """Return the registered model ``name`` or ``None``."""
    return lookup.find_model(ctx.db, name)


def get_model(ctx: Context, name: str) -> RegisteredModel:
    """Return the registered model ``name``.

    Raises
    ------
    NotFound
    """
    return lookup.get_model(ctx.db, name)


def find_version(ctx: Context, name: str, version: int) -> ModelVersion | None:
    """Return version ``version`` of ``name`` or ``None``."""
    return lookup.find_version(ctx.db, name, version)


def get_version(ctx: Context, name: str, version: int) -> ModelVersion:
    """Return version ``version`` of ``name``.

    Raises
    ------
    NotFound
        If the model or the version does not exist.
    """
    return lookup.get_version(ctx.db, name, version)


def resolve(
    ctx: Context, name: str, alias: str | None = None, version: int | None = None
) -> ModelVersion:
    """Find the version a request means (see :func:`mlserve.registry.lookup.resolve`).

    Raises
    ------
    ValidationFailed
        If both ``alias`` and ``version`` are given.
    NotFound
        If the model, alias or version does not exist.
    """
    return lookup.resolve(ctx.db, name, alias=alias, version=version)
