"""Traffic policies over HTTP: canary, A/B split, shadow, comparison, promotion, the rule."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.monitoring import comparison
from mlserve.registry import service as registry
from mlserve.settings import Settings
from mlserve.store.orm import AuditEvent, ModelAlias, PredictionLog
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, train, upload

ALIAS = "/api/v1/models/diabetes/aliases/production"
PREDICT = "/api/v1/models/diabetes/predict"
KSERVE = "/v1/models/diabetes:predict"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Every request logged (shadow answers follow logged requests); no watcher thread."""
    return Settings(
        home=tmp_path / "home",
        jobs_immediate=True,
        log_level="WARNING",
        prediction_log_sample_rate=1.0,
        model_refresh_interval_ms=0,
    )


@pytest.fixture(autouse=True)
def _drained(ctx: Context) -> Iterator[None]:
    """Shadow answers and log entries are written before the test's database is emptied."""
    yield
    ctx.shadows.flush()
    ctx.prediction_log.flush()


@pytest.fixture
def diabetes(client: FlaskClient, diabetes_frame: pd.DataFrame) -> dict[str, Any]:
    """``diabetes`` v1 (ridge), v2 (lasso), v3 (ridge on age and bmi only: refuses the
    other features), production on v1."""
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    specs = [
        {"algorithm": "ridge"},
        {"algorithm": "lasso"},
        {"algorithm": "ridge", "features": ["age", "bmi"]},
    ]
    for spec in specs:
        job = train(
            client, dataset["id"], target="target", model_name="diabetes", cv_folds=0, **spec
        ).get_json()
        assert job["status"] == "succeeded", job
    assert client.put(ALIAS, json={"version": 1}).status_code == 200
    return {"dataset": dataset, "frame": diabetes_frame}


def rows(frame: pd.DataFrame, n: int, features: list[str] | None = None) -> list[dict[str, Any]]:
    chosen = frame.drop(columns="target")
    if features is not None:
        chosen = chosen[features]
    return [{k: float(v) for k, v in row.items()} for row in chosen.head(n).to_dict("records")]


def test_canary_answers_its_share_and_model_version_says_who(
    app: Flask, client: FlaskClient, diabetes: dict[str, Any]
) -> None:
    policy = {"version": 1, "canary": {"version": 2, "weight": 0.25}}
    answer = client.put(ALIAS, json=policy)
    assert answer.status_code == 200
    assert answer.get_json()["policy"] == {"split": [{"version": 2, "weight": 0.25}], "shadow": []}
    instances = rows(diabetes["frame"], 1)
    lane = app.wsgi_app
    answered_before = lane.answered  # type: ignore[attr-defined]
    by_key = {}
    for i in range(400):
        body = client.post(PREDICT, json={"instances": instances, "routing_key": f"u{i}"})
        by_key[f"u{i}"] = body.get_json()["model_version"]
    assert sum(v == 2 for v in by_key.values()) / 400 == pytest.approx(0.25, abs=0.06)
    assert set(by_key.values()) == {1, 2}
    assert lane.answered == answered_before + 400  # type: ignore[attr-defined]  # the fast lane
    for key in list(by_key)[:30]:  # sticky: header or field, fast lane or Flask, V1 or KServe
        header = {"X-Routing-Key": key}
        assert (
            client.post(PREDICT, json={"instances": instances}, headers=header).get_json()[
                "model_version"
            ]
            == by_key[key]
        )
    direct = {
        v: client.post(f"{PREDICT}?version={v}", json={"instances": instances}).get_json()
        for v in (1, 2)
    }
    for key in list(by_key)[:10]:
        kserve = client.post(KSERVE, json={"instances": instances}, headers={"X-Routing-Key": key})
        assert kserve.get_json()["predictions"] == direct[by_key[key]]["predictions"]


def test_named_version_ignores_the_policy(client: FlaskClient, diabetes: dict[str, Any]) -> None:
    client.put(ALIAS, json={"version": 1, "canary": {"version": 2, "weight": 1.0}})
    instances = rows(diabetes["frame"], 2)
    assert client.post(PREDICT, json={"instances": instances}).get_json()["model_version"] == 2
    named = client.post(f"{PREDICT}?version=1", json={"instances": instances})
    assert named.get_json()["model_version"] == 1


