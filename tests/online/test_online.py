"""Online learning over REST: samples, updates (exactly once, guarded), retrain, faults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.online import policy as online
from mlserve.online import replay, samples
from mlserve.online import update as online_update
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.store.orm import ModelVersion, OnlineState, Sample, utcnow
from mlserve.training.catalogue import CATALOGUE
from mlserve.training.fit import TrainResult
from mlserve.training.signature import model_frame
from tests import pg
from tests.conftest import frame_csv, just_before_an_update, train, upload
from tests.online.conftest import post_samples, samples_of


def test_samples_are_stored_in_order_and_trigger_an_update(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    rest = sgd["rest"]
    first = post_samples(client, "stream", samples_of(rest.iloc[:30]))
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["received"], body["pending"], body["update_queued"]) == (30, 30, False)
    assert body["last_sample_id"] - body["first_sample_id"] == 29
    assert client.get("/api/v1/models/stream/online").get_json()["prequential"] is None
    second = post_samples(client, "stream", samples_of(rest.iloc[30:60])).get_json()
    assert second["update_queued"] is True  # 60 waiting = 20 held out + 40
    state = client.get("/api/v1/models/stream/online").get_json()
    assert state["head_version"] == 2 and state["pending"] == 20 and state["samples"] == 60
    version = client.get("/api/v1/models/stream/versions/2").get_json()
    lineage = version["online"]
    assert lineage["parent_version"] == 1 and lineage["n_samples"] == 40
    assert lineage["first_sample_id"] == body["first_sample_id"]
    assert lineage["last_sample_id"] == state["cursor"]
    assert lineage["guard"]["window"]["n_samples"] == 20
    assert version["job_id"] is None and version["metrics"]["n_samples"] == 20
    with ctx.db.session() as session:
        live = session.scalars(select(Sample.live_version)).all()
    assert set(live) == {1}


@pytest.mark.parametrize(
    ("change", "field", "row"),
    [
        (lambda b: b["instances"][1].pop("bmi"), "bmi", 1),
        (lambda b: b["instances"][2].update(age="old"), "age", 2),
        (lambda b: b["targets"].__setitem__(3, "high"), "targets", 3),
        (lambda b: b["targets"].__setitem__(0, True), "targets", 0),
        (lambda b: b["targets"].pop(), "targets", None),
        (lambda b: b.pop("targets"), "instances", None),
        (lambda b: b.update(extra=1), "instances", None),
    ],
)
def test_invalid_samples_are_422_naming_the_field_and_store_nothing(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], change: Any, field: str, row: Any
) -> None:
    body = samples_of(sgd["rest"].iloc[:5])
    change(body)
    response = post_samples(client, "stream", body)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["error"]["details"]
    assert details["field"] == field
    if row is not None:
        assert details["row"] == row
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 0


def test_classification_targets_must_be_known_classes(
    client: FlaskClient, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    body = samples_of(iris_frame.iloc[:3])
    body["targets"][1] = "rose"
    details = post_samples(client, "iris", body).get_json()["error"]["details"]
    assert details["field"] == "targets" and details["row"] == 1
    assert "setosa" in details["classes"]


def test_non_incremental_model_stores_samples_409s_updates_and_retrains(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    stored = post_samples(client, "diabetes", samples_of(diabetes_frame.iloc[:50]))
    assert stored.status_code == 201 and stored.get_json()["update_queued"] is False
    # Only incremental algorithms keep rows for online updates.
    assert replay.read_memory(ctx, registry.get_version(ctx, "diabetes", 1)) is None
    assert not [key for key in _artifact_keys(ctx) if key.endswith("-rows.parquet")]
    refused = client.post("/api/v1/models/diabetes/online-update")
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert "retrain" in error["message"]
    assert error["details"]["hint"] == "POST /api/v1/models/diabetes/retrain"
    job = client.post("/api/v1/models/diabetes/retrain").get_json()
    assert job["status"] == "succeeded", job
    assert job["spec"]["include_samples"] is True and job["model_version"] == 2
    version = client.get("/api/v1/models/diabetes/versions/2").get_json()
    before = client.get("/api/v1/models/diabetes/versions/1").get_json()
    assert version["metrics"]["n_samples"] == 99 > before["metrics"]["n_samples"] == 89  # 20 %
    with ctx.db.session() as session:
        state = session.get(OnlineState, "diabetes")
        last = session.scalar(select(func.max(Sample.id)))
    assert state is not None and (state.version, state.cursor) == (2, last)


def test_unknown_model_is_404(client: FlaskClient) -> None:
    response = post_samples(client, "nope", {"instances": [{"a": 1}], "targets": [1]})
    assert response.status_code == 404


def _pending(ctx: Context, name: str) -> int:
    return online.pending_count(ctx, name)


def test_crash_before_commit_moves_nothing_and_the_retry_applies_once(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.online_update_every_samples = 10_000  # updates only on request here
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))
    keys_before = set(_artifact_keys(ctx))
    real_commit = online_update.commit_update
    crashed: list[dict[str, Any]] = []

    def crash(*args: Any, **kwargs: Any) -> ModelVersion:
        crashed.append(kwargs)
        raise RuntimeError("power cut between the artifact and the commit")

    monkeypatch.setattr(online_update, "commit_update", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        online_update.run_update(ctx, "stream")
    assert online.head(ctx, "stream") == (1, 0, False)
    assert [v.version for v in registry.list_versions(ctx, "stream")] == [1]
    assert set(_artifact_keys(ctx)) == keys_before  # its artifacts were removed
    assert _pending(ctx, "stream") == 60

    monkeypatch.setattr(online_update, "commit_update", real_commit)
    version = online_update.run_update(ctx, "stream")
    assert version is not None and version.version == 2
    assert online_update.run_update(ctx, "stream") is None  # 20 held out: nothing more
    assert online.head(ctx, "stream")[:2] == (2, version.online["last_sample_id"])
    # Deterministic: the retry made the model, lineage and memory the crashed attempt made.
    first = crashed[0]
    got = load_pipeline(ctx.store.get_bytes(version.artifact_key, version.artifact_sha256))
    X = model_frame(sgd["rest"], version.signature)
    np.testing.assert_array_equal(got.predict(X), first["result"].pipeline.predict(X))
    assert replay.read_memory(ctx, version) == first["memory"]
    assert {key: version.online[key] for key in first["lineage"]} == first["lineage"]
    assert version.online["n_replayed"] == 240  # the whole training split: 300 rows * 0.8


def _artifact_keys(ctx: Context) -> list[str]:
    root = ctx.store.root / "models"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_second_update_from_the_same_state_loses_and_leaves_nothing(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    ctx.settings.online_update_every_samples = 10_000
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))
    stale = online.head(ctx, "stream")
    first = online_update.run_update(ctx, "stream")
    assert first is not None
    parent = registry.get_version(ctx, "stream", 1)
    artifact = ctx.store.put_bytes("models/racer.skops", b"x")
    result = TrainResult(
        pipeline=None,  # type: ignore[arg-type]
        task="regression",
        params={},
        metrics={},  # type: ignore[typeddict-item]
        cv_metrics={"folds": 0},
        signature=parent.signature,
        training_seconds=0.0,
        n_train=0,
        n_test=0,
    )
    with pytest.raises(online_update.LostRace, match="committed first"):
        online_update.commit_update(
            ctx,
            "stream",
            expected=stale,
            parent=parent,
            result=result,
            artifacts=[artifact],
            serving={},  # type: ignore[typeddict-item]
            lineage=dict(first.online),  # type: ignore[arg-type]
        )
    assert [v.version for v in registry.list_versions(ctx, "stream")] == [2, 1]
    assert online.head(ctx, "stream")[:2] == (2, first.online["last_sample_id"])


@pytest.mark.skipif(
    pg.BACKEND == "postgresql",
    reason="PostgreSQL serialises the two commits on the model row's lock (SELECT ... FOR "
    "UPDATE): the other commit, run inside this one, would wait on it",
)
def test_an_update_committing_from_the_same_state_at_the_same_moment_loses(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    """Another update from the same state commits just before this one's first write."""
    ctx.settings.online_update_every_samples = 10_000
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))
    assert online_update.run_update(ctx, "stream") is not None  # version 2: a stored state
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[60:120]))
    with (
        just_before_an_update(
            ctx, "online_state", lambda: online_update.run_update(ctx, "stream")
        ) as other,
        pytest.raises(online_update.LostRace, match="committed first"),
    ):
        online_update.run_update(ctx, "stream")
    winner = other[0]
    assert winner is not None and winner.version == 3
    assert [v.version for v in registry.list_versions(ctx, "stream")] == [3, 2, 1]
    assert online.head(ctx, "stream")[:2] == (3, winner.online["last_sample_id"])


