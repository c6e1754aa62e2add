"""Registry reads that need only the database: the lookups of the request path.

:class:`mlserve.serving.resolver.Resolver` calls these with the process's database;
:mod:`mlserve.registry.service` exposes them to services with a context. The
registry generation, bumped by every change in the same transaction
(:func:`bump_generation`), tells serving processes when their cached lookups are stale.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mlserve.errors import NotFound, ValidationFailed
from mlserve.store.database import Database
from mlserve.store.orm import ModelAlias, ModelVersion, RegisteredModel, RegistryState, utcnow

DEFAULT_ALIAS = "production"
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer


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


def generation(db: Database) -> int:
    """Current registry generation (0 before the first change)."""
    with db.session() as session:
        value = session.scalar(select(RegistryState.generation).where(RegistryState.id == 1))
    return int(value or 0)


def find_model(db: Database, name: str) -> RegisteredModel | None:
    """Return the registered model ``name`` or ``None``."""
    with db.session() as session:
        return session.get(RegisteredModel, name)


def get_model(db: Database, name: str) -> RegisteredModel:
    """Return the registered model ``name``.

    Raises
    ------
    NotFound
    """
    model = find_model(db, name)
    if model is None:
        raise NotFound.of("model", name)
    return model


def _version_query(name: str, version: int) -> Select[ModelVersion]:
    return select(ModelVersion).where(
        ModelVersion.model_name == name, ModelVersion.version == version
    )


def find_version(db: Database, name: str, version: int) -> ModelVersion | None:
    """Return version ``version`` of ``name`` or ``None``."""
    if not 1 <= version <= MAX_VERSION:  # beyond the column's range: cannot exist
        return None
    with db.session() as session:
        return session.scalar(_version_query(name, version))


def get_version(db: Database, name: str, version: int) -> ModelVersion:
    """Return version ``version`` of ``name``.

    Raises
    ------
    NotFound
        If the model or the version does not exist.
    """
    found = find_version(db, name, version)
    if found is None:
        get_model(db, name)
        raise NotFound(
            f"model {name!r} has no version {version}",
            {"resource": "model_version", "model": name, "version": version},
        )
    return found


def resolve(
    db: Database, name: str, alias: str | None = None, version: int | None = None
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
        return get_version(db, name, version)
    with db.session() as session:
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
        get_model(db, name)
        raise no_alias(name, alias)
    raise NotFound.of("model", name)


def no_alias(name: str, alias: str) -> NotFound:
    return NotFound(
        f"model {name!r} has no alias {alias!r}",
        {"resource": "alias", "model": name, "alias": alias},
    )