def test_shadow_is_logged_with_feedback_never_returned(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any]
) -> None:
    assert client.put(ALIAS, json={"version": 1, "shadow": [2]}).status_code == 200
    instances = rows(diabetes["frame"], 3)
    answer = client.post(PREDICT, json={"instances": instances}).get_json()
    assert answer["model_version"] == 1
    assert ctx.shadows.flush() and ctx.prediction_log.flush()
    ours = answer["prediction_id"]
    with ctx.db.session() as session:
        query = select(PredictionLog).where(
            (PredictionLog.id == ours) | (PredictionLog.shadow_of == ours)
        )
        logged = list(session.scalars(query))
    live = [r for r in logged if r.shadow_of is None]
    shadow = [r for r in logged if r.shadow_of is not None]
    assert [r.id for r in live] == [answer["prediction_id"]]
    assert [(r.version, r.shadow_of) for r in shadow] == [(2, answer["prediction_id"])]
    v2 = client.post(f"{PREDICT}?version=2", json={"instances": instances}).get_json()
    assert shadow[0].predictions == pytest.approx(v2["predictions"], rel=1e-12)
    targets = [float(t) for t in diabetes["frame"]["target"].head(3)]
    client.post(
        f"/api/v1/predictions/{answer['prediction_id']}/feedback", json={"targets": targets}
    )
    live_metrics = client.get("/api/v1/models/diabetes/versions/2/live-metrics").get_json()
    assert live_metrics["n_samples"] == 3
    expected = np.sqrt(np.mean((np.array(v2["predictions"]) - np.array(targets)) ** 2))
    assert live_metrics["metrics"]["rmse"] == pytest.approx(expected, rel=1e-9)


def test_failing_shadow_is_counted_and_the_live_answer_stands(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client.put(ALIAS, json={"version": 1, "shadow": [3]})  # v3 refuses the other features
    for _ in range(5):
        answer = client.post(PREDICT, json={"instances": rows(diabetes["frame"], 1)})
        assert answer.status_code == 200 and answer.get_json()["model_version"] == 1
    assert ctx.shadows.flush()
    counters = {(c["version"], c["role"]): c for c in ctx.traffic.snapshot("diabetes")}
    assert counters[(3, "shadow")]["errors"] == 5 == ctx.shadows.failed
    assert counters[(1, "live")]["requests"] == 5 and counters[(1, "live")]["errors"] == 0
    assert "shadow version diabetes/3 failed" in caplog.text
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'mlserve_version_errors_total{model="diabetes",role="shadow",version="3"} 5.0' in metrics


def test_full_shadow_queue_drops_and_counts(tmp_path: Path, diabetes_frame: pd.DataFrame) -> None:
    settings = Settings(
        home=tmp_path / "small", jobs_immediate=True, log_level="WARNING", shadow_queue_size=2
    )
    app = create_app(settings)
    client, ctx = keyed_client(app), context_of(app)
    dataset = upload(client, frame_csv(diabetes_frame)).get_json()
    for algorithm in ("ridge", "lasso"):
        train(client, dataset["id"], target="target", algorithm=algorithm, model_name="diabetes")
    client.put(ALIAS, json={"version": 1, "shadow": [2]})
    release = threading.Event()
    runner = ctx.shadows
    run = runner.run  # type: ignore[attr-defined]
    runner.run = lambda job: (release.wait(10), run(job))  # type: ignore[attr-defined]
    for _ in range(10):
        answer = client.post(PREDICT, json={"instances": rows(diabetes_frame, 1)})
        assert answer.status_code == 200
    release.set()
    assert runner.flush()
    # one job taken by the held thread, two queued, seven dropped
    assert (runner.dropped, runner.answered) == (7, 3)
    counters = {(c["version"], c["role"]): c for c in ctx.traffic.snapshot("diabetes")}
    assert counters[(2, "shadow")]["dropped"] == 7
    context_of(app).db.dispose()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"version": 1, "canary": {"version": 9, "weight": 0.1}}, 404, None),
        ({"version": 1, "shadow": [1]}, 422, "shadow[0]"),
        ({"version": 1, "canary": {"version": 2, "weight": 1.5}}, 422, None),
        ({"version": 1, "split": [{"version": 2, "weight": 0.6}, {"version": 3, "weight": 0.6}]},
         422, "split"),
        ({"version": 1, "canary": {"version": 2, "weight": True}}, 422, None),
    ],
)  # fmt: skip
def test_bad_policy_is_refused_and_nothing_stored(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any], body: Any, status: int, field: Any
) -> None:
    answer = client.put(ALIAS, json=body)
    details = assert_error(answer, status, "not_found" if status == 404 else "validation_error")
    if field:
        assert details["field"] == field
    row = registry.get_alias(ctx, "diabetes", "production")
    assert (row.version, row.policy) == (1, None)


