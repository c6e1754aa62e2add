"""HTTP contract of /api/v1/training-jobs: submit, inspect, refuse bad specs, record failures."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.jobs import service as jobs
from mlserve.registry import service as registry
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import frame_csv, train, upload


@pytest.fixture
def diabetes_id(client: FlaskClient, diabetes_frame: pd.DataFrame) -> str:
    response = upload(client, frame_csv(diabetes_frame), "diabetes.csv")
    assert response.status_code == 201
    dataset_id: str = response.get_json()["id"]
    return dataset_id


@pytest.fixture
def odd_id(client: FlaskClient, diabetes_frame: pd.DataFrame) -> str:
    """Diabetes plus a constant column and a column with missing values."""
    frame = diabetes_frame.head(100).copy()
    frame["constant"] = 7
    frame["partial"] = frame["target"].where(frame.index % 10 != 0)
    dataset_id: str = upload(client, frame_csv(frame), "odd.csv").get_json()["id"]
    return dataset_id


def _model_files(ctx: Context) -> list[str]:
    folder = Path(ctx.store.root) / "models"
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


# --------------------------------------------------------------------------- success


def test_create_job_returns_202_succeeded(
    client: FlaskClient, ctx: Context, diabetes_id: str
) -> None:
    response = train(
        client,
        diabetes_id,
        target="target",
        algorithm="ridge",
        model_name="diabetes",
        cv_folds=3,
        params={"alpha": 0.5},
    )
    assert response.status_code == 202
    job = response.get_json()
    assert job["status"] == "succeeded"
    assert job["progress"] == 1.0
    assert job["stage"] == "done"
    assert job["error"] is None
    assert job["model_version"] == 1
    assert job["dataset_id"] == diabetes_id
    assert job["model_name"] == "diabetes"
    assert job["spec"] == {
        "dataset_id": diabetes_id,
        "target": "target",
        "algorithm": "ridge",
        "model_name": "diabetes",
        "task": "regression",
        "params": {"alpha": 0.5},
        "features": None,
        "test_size": 0.2,
        "cv_folds": 3,
        "random_state": 0,
        "drop_duplicates": False,
        "drop_missing_target": True,
        "include_samples": False,
        "time_budget_s": None,
    }
    created, started, finished = (
        _timestamp(job[k]) for k in ("created_at", "started_at", "finished_at")
    )
    assert created <= started <= finished
    assert _model_files(ctx) == [f"{job['id']}.onnx", f"{job['id']}.skops"]


def test_create_job_infers_classification_for_text_target(iris_model: dict[str, Any]) -> None:
    job = iris_model["job"]
    assert job["spec"]["task"] == "classification"
    assert iris_model["version"]["task"] == "classification"


def test_get_job_returns_the_submitted_job(client: FlaskClient, diabetes_id: str) -> None:
    job = train(
        client, diabetes_id, target="target", algorithm="ridge", model_name="d", cv_folds=0
    ).get_json()
    response = client.get(f"/api/v1/training-jobs/{job['id']}")
    assert response.status_code == 200
    assert response.get_json() == job


def test_list_jobs_newest_first(client: FlaskClient, diabetes_id: str) -> None:
    ids = [
        train(
            client, diabetes_id, target="target", algorithm="ridge", model_name="d", cv_folds=0
        ).get_json()["id"]
        for _ in range(3)
    ]
    listed = client.get("/api/v1/training-jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == ids[::-1]
    page = client.get("/api/v1/training-jobs?limit=2&offset=1").get_json()["jobs"]
    assert [j["id"] for j in page] == [ids[1], ids[0]]


def test_create_job_versions_increment_per_model_name(
    client: FlaskClient, diabetes_id: str
) -> None:
    numbers = [
        train(
            client, diabetes_id, target="target", algorithm="ridge", model_name=name, cv_folds=0
        ).get_json()["model_version"]
        for name in ("first", "first", "second", "first")
    ]
    assert numbers == [1, 2, 1, 3]
    versions = client.get("/api/v1/models/first").get_json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]


def test_create_job_with_features_subset_records_signature(
    client: FlaskClient, diabetes_id: str
) -> None:
    job = train(
        client,
        diabetes_id,
        target="target",
        algorithm="ridge",
        model_name="sub",
        features=["bmi", "bp"],
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded"
    version = client.get("/api/v1/models/sub/versions/1").get_json()
    assert [i["name"] for i in version["signature"]["inputs"]] == ["bmi", "bp"]
    assert version["metrics"]["n_samples"] == math.ceil(442 * 0.2)


# --------------------------------------------------------------------------- refused specs

BAD_SPECS = [
    # (case id, spec overrides, field named in details, message pattern)
    ("target-missing", {"target": "nope"}, "target", "not in the dataset"),
    ("target-constant", {"target": "constant"}, "target", "constant"),
    (
        "target-with-missing-not-dropped",
        {"target": "partial", "drop_missing_target": False},
        "drop_missing_target",
        "missing values",
    ),
    ("algorithm-unknown", {"algorithm": "xgboost"}, "algorithm", "unknown algorithm"),
    ("algorithm-wrong-task", {"algorithm": "svc"}, "algorithm", "unknown algorithm"),
    ("param-unknown", {"params": {"foo": 1}}, "params.foo", "unknown hyper-parameter 'foo'"),
    ("param-forbidden", {"params": {"copy_X": False}}, "params.copy_X", "unknown hyper-parameter"),
    ("param-bad-value", {"params": {"alpha": -1}}, "params.alpha", "invalid hyper-parameter"),
    ("param-bad-type", {"params": {"alpha": "big"}}, "params.alpha", "invalid hyper-parameter"),
    ("params-not-object", {"params": [1, 2]}, "params", "dictionary"),
    ("extra-field", {"learning_rate": 0.1}, "learning_rate", "Extra inputs"),
    ("test-size-zero", {"test_size": 0}, "test_size", "greater than 0"),
    ("test-size-one", {"test_size": 1}, "test_size", "less than 1"),
    ("test-size-above-one", {"test_size": 1.5}, "test_size", "less than 1"),
    ("test-size-negative", {"test_size": -0.1}, "test_size", "greater than 0"),
    ("test-size-too-few-rows", {"test_size": 0.999}, "test_size", "too few"),
    ("cv-folds-one", {"cv_folds": 1}, "cv_folds", "at least 2"),
    ("cv-folds-negative", {"cv_folds": -1}, "cv_folds", "greater than or equal to 0"),
    ("cv-folds-too-many", {"cv_folds": 21}, "cv_folds", "less than or equal to 20"),
    ("model-name-slash", {"model_name": "a/b"}, "model_name", "pattern"),
    ("model-name-dotdot", {"model_name": "../x"}, "model_name", "pattern"),
    ("model-name-empty", {"model_name": ""}, "model_name", "pattern"),
    ("model-name-space", {"model_name": "my model"}, "model_name", "pattern"),
    ("model-name-too-long", {"model_name": "m" * 101}, "model_name", "pattern"),
    ("task-unknown", {"task": "clustering"}, "task", "regression"),
    ("feature-unknown", {"features": ["bmi", "nope"]}, "features", "'nope' is not in"),
    ("feature-is-target", {"features": ["bmi", "target"]}, "features", "target"),
    ("feature-twice", {"features": ["bmi", "bmi"]}, "features", "twice"),
    ("features-empty", {"features": []}, "features", "at least 1"),
    ("random-state-negative", {"random_state": -1}, "random_state", "greater than"),
    ("cv-folds-boolean", {"cv_folds": True}, "cv_folds", "valid integer"),
    ("cv-folds-text", {"cv_folds": "3"}, "cv_folds", "valid integer"),
    ("test-size-boolean", {"test_size": True}, "test_size", "valid number"),
    ("drop-duplicates-number", {"drop_duplicates": 1}, "drop_duplicates", "valid boolean"),
    ("target-number", {"target": 3}, "target", "valid string"),
    ("dataset-id-empty", {"dataset_id": ""}, "dataset_id", "at least 1"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_SPECS],
)
def test_create_job_bad_spec_returns_422_without_storing(
    client: FlaskClient,
    ctx: Context,
    odd_id: str,
    overrides: dict[str, Any],
    field: str,
    pattern: str,
) -> None:
    spec = {
        "dataset_id": odd_id,
        "target": "target",
        "algorithm": "ridge",
        "model_name": "odd",
        "cv_folds": 2,
        **overrides,
    }
    before = stored_state(ctx)
    details = assert_error(client.post("/api/v1/training-jobs", json=spec), 422, "validation_error")
    assert details["field"] == field, details
    assert re.search(pattern, details["message"]), details["message"]
    assert stored_state(ctx) == before


@pytest.mark.parametrize("missing", ["dataset_id", "target", "algorithm", "model_name"])
def test_create_job_missing_required_field_returns_422(
    client: FlaskClient, ctx: Context, odd_id: str, missing: str
) -> None:
    spec = {"dataset_id": odd_id, "target": "target", "algorithm": "ridge", "model_name": "m"}
    del spec[missing]
    before = stored_state(ctx)
    details = assert_error(client.post("/api/v1/training-jobs", json=spec), 422, "validation_error")
    assert details["field"] == missing
    assert stored_state(ctx) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataset_id": ',
        b"{'dataset_id': 'x'}",
        b'{"dataset_id": "x", "test_size": NaN}',
        b"",
        b"not json",
    ],
    ids=["truncated", "single-quotes", "nan-token", "empty", "bare-word"],
)
def test_create_job_malformed_json_returns_400(
    client: FlaskClient, ctx: Context, odd_id: str, body: bytes
) -> None:
    before = stored_state(ctx)
    response = client.post("/api/v1/training-jobs", data=body, content_type="application/json")
    assert_error(response, 400, "malformed_json")
    assert stored_state(ctx) == before


@pytest.mark.parametrize("body", [b"[1, 2]", b'"spec"'], ids=["array", "string"])
def test_create_job_body_not_object_returns_422(
    client: FlaskClient, ctx: Context, body: bytes
) -> None:
    before = stored_state(ctx)
    response = client.post("/api/v1/training-jobs", data=body, content_type="application/json")
    assert_error(response, 422, "validation_error")
    assert stored_state(ctx) == before


def test_create_job_unknown_dataset_returns_404(client: FlaskClient, ctx: Context) -> None:
    before = stored_state(ctx)
    response = train(client, "0" * 32, target="target", algorithm="ridge", model_name="m")
    details = assert_error(response, 404, "not_found")
    assert details["resource"] == "dataset"
    assert stored_state(ctx) == before


def test_get_job_unknown_id_returns_404(client: FlaskClient) -> None:
    details = assert_error(client.get("/api/v1/training-jobs/nope"), 404, "not_found")
    assert details["key"] == "nope"


# --------------------------------------------------------------------------- failed jobs


def _assert_failed_without_model(
    client: FlaskClient, ctx: Context, job: dict[str, Any], versions_before: int
) -> None:
    assert job["status"] == "failed"
    assert job["stage"] == "failed"
    assert job["model_version"] is None
    assert job["progress"] < 1.0
    assert job["finished_at"] is not None
    assert client.get(f"/api/v1/training-jobs/{job['id']}").get_json() == job
    assert stored_state(ctx)["model_version"] == versions_before
    assert not any(name.startswith(job["id"]) for name in _model_files(ctx))
    assert_error(client.get(f"/api/v1/models/{job['model_name']}"), 404, "not_found")


def test_job_failing_at_fit_time_is_marked_failed(
    client: FlaskClient, ctx: Context, diabetes_id: str
) -> None:
    # n_neighbors passes KNeighborsRegressor's parameter constraints but exceeds the
    # rows of a cross-validation fold, so it fails only once the job runs.
    response = train(
        client,
        diabetes_id,
        target="target",
        algorithm="knn",
        model_name="knn",
        cv_folds=2,
        params={"n_neighbors": 5000},
    )
    assert response.status_code == 202
    job = response.get_json()
    assert "n_neighbors" in job["error"]
    _assert_failed_without_model(client, ctx, job, versions_before=0)


def test_job_raising_keeps_error_text(
    client: FlaskClient, ctx: Context, diabetes_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "train", boom)
    job = train(
        client, diabetes_id, target="target", algorithm="ridge", model_name="boom"
    ).get_json()
    assert job["error"] == "RuntimeError: boom"
    _assert_failed_without_model(client, ctx, job, versions_before=0)
    assert _model_files(ctx) == []


def test_job_failing_at_registration_removes_artifact(
    client: FlaskClient, ctx: Context, diabetes_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(registry, "add_version", refuse)
    job = train(
        client, diabetes_id, target="target", algorithm="ridge", model_name="reg", cv_folds=0
    ).get_json()
    assert job["error"] == "RuntimeError: database went away"
    _assert_failed_without_model(client, ctx, job, versions_before=0)
    assert _model_files(ctx) == []


def test_job_after_failure_takes_version_one(
    client: FlaskClient, ctx: Context, diabetes_id: str
) -> None:
    failed = train(
        client,
        diabetes_id,
        target="target",
        algorithm="knn",
        model_name="m",
        cv_folds=2,
        params={"n_neighbors": 5000},
    ).get_json()
    assert failed["status"] == "failed"
    ok = train(
        client, diabetes_id, target="target", algorithm="ridge", model_name="m", cv_folds=0
    ).get_json()
    assert (ok["status"], ok["model_version"]) == ("succeeded", 1)
    assert _model_files(ctx) == [f"{ok['id']}.onnx", f"{ok['id']}.skops"]
