"""``update_where``: one conditional UPDATE, the rows it updated."""

from __future__ import annotations

import pytest

from mlserve.context import Context
from mlserve.store.database import update_where
from mlserve.store.orm import WorkerHeartbeat, utcnow


@pytest.mark.parametrize(
    ("worker_ids", "expected"),
    [(["a"], 1), (["a", "b", "c"], 3), (["nobody"], 0)],
    ids=["one", "several", "none"],
)
def test_update_where_updates_the_matching_rows_and_counts_them(
    ctx: Context, worker_ids: list[str], expected: int
) -> None:
    now = utcnow()
    with ctx.db.session() as session:
        session.add_all(
            WorkerHeartbeat(worker_id=w, hostname="h", pid=1, last_seen_at=now) for w in "abc"
        )
    with ctx.db.session() as session:
        updated = update_where(
            session,
            WorkerHeartbeat,
            WorkerHeartbeat.worker_id.in_(worker_ids),
            WorkerHeartbeat.last_seen_at == now,  # the condition, checked as it writes
            worker_id=WorkerHeartbeat.worker_id + "-seen",
        )
    assert updated == expected
    with ctx.db.session() as session:
        ids = sorted(row.worker_id for row in session.query(WorkerHeartbeat))
    assert ids == sorted(w + "-seen" if w in worker_ids else w for w in "abc")