def test_setting_and_promoting_needs_the_trainer_role(
    app: Flask, client: FlaskClient, diabetes: dict[str, Any]
) -> None:
    policy = {"version": 1, "canary": {"version": 2, "weight": 0.5}}
    for role in ("viewer", "predictor"):
        other = keyed_client(app, role)
        assert_error(other.put(ALIAS, json=policy), 403, "forbidden")
        assert_error(other.post(f"{ALIAS}/promote", json={}), 403, "forbidden")
    trainer = keyed_client(app, "trainer")
    assert trainer.put(ALIAS, json=policy).status_code == 200
    assert client.get(ALIAS).get_json()["policy"]["split"][0]["version"] == 2


def test_promote_makes_the_candidate_primary_and_is_audited(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any]
) -> None:
    assert_error(client.post(f"{ALIAS}/promote", json={}), 409, "conflict")
    client.put(ALIAS, json={"version": 1, "split": [
        {"version": 2, "weight": 0.3}, {"version": 3, "weight": 0.3}]})  # fmt: skip
    assert_error(client.post(f"{ALIAS}/promote", json={}), 422, "validation_error")
    assert_error(client.post(f"{ALIAS}/promote", json={"version": 1}), 422, "validation_error")
    answer = client.post(f"{ALIAS}/promote", json={"version": 2})
    assert answer.get_json() == {
        "model_name": "diabetes", "alias": "production", "version": 2, "policy": None
    }  # fmt: skip
    instances = rows(diabetes["frame"], 1)
    assert client.post(PREDICT, json={"instances": instances}).get_json()["model_version"] == 2
    events = client.get("/api/v1/audit").get_json()["events"]
    assert events[0]["route"] == "/api/v1/models/<name>/aliases/<alias>/promote"
    assert (events[0]["object"], events[0]["status"]) == ("diabetes/production", 200)


def test_comparison_counts_latency_agreement_and_live_metrics(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any]
) -> None:
    client.put(ALIAS, json={"version": 1, "canary": {"version": 2, "weight": 0.5}})
    frame = diabetes["frame"]
    answered: dict[int, list[float]] = {1: [], 2: []}
    for i in range(60):
        instances = rows(frame.iloc[i : i + 1], 1)
        body = client.post(PREDICT, json={"instances": instances, "routing_key": str(i)}).get_json()
        answered[body["model_version"]].append(i)
        assert ctx.prediction_log.flush()
        client.post(
            f"/api/v1/predictions/{body['prediction_id']}/feedback",
            json={"target": float(frame["target"].iloc[i])},
        )
    found = client.get(f"{ALIAS}/comparison?window=1000").get_json()
    assert [v["version"] for v in found["versions"]] == [1, 2]
    primary, candidate = found["versions"]
    assert (primary["role"], primary["weight"]) == ("primary", 0.5)
    assert (candidate["role"], candidate["weight"]) == ("candidate", 0.5)
    assert primary["requests"] == len(answered[1]) and candidate["requests"] == len(answered[2])
    assert (
        candidate["errors"] == 0 and 0 < candidate["latency_p50_ms"] <= candidate["latency_p99_ms"]
    )
    X = [rows(frame.iloc[i : i + 1], 1)[0] for i in answered[2]]
    ours = client.post(f"{PREDICT}?version=1", json={"instances": X}).get_json()["predictions"]
    theirs = client.post(f"{PREDICT}?version=2", json={"instances": X}).get_json()["predictions"]
    assert candidate["agreement"]["rows"] == len(X)
    expected = np.mean(np.abs(np.array(ours) - np.array(theirs)))
    assert candidate["agreement"]["mean_abs_difference"] == pytest.approx(expected, rel=1e-9)
    assert candidate["live"]["n_samples"] == len(X)
    assert primary["live"]["n_samples"] == len(answered[1])
    assert_error(client.get(f"{ALIAS}/comparison?window=0"), 422, "validation_error")
    assert_error(client.get("/api/v1/models/diabetes/aliases/nope/comparison"), 404, "not_found")


