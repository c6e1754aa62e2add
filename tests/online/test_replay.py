"""Updates that remember (mlserve.online.replay), the three-set guard and prequential error,
on a small stream over REST: what each update stores, and that it is a pure function of
the seed, the root's training split and the ids the lineage consumed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.online import replay
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.training.reservoir import (
    HOLDOUT_STREAM,
    OLDER_STREAM,
    REPLAY_STREAM,
    Reservoir,
    uniform,
)
from mlserve.training.signature import model_frame
from tests.online.conftest import post_samples, samples_of


@pytest.fixture
def streamed(client: FlaskClient, ctx: Context, sgd: dict[str, Any]) -> list[dict[str, Any]]:
    """140 other diabetes rows posted in three batches: three updates (40 + 40 + 40
    consumed, 20 waiting) with a replay reservoir of 100 rows and 25 % held out."""
    ctx.settings.online_replay_reservoir_rows = 100  # read at update time for old roots only
    ctx.settings.online_holdout_fraction = 0.25
    rest = sgd["rest"]
    for start, end in ((0, 60), (60, 100), (100, 140)):
        assert post_samples(client, "stream", samples_of(rest.iloc[start:end])).status_code == 201
    versions = client.get("/api/v1/models/stream/versions").get_json()["versions"]
    return sorted((v for v in versions if v["online"]), key=lambda v: v["version"])


def test_the_memory_is_algorithm_r_over_training_rows_then_learned_samples(
    ctx: Context, streamed: list[dict[str, Any]]
) -> None:
    assert [v["online"]["n_samples"] for v in streamed] == [40, 40, 40]
    root = registry.get_version(ctx, "stream", 1)
    stored = replay.read_memory(ctx, root)
    assert stored is not None and stored["rows"]["n_train"] == 240
    assert stored["replay"]["size"] == 4_000  # the setting when version 1 was trained
    ids = np.arange(1, 121)
    out = uniform(0, HOLDOUT_STREAM, ids) < 0.25
    assert [v["online"]["n_held_out"] for v in streamed] == [
        int(out[k : k + 40].sum()) for k in (0, 40, 80)
    ]
    # The head's reservoirs, recomputed in one go from the seed and the ids.
    expected = Reservoir(size=4_000, seed=0, stream=REPLAY_STREAM)
    expected.offer([*range(-1, -241, -1), *ids[~out].tolist()])
    older = Reservoir(size=stored["older"]["size"], seed=0, stream=OLDER_STREAM)
    older.offer(ids[out].tolist())
    head = registry.get_version(ctx, "stream", streamed[-1]["version"])
    assert replay.read_memory(ctx, head) == {
        "seed": 0,
        "replay": expected.state(),
        "older": older.state(),
    }
    # Each update replayed its parent's whole reservoir: training split + learned so far.
    learned = [40 - v["online"]["n_held_out"] for v in streamed]
    assert [v["online"]["n_replayed"] for v in streamed] == [
        240,
        240 + learned[0],
        240 + sum(learned[:2]),
    ]


def test_the_guard_judges_the_window_the_older_samples_and_the_test_split(
    ctx: Context, streamed: list[dict[str, Any]]
) -> None:
    last = streamed[-1]["online"]
    sets = {s["name"]: s for s in last["guard"]["sets"]}
    assert list(sets) == ["guard window", "older samples", "test split"]
    assert sets["test split"]["n_samples"] == 60 and sets["test split"]["judged"]
    assert sets["older samples"]["n_samples"] == sum(v["online"]["n_held_out"] for v in streamed)
    # The test split is version 1's, all 60 rows kept: its RMSE there is the one recorded
    # at training, shown beside the candidate's and production's.
    recorded = registry.get_version(ctx, "stream", 1).metrics["rmse"]
    assert sets["test split"]["root"] == pytest.approx(recorded, rel=1e-12)
    assert all(s["root"] is not None for s in sets.values() if s["judged"])
    assert last["guard"]["candidate"] == sets["guard window"]["candidate"]
    assert last["status"] == ("production" if last["guard"]["passed"] else "candidate")


def test_every_consumed_sample_is_scored_by_the_live_version_before_it_is_learned(
    client: FlaskClient, ctx: Context, streamed: list[dict[str, Any]], sgd: dict[str, Any]
) -> None:
    rest = sgd["rest"]
    first = streamed[0]["online"]["prequential"]
    root = registry.get_version(ctx, "stream", 1)
    v1 = load_pipeline(ctx.store.get_bytes(root.artifact_key, root.artifact_sha256))
    errors = v1.predict(model_frame(rest.iloc[:40], root.signature)) - rest["target"][:40]
    assert first["by_version"] == [
        {"version": 1, "n_samples": 40, "total": pytest.approx(float(np.sum(errors**2))),
         "value": pytest.approx(float(np.sqrt(np.mean(errors**2))))}
    ]  # fmt: skip
    state = client.get("/api/v1/models/stream/online").get_json()
    summary = state["prequential"]
    assert (summary["metric"], summary["n_samples"]) == ("rmse", 120)
    updates = summary["by_update"]
    assert [u["version"] for u in updates] == [v["version"] for v in streamed]
    assert [u["first_sample_id"] for u in updates] == [1, 41, 81]
    totals = [v["online"]["prequential"]["total"] for v in streamed]
    assert updates[-1]["cumulative"] == pytest.approx(np.sqrt(sum(totals) / 120))
    assert summary["value"] == updates[-1]["cumulative"]
    # Scored by the version live when each batch arrived (production then).
    live = {v["version"]: v["n_samples"] for v in summary["by_version"]}
    assert sum(live.values()) == 120 and set(live) <= {1, *[v["version"] for v in streamed]}
