"""An online update names its worker while it runs; a worker that dies in the middle of
one (kill -9) leaves an error in the model's online state (issue 13, item 7)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from mlserve.context import Context
from mlserve.jobs.heartbeat import beat, recover_stale_jobs
from mlserve.online import update as online_update
from mlserve.store.orm import OnlineState, OnlineUpdateRun, utcnow
from tests.online.conftest import post_samples, samples_of


def _runs(ctx: Context) -> list[tuple[str, str]]:
    with ctx.db.session() as session:
        return [(r.model_name, r.worker_id) for r in session.scalars(select(OnlineUpdateRun))]


def test_a_running_update_is_listed_with_its_worker_and_removed_when_it_ends(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    learn = online_update.partial_fit

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(client.get("/api/v1/models/stream/online").get_json()["updates_running"])
        return learn(*args, **kwargs)

    monkeypatch.setattr(online_update, "partial_fit", watched)
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))  # queues and runs it
    assert [[run["worker_id"] for run in runs] for runs in seen] == [[ctx.queue.worker_id]]
    state = client.get("/api/v1/models/stream/online").get_json()
    assert (state["head_version"], state["updates_running"], state["last_error"]) == (2, [], None)
    assert _runs(ctx) == []


def test_a_failing_update_ends_its_run_too(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("estimator exploded")

    monkeypatch.setattr(online_update, "partial_fit", broken)
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))
    assert _runs(ctx) == []
    assert client.get("/api/v1/models/stream/online").get_json()["last_error"] == (
        "ValueError: estimator exploded"
    )


@pytest.mark.parametrize(("beats", "recorded"), [(False, True), (True, False)])
def test_the_recovery_sweep_records_an_update_whose_worker_stopped(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], beats: bool, recorded: bool
) -> None:
    """What a kill -9 in the middle of an update leaves (the run row, no commit), and what
    the next worker's sweep does with it: an error naming the worker if its heartbeat is
    gone, nothing while it still beats."""
    worker = "host:4242:deadbeef"
    if beats:
        beat(ctx, worker)
    with ctx.db.session() as session:
        session.add(OnlineState(model_name="stream", version=1, cursor=0))
        session.add(OnlineUpdateRun(model_name="stream", worker_id=worker, started_at=utcnow()))
    assert recover_stale_jobs(ctx) == []  # no training job concerned
    state = client.get("/api/v1/models/stream/online").get_json()
    if recorded:
        assert _runs(ctx) == []
        assert state["updates_running"] == []
        assert "stopped before it finished (worker host:4242:deadbeef)" in state["last_error"]
        assert (state["head_version"], state["cursor"]) == (1, 0)
    else:
        assert _runs(ctx) == [("stream", worker)]
        assert [run["worker_id"] for run in state["updates_running"]] == [worker]
        assert state["last_error"] is None