def test_online_version_plots_its_guard_window(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    """The evaluation of an online version: the new pipeline on the held-out guard
    window, which it did not learn from, recorded as such."""
    rest = sgd["rest"]
    post_samples(client, "stream", samples_of(rest.iloc[:60]))
    version = client.get("/api/v1/models/stream/versions/2").get_json()
    window = version["online"]["guard"]["window"]
    assert (window["n_samples"], version["has_evaluation"]) == (20, True)
    plots = client.get("/api/v1/models/stream/versions/2/evaluation").get_json()
    assert (plots["rows"], plots["n_test"], plots["cv"]) == ("guard window", 20, {"folds": 0})
    held = rest.iloc[40:60]  # the newest 20 samples: ids window["first_sample_id"]...
    row = registry.get_version(ctx, "stream", 2)
    pipeline = load_pipeline(ctx.store.get_bytes(row.artifact_key, row.artifact_sha256))
    X = model_frame(held.drop(columns="target"), row.signature)
    points = plots["predicted_vs_actual"]
    assert points["actual"] == held["target"].astype(float).tolist()
    assert points["predicted"] == pytest.approx(pipeline.predict(X).tolist(), rel=1e-12)
    assert sum(plots["residuals"]["counts"]) == 20
    assert sorted(p["feature"] for p in plots["permutation_importance"]) == sorted(X.columns)
    # The guard's metric for the new version is the same pipeline on the same rows.
    rmse = float(np.sqrt(np.mean((np.asarray(points["actual"]) - points["predicted"]) ** 2)))
    assert version["online"]["guard"]["candidate"] == pytest.approx(rmse, rel=1e-9)
    assert version["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-9)
    trained = client.get("/api/v1/models/stream/versions/1/evaluation").get_json()
    assert trained["rows"] == "test split"


def test_online_version_measures_drift_against_its_root_reference(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))
    listed = client.get("/api/v1/models/stream").get_json()["versions"]
    assert [(v["version"], v["has_reference"]) for v in listed] == [(2, True), (1, True)]
    assert client.get("/api/v1/models/stream/versions/2/drift").status_code == 200
    with ctx.db.session() as session:  # a root registered before references existed
        session.execute(update(ModelVersion).values(reference=None))
    assert client.get("/api/v1/models/stream/versions/2").get_json()["has_reference"] is False
    listed = client.get("/api/v1/models/stream").get_json()["versions"]
    assert [v["has_reference"] for v in listed] == [False, False]
    assert client.get("/api/v1/models/stream/versions/2/drift").status_code == 409


def test_guard_keeps_a_worse_version_as_candidate_with_its_reason(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    ctx.settings.online_guard_tolerance = 0.0
    rest = sgd["rest"]
    poisoned = samples_of(rest.iloc[:40])
    poisoned["targets"] = [t * -50.0 for t in poisoned["targets"]]
    post_samples(client, "stream", poisoned)
    post_samples(client, "stream", samples_of(rest.iloc[40:60]))  # the guard window: clean
    version = client.get("/api/v1/models/stream/versions/2").get_json()
    guard = version["online"]["guard"]
    assert guard["passed"] is False and guard["candidate"] > guard["production"]
    assert version["online"]["status"] == "candidate"
    assert "worse than production (version 1" in version["online"]["reason"]
    model = client.get("/api/v1/models/stream").get_json()
    assert model["aliases"] == {"production": 1}
    predicted = client.post(
        "/api/v1/models/stream/predict", json={"instances": samples_of(rest.iloc[:2])["instances"]}
    ).get_json()
    assert predicted["model_version"] == 1  # the candidate is not served
    # The lineage goes on from the newest version; production stays until a guard passes.
    post_samples(client, "stream", samples_of(rest.iloc[60:100]))
    third = client.get("/api/v1/models/stream/versions/3").get_json()["online"]
    assert third["parent_version"] == 2 and third["guard"]["production_version"] == 1


def test_unseen_categories_are_ignored_and_counted(
    client: FlaskClient, ctx: Context, diabetes_frame: pd.DataFrame
) -> None:
    frame = diabetes_frame.copy()
    frame["clinic"] = np.where(frame.index % 2 == 0, "north", "south")
    dataset = upload(client, frame_csv(frame.iloc[:300]), "c.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="target",
        algorithm="sgd_regressor",
        model_name="clinics",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job
    body = samples_of(frame.iloc[300:360])
    for row in body["instances"][:7]:
        row["clinic"] = "east"
    assert post_samples(client, "clinics", body).status_code == 201
    lineage = client.get("/api/v1/models/clinics/versions/2").get_json()["online"]
    assert lineage["unseen_categories"] == {"clinic": 7}


def test_not_incremental_update_is_refused_by_the_job(
    ctx: Context, diabetes_model: dict[str, Any]
) -> None:
    with pytest.raises(Conflict, match="cannot learn incrementally"):
        online_update.run_update(ctx, "diabetes")


@pytest.mark.parametrize(
    ("value", "classes", "ok"),
    [
        (True, [False, True], True),
        (1, [False, True], False),
        (True, [0, 1], False),
        (1, [0, 1], True),
        ("a", ["a", "b"], True),
        (["a"], ["a", "b"], False),
    ],
)
def test_class_labels_match_by_value_and_kind(value: Any, classes: list[Any], ok: bool) -> None:
    assert samples.is_class(value, classes) is ok


def test_a_failing_update_shows_its_error_in_the_state(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("estimator exploded")

    monkeypatch.setattr(online_update, "partial_fit", broken)
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[:60]))  # queues and runs it
    state = client.get("/api/v1/models/stream/online").get_json()
    assert state["last_error"] == "ValueError: estimator exploded"
    assert (state["head_version"], state["cursor"], state["pending"]) == (1, 0, 60)
    monkeypatch.undo()
    assert client.post("/api/v1/models/stream/online-update").status_code == 202
    state = client.get("/api/v1/models/stream/online").get_json()
    assert (state["head_version"], state["pending"], state["last_error"]) == (2, 20, None)


INCREMENTAL = sorted((task, name) for (task, name), a in CATALOGUE.items() if a.incremental)


def test_the_incremental_entries_are_the_issue_list() -> None:
    assert INCREMENTAL == [
        ("classification", "mlp"),
        ("classification", "naive_bayes"),
        ("classification", "passive_aggressive_classifier"),
        ("classification", "perceptron"),
        ("classification", "sgd_classifier"),
        ("classification", "torch_mlp"),
        ("regression", "mlp"),
        ("regression", "passive_aggressive_regressor"),
        ("regression", "sgd_regressor"),
        ("regression", "torch_mlp"),
    ]


@pytest.mark.parametrize(("task", "algorithm"), INCREMENTAL)
def test_every_incremental_algorithm_learns_from_samples(
    client: FlaskClient,
    ctx: Context,
    diabetes_frame: pd.DataFrame,
    iris_frame: pd.DataFrame,
    task: str,
    algorithm: str,
) -> None:
    frame = diabetes_frame if task == "regression" else iris_frame
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    dataset = upload(client, frame_csv(frame.iloc[:80]), "f.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm=algorithm, model_name="m", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    rest = frame.iloc[80:140]

    def answer(version: int) -> Any:
        body = client.post(
            f"/api/v1/models/m/predict?version={version}",
            json={"instances": samples_of(rest)["instances"]},
        ).get_json()
        return body.get("probabilities", body["predictions"])

    before = answer(1)
    stored = post_samples(client, "m", samples_of(rest)).get_json()
    assert stored["update_queued"] is True, stored
    version = client.get("/api/v1/models/m/versions/2").get_json()
    assert version["online"]["n_samples"] == 40, version
    assert version["runtime"] in ("onnx", "sklearn")
    assert answer(2) != before  # the estimator moved
    assert version["params"] == client.get("/api/v1/models/m/versions/1").get_json()["params"]
    # Plot data on the guard window (the last 20 samples), as the page shows it.
    assert (version["has_evaluation"], version["has_reference"]) == (True, True)
    plots = client.get("/api/v1/models/m/versions/2/evaluation").get_json()
    assert (plots["rows"], plots["n_test"], plots["task"]) == ("guard window", 20, task)
    shown = "predicted_vs_actual" if task == "regression" else "confusion_matrix"
    assert shown in plots and len(plots["permutation_importance"]) == frame.shape[1] - 1


def test_the_timer_queues_an_update_for_old_waiting_samples(
    client: FlaskClient, ctx: Context, sgd: dict[str, Any]
) -> None:
    ctx.settings.online_update_every_s = 60.0
    stored = post_samples(client, "stream", samples_of(sgd["rest"].iloc[:30])).get_json()
    assert stored["update_queued"] is False  # 10 beyond the window, fewer than 40, and new
    assert online.schedule_due(ctx) == []
    with ctx.db.session() as session:
        session.execute(update(Sample).values(received_at=utcnow() - timedelta(seconds=61)))
    assert online.schedule_due(ctx) == ["stream"]  # the worker's housekeeping calls this
    state = online.state_view(ctx, "stream")
    assert (state["head_version"], state["pending"]) == (2, 20)
    ctx.settings.online_update_every_s = 0.0  # the timer off: nothing is due on age alone
    post_samples(client, "stream", samples_of(sgd["rest"].iloc[30:45]))
    with ctx.db.session() as session:
        session.execute(update(Sample).values(received_at=utcnow() - timedelta(days=1)))
    assert online.schedule_due(ctx) == []
