"""Cancelling training jobs: queued never starts, running stops at the next stage or fold,
no version and no file remain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.jobs import cancel
from mlserve.jobs import service as jobs
from mlserve.settings import Settings
from tests.conftest import just_before_an_update, keyed_client
from tests.jobs.test_jobs import _run_next_task, _submit


def _files(ctx: Context) -> list[str]:
    folder = Path(ctx.store.root) / "models"
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _cancel(app: Flask, job_id: str) -> Any:
    return keyed_client(app).post(f"/api/v1/training-jobs/{job_id}/cancel")


def test_queued_job_cancelled_never_starts(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
) -> None:
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=3)
    response = _cancel(queued_app, job["id"])
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["stage"]) == (
        "cancelled",
        "cancelled",
    )
    _run_next_task(ctx)
    after = jobs.get_job(ctx, job["id"])
    assert (after.status, after.started_at, after.model_version) == ("cancelled", None, None)
    assert keyed_client(queued_app).get("/api/v1/models/m").status_code == 404
    assert _files(ctx) == []


def test_running_job_stops_at_the_next_fold(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx: Context = context_of(queued_app)
    seen: list[str] = []
    original = jobs._progress

    def spy(context: Context, job_id: str, fraction: float, stage: str) -> None:
        seen.append(stage)
        if stage == "cross-validation 2/3":
            assert _cancel(queued_app, job_id).get_json()["status"] == "cancelled"
        original(context, job_id, fraction, stage)

    monkeypatch.setattr(jobs, "_progress", spy)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=3)
    _run_next_task(ctx)
    assert seen[-1] == "cross-validation 2/3"
    after = jobs.get_job(ctx, job["id"])
    assert (after.status, after.stage, after.error, after.model_version) == (
        "cancelled",
        "cancelled",
        None,
        None,
    )
    assert _files(ctx) == []


def test_cancel_committed_while_a_progress_report_is_on_its_way_stays(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
) -> None:
    """The cancel commits just before the report's write reaches the database."""
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=3)
    with just_before_an_update(
        ctx,
        "training_job",
        lambda: cancel.cancel_job(ctx, job["id"]).status,
        when=lambda values: "cross-validation 2/3" in values,
    ) as raced:
        _run_next_task(ctx)
    after = jobs.get_job(ctx, job["id"])
    assert raced == ["cancelled"]
    assert (after.status, after.stage, after.model_version) == ("cancelled", "cancelled", None)
    assert _files(ctx) == []


def test_a_job_that_succeeds_while_the_cancel_is_on_its_way_keeps_its_outcome(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
) -> None:
    """The job registers its version just before the cancel's write reaches the database."""
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)

    def finish_first() -> str:
        _run_next_task(ctx)
        return jobs.get_job(ctx, job["id"]).status

    with just_before_an_update(
        ctx, "training_job", finish_first, when=lambda values: "cancelled" in values
    ) as finished:
        response = _cancel(queued_app, job["id"])
    assert finished == ["succeeded"]
    assert response.status_code == 409
    assert response.get_json()["error"]["details"] == {"status": "succeeded"}
    after = jobs.get_job(ctx, job["id"])
    assert (after.status, after.stage, after.model_version) == ("succeeded", "done", 1)


def test_auto_job_stops_between_candidates(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx: Context = context_of(queued_app)
    seen: list[str] = []
    original = jobs._progress

    def spy(context: Context, job_id: str, fraction: float, stage: str) -> None:
        seen.append(stage)
        if stage.startswith("auto 2/3 "):
            assert _cancel(queued_app, job_id).get_json()["status"] == "cancelled"
        original(context, job_id, fraction, stage)

    monkeypatch.setattr(jobs, "_progress", spy)
    job = _submit(queued_app, diabetes_frame, algorithm="auto", cv_folds=3)
    _run_next_task(ctx)
    assert seen[-1] == "auto 2/3 gradient_boosting: cross-validation 1/3"
    after = jobs.get_job(ctx, job["id"])
    assert (after.status, after.model_version) == ("cancelled", None)
    assert _files(ctx) == []


def test_cancel_during_registration_leaves_no_version_and_no_file(
    queued_app: Flask,
    diabetes_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx: Context = context_of(queued_app)
    save = jobs.registry.save_artifact

    def save_then_cancel(context: Context, pipeline: Any, key: str) -> Any:
        stored = save(context, pipeline, key)
        cancel.cancel_job(context, key.split("/")[1].split(".")[0])
        return stored

    monkeypatch.setattr(jobs.registry, "save_artifact", save_then_cancel)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    _run_next_task(ctx)
    assert jobs.get_job(ctx, job["id"]).status == "cancelled"
    assert keyed_client(queued_app).get("/api/v1/models/m").status_code == 404
    assert _files(ctx) == []


def test_cancel_answers(queued_app: Flask, diabetes_frame: pd.DataFrame) -> None:
    ctx: Context = context_of(queued_app)
    job = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    _run_next_task(ctx)
    done = _cancel(queued_app, job["id"])
    assert done.status_code == 409
    assert done.get_json()["error"]["details"] == {"status": "succeeded"}
    assert _cancel(queued_app, "nope").status_code == 404
    second = _submit(queued_app, diabetes_frame, algorithm="ridge", cv_folds=0)
    assert _cancel(queued_app, second["id"]).status_code == 200
    assert _cancel(queued_app, second["id"]).get_json()["status"] == "cancelled"


def test_job_past_max_job_seconds_fails_naming_the_limit(
    tmp_path: Path, california_frame: pd.DataFrame
) -> None:
    app = create_app(Settings(home=tmp_path, log_level="WARNING", max_job_seconds=0.05))
    ctx: Context = context_of(app)
    job = _submit(app, california_frame, target="median_house_value", algorithm="ridge", cv_folds=5)
    _run_next_task(ctx)
    after = jobs.get_job(ctx, job["id"])
    assert (after.status, after.stage, after.model_version) == ("failed", "failed", None)
    assert after.error is not None
    assert after.error.startswith("the job ran longer than max_job_seconds=0.05")
    assert "MLSERVE_MAX_JOB_SECONDS" in after.error
    assert keyed_client(app).get("/api/v1/models/m").status_code == 404
    assert _files(ctx) == []


@pytest.mark.parametrize(
    ("limit_s", "elapsed_s", "raises"),
    [(3600.0, 0.0, False), (10.0, 9.9, False), (10.0, 10.1, True), (0.5, 2.0, True)],
)
def test_deadline_raises_once_past_the_limit(
    monkeypatch: pytest.MonkeyPatch, limit_s: float, elapsed_s: float, raises: bool
) -> None:
    deadline = cancel.Deadline(limit_s)
    monkeypatch.setattr(cancel.time, "monotonic", lambda: deadline.started + elapsed_s)
    if not raises:
        deadline.check("fitting")
        return
    with pytest.raises(cancel.JobTooLong, match=r"max_job_seconds=.*before 'fitting'") as info:
        deadline.check("fitting")
    assert info.value.details["stage"] == "fitting"
