"""Model registry: named models, integer versions, aliases, artifacts with sha256.

Following MLflow's model registry: a registered model has versions numbered
1, 2, 3... and aliases (``production``, ``staging``) that point at one version.
A version's artifact is the fitted pipeline saved with skops, written atomically
before the version row is committed.
"""

from __future__ import annotations

import re
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlserve.context import Context
from mlserve.errors import NotFound, ValidationFailed
from mlserve.models import ModelAlias, ModelVersion, RegisteredModel, RegistryState, utcnow
from mlserve.storage import StoredArtifact
from mlserve.training import TrainResult

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DEFAULT_ALIAS = "production"
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer


def save_artifact(ctx: Context, pipeline: Pipeline, key: str) -> StoredArtifact:
    """Serialise ``pipeline`` with skops and write it under ``key`` atomically."""
    return ctx.store.put_bytes(key, sio.dumps(pipeline))


def add_version(
    session: Session,
    model_name: str,
    result: TrainResult,
    algorithm: str,
    artifact: StoredArtifact,
    dataset_id: str | None,
    job_id: str | None,
    serving: dict[str, Any] | None = None,
    onnx_artifact: StoredArtifact | None = None,
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

    Returns
    -------
    ModelVersion
        Flushed, not yet committed.
    """
    model = session.get(RegisteredModel, model_name)
    if model is None:
        model = RegisteredModel(name=model_name)
        session.add(model)
        session.flush()
    model.updated_at = utcnow()
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_name == model_name)
    )
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
    )
    session.add(version)
    bump_generation(session)
    session.flush()
    return version


def bump_generation(session: Session) -> None:
    """Record a registry change (version added, alias set or removed) in ``session``.

    Serving processes compare the generation with the one their cached lookups
    were made at (:class:`mlserve.serving.resolver.Resolver`).
    """
    state = session.get(RegistryState, 1, with_for_update=True)
    if state is None:
        session.add(RegistryState(id=1, generation=1, updated_at=utcnow()))
        return
    state.generation += 1
    state.updated_at = utcnow()


def generation(ctx: Context) -> int:
    """Current registry generation (0 before the first change)."""
    with ctx.db.session() as session:
        value = session.scalar(select(RegistryState.generation).where(RegistryState.id == 1))
    return int(value or 0)


def find_model(ctx: Context, name: str) -> RegisteredModel | None:
    """Return the registered model ``name`` or ``None``."""
    with ctx.db.session() as session:
        return session.get(RegisteredModel, name)


def get_model(ctx: Context, name: str) -> RegisteredModel:
    """Return the registered model ``name``.

    Raises
    ------
    NotFound
    """
    model = find_model(ctx, name)
    if model is None:
        raise NotFound.of("model", name)
    return model


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


def _version_query(name: str, version: int) -> Select[ModelVersion]:
    return select(ModelVersion).where(
        ModelVersion.model_name == name, ModelVersion.version == version
    )


def find_version(ctx: Context, name: str, version: int) -> ModelVersion | None:
    """Return version ``version`` of ``name`` or ``None``."""
    if not 1 <= version <= MAX_VERSION:  # beyond the column's range: cannot exist
        return None
    with ctx.db.session() as session:
        return session.scalar(_version_query(name, version))


def get_version(ctx: Context, name: str, version: int) -> ModelVersion:
    """Return version ``version`` of ``name``.

    Raises
    ------
    NotFound
        If the model or the version does not exist.
    """
    found = find_version(ctx, name, version)
    if found is None:
        get_model(ctx, name)
        raise NotFound(
            f"model {name!r} has no version {version}",
            {"resource": "model_version", "model": name, "version": version},
        )
    return found


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


def set_alias(ctx: Context, name: str, alias: str, version: int) -> ModelAlias:
    """Point ``alias`` of ``name`` at ``version`` (creating or moving it).

    Raises
    ------
    ValidationFailed
        If the alias is not 1-64 lowercase letters, digits, ``_`` or ``-``
        starting with a letter, or is ``latest`` (reserved).
    NotFound
        If the model or the version does not exist.
    """
    if not ALIAS_PATTERN.fullmatch(alias) or alias == "latest":
        raise ValidationFailed(
            "alias must be 1-64 characters of a-z, 0-9, '_' or '-', start with a letter, "
            "and not be 'latest'",
            {"field": "alias", "value": alias},
        )
    get_version(ctx, name, version)
    try:
        with ctx.db.session() as session:
            row = session.get(ModelAlias, (name, alias))
            if row is None:
                row = ModelAlias(model_name=name, alias=alias, version=version)
                session.add(row)
            row.version = version
            row.updated_at = utcnow()
            bump_generation(session)
    except IntegrityError:  # created concurrently: move it instead
        return set_alias(ctx, name, alias, version)
    ctx.resolver.invalidate()
    return row


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
            raise _no_alias(name, alias)
        session.delete(row)
        bump_generation(session)
    ctx.resolver.invalidate()


def resolve(
    ctx: Context, name: str, alias: str | None = None, version: int | None = None
) -> ModelVersion:
    """Find the version a request means.

    ``version`` wins; else ``alias``; else alias ``production`` if set, else the
    latest version. One database session in the common case (this runs on
    every prediction).

    Raises
    ------
    ValidationFailed
        If both ``alias`` and ``version`` are given.
    NotFound
        If the model, alias or version does not exist.
    """
    if alias is not None and version is not None:
        raise ValidationFailed("give alias or version, not both", {"field": "alias"})
    if version is not None:
        return get_version(ctx, name, version)
    with ctx.db.session() as session:
        pointer = session.get(ModelAlias, (name, alias or DEFAULT_ALIAS))
        if pointer is not None:
            found = session.scalar(_version_query(name, pointer.version))
        elif alias is None or alias == "latest":
            found = session.scalar(
                select(ModelVersion)
                .where(ModelVersion.model_name == name)
                .order_by(ModelVersion.version.desc())
                .limit(1)
            )
        else:
            found = None
    if found is not None:
        return found
    if pointer is None and alias is not None and alias != "latest":
        get_model(ctx, name)
        raise _no_alias(name, alias)
    raise NotFound.of("model", name)


def _no_alias(name: str, alias: str) -> NotFound:
    return NotFound(
        f"model {name!r} has no alias {alias!r}",
        {"resource": "alias", "model": name, "alias": alias},
    )
