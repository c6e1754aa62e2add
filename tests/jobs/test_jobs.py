"""Training jobs through the real (SQLite) queue: states, progress, failures, serializer."""

from __future__ import annotations

import pickle
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from huey.registry import Message

from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.jobs import service as jobs
from mlserve.store.queue import JsonSerializer
from tests.conftest import frame_csv, just_before_an_update, keyed_client, upload


def _run_next_task(ctx: Context) -> None:
    task = ctx.queue.huey.dequeue()
    assert task is not None, "the queue is empty"
    ctx.queue.huey.execute(task)


def _submit(app: Flask, frame: pd.DataFrame, **spec: Any) -> dict[str, Any]:
    client = keyed_client(app)
    dataset = upload(client, frame_csv(frame), "diabetes.csv").get_json()
    response = client.post(
        "/api/v1/training-jobs",
        json={"dataset_id": dataset["id"], "target": "target", "model_name": "m", **spec},
    )
    assert response.status_code == 202, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_job_waits_queued_until_a_worker_runs_it(
    queued_app: Flask, diabetes_frame: pd.DataFrame
) -> None:
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=3)
    assert (job["status"], job["progress"], job["model_version"]) == ("queued", 0.0, None)
    assert ctx.queue.huey.pending_count() == 1
    _run_next_task(ctx)
    done = jobs.get_job(ctx, job["id"])
    assert (done.status, done.progress, done.stage, done.model_version) == (
        "succeeded",
        1.0,
        "done",
        1,
    )
    assert done.started_at is not None and done.finished_at is not None


def test_job_reports_stages_in_order_with_rising_progress(
    queued_app: Flask, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx: Context = context_of(queued_app)
    seen: list[tuple[float, str]] = []
    original = jobs._progress

    def spy(context: Context, job_id: str, fraction: float, stage: str) -> None:
        seen.append((fraction, stage))
        original(context, job_id, fraction, stage)

    monkeypatch.setattr(jobs, "_progress", spy)
    _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=3)
    _run_next_task(ctx)
    stages = [stage for _, stage in seen]
    assert stages == [
        "loading data",
        "cleaning",
        "cross-validation 1/3",
        "cross-validation 2/3",
        "cross-validation 3/3",
        "fitting",
        "evaluating",
        "compiling",
        "explaining",  # permutation importance on the compiled graph, then the SHAP summary
        "registering",
    ]
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1


def test_job_scores_the_permutation_importance_on_its_compiled_graph(
    queued_app: Flask, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlserve.training import evaluation

    ctx: Context = context_of(queued_app)
    scored_by: list[Any] = []
    original = evaluation.importances

    def spy(*args: Any, predict: Any = None, **kwargs: Any) -> Any:
        scored_by.append(predict)
        return original(*args, predict=predict, **kwargs)

    monkeypatch.setattr(evaluation, "importances", spy)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    _run_next_task(ctx)
    (predict,) = scored_by
    assert predict is not None and predict.__qualname__.startswith("_graph_predict")
    client = keyed_client(queued_app)
    done = client.get(f"/api/v1/training-jobs/{job['id']}").get_json()
    assert done["status"] == "succeeded", done
    evaluation_doc = client.get("/api/v1/models/m/versions/1/evaluation").get_json()
    features = {row["feature"] for row in evaluation_doc["permutation_importance"]}
    assert features == set(diabetes_frame.columns) - {"target"}
    assert evaluation_doc["shap_summary"]["rows"] >= 1


def test_job_already_claimed_is_not_run_twice(
    queued_app: Flask, diabetes_frame: pd.DataFrame
) -> None:
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    _run_next_task(ctx)
    jobs.execute_job(ctx, job["id"], "another-worker")  # a duplicate delivery
    model = keyed_client(queued_app).get("/api/v1/models/m").get_json()
    assert [v["version"] for v in model["versions"]] == [1]


def test_two_claims_of_one_job_at_the_same_moment_run_it_once(
    queued_app: Flask, diabetes_frame: pd.DataFrame
) -> None:
    """A duplicate delivery claims the job just before this claim's write lands."""
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    with just_before_an_update(
        ctx,
        "training_job",
        lambda: jobs._claim(ctx, job["id"], "second"),
        when=lambda values: "first" in values,
    ) as duplicate:
        assert jobs._claim(ctx, job["id"], "first") is False
    assert duplicate == [True]
    assert (jobs.get_job(ctx, job["id"]).status, jobs.get_job(ctx, job["id"]).worker_id) == (
        "running",
        "second",
    )


def test_job_that_raises_is_failed_with_message_and_no_version(
    queued_app: Flask, diabetes_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx: Context = context_of(queued_app)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise MemoryError("out of memory while fitting")

    monkeypatch.setattr(jobs.registry, "save_artifact", broken)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    _run_next_task(ctx)
    failed = jobs.get_job(ctx, job["id"])
    assert failed.status == "failed" and failed.stage == "failed"
    assert failed.error == "MemoryError: out of memory while fitting"
    assert keyed_client(queued_app).get("/api/v1/models/m").status_code == 404
    assert not ctx.store.exists(jobs.artifact_key(job["id"]))


def test_queue_stores_json_not_pickle(queued_app: Flask, diabetes_frame: pd.DataFrame) -> None:
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge")
    raw = ctx.queue.huey.storage.dequeue()
    assert raw is not None and raw.startswith(b"{")
    assert job["id"].encode() in raw


def test_json_serializer_round_trips_a_message() -> None:
    serializer = JsonSerializer()
    message = Message(
        id="t1",
        name="mlserve.train",
        eta=None,
        retries=0,
        retry_delay=0,
        priority=None,
        args=("job-1",),
        kwargs={},
    )
    assert serializer.deserialize(serializer.serialize(message)) == message


def test_json_serializer_refuses_a_planted_pickle() -> None:
    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    with pytest.raises(ValueError):
        JsonSerializer().deserialize(pickle.dumps(Exploit()))
