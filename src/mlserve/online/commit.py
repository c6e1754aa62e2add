"""The transaction that ends an online update: version, lineage, memory, cursor, alias.

Everything an update computes before it is repeatable (docs/online-learning.md, "Exactly
once"); this transaction makes it count once. It registers the new version with its
lineage and memory (:mod:`mlserve.online.replay`), moves the cursor with a
compare-and-set on the state the update read, and points ``production`` at the new
version when the guard passed.
"""

from __future__ import annotations

import logging
from typing import Any

from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.online.guard import reason
from mlserve.registry import lookup
from mlserve.registry import service as registry
from mlserve.store.artifacts import StoredArtifact
from mlserve.store.documents import Lineage, Memory, ServingReport
from mlserve.store.orm import ModelAlias, ModelVersion, OnlineState, RegisteredModel, utcnow
from mlserve.training.fit import TrainResult

log = logging.getLogger(__name__)


class LostRace(Conflict):
    """Another update committed first from the same state; this one is dropped."""


def commit_update(
    ctx: Context,
    name: str,
    *,
    expected: tuple[int, int, bool],
    parent: ModelVersion,
    result: TrainResult,
    artifacts: list[StoredArtifact],
    serving: ServingReport,
    lineage: Lineage,
    memory: Memory | None = None,
) -> ModelVersion:
    """Register the new version, move the cursor and maybe ``production``: one transaction.

    ``artifacts``: the pipeline's, then its ONNX model's if it compiled; ``memory``: the
    reservoirs after the update, stored with the version.

    Raises
    ------
    LostRace
        The state is no longer ``expected`` (another update committed first).
    """
    version_number, cursor, stored = expected
    guard_passed = bool(lineage["guard"]["passed"])
    with ctx.db.session() as session:
        session.get(RegisteredModel, name, with_for_update=True)  # one update at a time
        state = session.get(OnlineState, name, with_for_update=True)
        if (state is not None) != stored or (
            state is not None and (state.version, state.cursor) != (version_number, cursor)
        ):
            raise LostRace("another online update committed first", {"model": name})
        version = registry.add_version(
            session,
            name,
            result=result,
            algorithm=parent.algorithm,
            artifact=artifacts[0],
            dataset_id=parent.dataset_id,
            job_id=None,
            serving=serving,
            onnx_artifact=artifacts[1] if len(artifacts) > 1 else None,
            memory=memory,
        )
        lineage["status"] = "production" if guard_passed else "candidate"
        lineage["reason"] = reason(lineage["guard"])
        version.online = lineage
        if state is None:
            state = OnlineState(model_name=name, version=version.version, cursor=0)
            session.add(state)
        state.version, state.cursor = version.version, int(lineage["last_sample_id"])
        state.updated_at, state.last_error = utcnow(), None
        kept = int(lineage["guard"]["production_version"])
        _point_production(session, name, version.version if guard_passed else kept)
        session.flush()
    ctx.resolver.invalidate(name)
    log.info("online update of %s: version %s (%s)", name, version.version, lineage["reason"])
    return version


def _point_production(session: Any, name: str, version: int) -> None:
    """Move ``production`` to ``version``; create it if unset (so "latest" never serves
    an unguarded candidate)."""
    alias = session.get(ModelAlias, (name, lookup.DEFAULT_ALIAS), with_for_update=True)
    if alias is None:
        session.add(ModelAlias(model_name=name, alias=lookup.DEFAULT_ALIAS, version=version))
    elif alias.version != version:
        alias.version, alias.updated_at = version, utcnow()
    else:
        return
    lookup.bump_generation(session)