@pytest.mark.parametrize(("tolerance", "promoted"), [(1.0, True), (0.0, False)])
def test_rule_promotes_or_rolls_back_and_says_why(
    client: FlaskClient, ctx: Context, diabetes: dict[str, Any], tolerance: float, promoted: bool
) -> None:
    # v3 (age and bmi only) is worse than v1: within a tolerance of 100 % it passes, at 0 not.
    rule = {"min_feedback": 20, "tolerance": tolerance}
    client.put(ALIAS, json={"version": 1, "shadow": [3], "auto": rule})
    frame = diabetes["frame"]
    assert comparison.apply_rules(ctx) == 0  # no feedback yet
    for i in range(20):
        body = client.post(PREDICT, json={"instances": rows(frame.iloc[i : i + 1], 1)}).get_json()
        assert ctx.shadows.flush() and ctx.prediction_log.flush()
        client.post(
            f"/api/v1/predictions/{body['prediction_id']}/feedback",
            json={"target": float(frame["target"].iloc[i])},
        )
    assert ctx.shadows.failed == 20  # v3 refuses the full rows: it never answered
    assert comparison.apply_rules(ctx) == 0
    client.put(ALIAS, json={"version": 1, "shadow": [2], "auto": rule})
    for i in range(20):
        body = client.post(PREDICT, json={"instances": rows(frame.iloc[i : i + 1], 1)}).get_json()
        assert ctx.shadows.flush() and ctx.prediction_log.flush()
        client.post(
            f"/api/v1/predictions/{body['prediction_id']}/feedback",
            json={"target": float(frame["target"].iloc[i])},
        )
    live = {
        v: client.get(f"/api/v1/models/diabetes/versions/{v}/live-metrics?window=20").get_json()
        for v in (1, 2)
    }
    better = live[2]["metrics"]["rmse"] <= live[1]["metrics"]["rmse"] * (1 + tolerance)
    assert comparison.apply_rules(ctx) == 1
    row = registry.get_alias(ctx, "diabetes", "production")
    assert (row.version, row.policy) == ((2, None) if better else (1, None))
    assert better == promoted or tolerance == 0.0
    with ctx.db.session() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.route == comparison.RULE_ROUTE
    assert event.object is not None
    assert ("promoted v2" if better else "rolled back v2") in event.object
    assert "rmse" in event.object


def test_policy_reaches_another_process_on_refresh(
    settings: Settings, client: FlaskClient, ctx: Context, diabetes: dict[str, Any]
) -> None:
    other = create_app(settings)  # a second worker process on the same database
    other_ctx = context_of(other)
    instances = rows(diabetes["frame"], 1)
    assert other_ctx.resolver.route("diabetes").choose("k").version == 1
    client.put(ALIAS, json={"version": 1, "canary": {"version": 2, "weight": 1.0}})
    assert other_ctx.resolver.route("diabetes").choose("k").version == 1  # cached
    assert other_ctx.resolver.refresh()  # type: ignore[attr-defined]
    answer = keyed_client(other).post(PREDICT, json={"instances": instances})
    assert answer.get_json()["model_version"] == 2
    with ctx.db.session() as session:
        assert session.get(ModelAlias, ("diabetes", "production")) is not None
    other_ctx.db.dispose()
