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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.online.guard import reason
from mlserve.registry import lookup
from mlserve.registry import service as registry
from mlserve.store.artifacts import StoredArtifact
from mlserve.store.database import update_where
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
    guard_passed = bool(lineage["guard"]["passed"])
    with ctx.db.session() as session:
        session.get(RegisteredModel, name, with_for_update=True)  # one update at a time
        _claim_state(session, name, expected)
        state = session.get(OnlineState, name)
        assert state is not None  # claimed above
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
        state.version, state.cursor = version.version, int(lineage["last_sample_id"])
        state.updated_at, state.last_error = utcnow(), None
        kept = int(lineage["guard"]["production_version"])
        _point_production(session, name, version.version if guard_passed else kept)
        session.flush()
    ctx.resolver.invalidate(name)
    log.info("online update of %s: version %s (%s)", name, version.version, lineage["reason"])
    return version


def _claim_state(session: Session, name: str, expected: tuple[int, int, bool]) -> None:
    """The compare-and-set of the online state, as the transaction's first write.

    The state row still at ``expected`` (version, cursor) is touched by one conditional
    ``UPDATE``, or, when the update started with no state, the row is inserted (a
    concurrent insert fails on the primary key). Either way this transaction then holds
    the row until it commits, on SQLite too, where ``SELECT ... FOR UPDATE`` locks
    nothing: of two updates from the same state, the second finds it moved.

    Raises
    ------
    LostRace
        The state is no longer ``expected``.
    """
    version_number, cursor, stored = expected
    if stored:
        claimed = update_where(
            session,
            OnlineState,
            OnlineState.model_name == name,
            OnlineState.version == version_number,
            OnlineState.cursor == cursor,
            updated_at=utcnow(),
        )
        won = claimed == 1
    else:
        session.add(OnlineState(model_name=name, version=version_number, cursor=cursor))
        try:
            session.flush()
            won = True
        except IntegrityError:
            won = False
    if not won:
        raise LostRace("another online update committed first", {"model": name})


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
