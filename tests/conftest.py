"""Shared fixtures: settings on a temporary home, the app, its test client, real data."""

from __future__ import annotations

import io
import os

# One OpenMP/BLAS thread per process: on a 2-core machine the test processes and
# workers otherwise oversubscribe the cores and gradient boosting slows 10-50x.
os.environ.setdefault("OMP_NUM_THREADS", "1")
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve import create_app
from mlserve.context import Context
from mlserve.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIFORNIA_CSV = REPO_ROOT.parent / "shared" / "datasets" / "california_housing.csv"
CALIFORNIA_TARGET = "median_house_value"
TEST_DATABASE_URL = os.environ.get("MLSERVE_TEST_DATABASE_URL")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with every file under ``tmp_path`` and jobs run synchronously."""
    return Settings(
        home=tmp_path / "home", jobs_immediate=True, log_level="WARNING", max_batch_rows=10_000
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    application.extensions["mlserve"].db.dispose()


@pytest.fixture
def ctx(app: Flask) -> Context:
    context: Context = app.extensions["mlserve"]
    return context


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return keyed_client(app)


def keyed_client(app: Flask, role: str = "admin") -> FlaskClient:
    """A test client that sends an API key of ``role`` (one key per app and role)."""
    from mlserve import auth

    secrets: dict[str, str] = app.extensions.setdefault("test_keys", {})
    if role not in secrets:
        created = auth.create_key(app.extensions["mlserve"], role, name=f"tests-{role}")
        secrets[role] = created.secret
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secrets[role]}"
    return client


@pytest.fixture(scope="session")
def california_bytes() -> bytes:
    if not CALIFORNIA_CSV.is_file():
        pytest.skip(f"{CALIFORNIA_CSV} is missing (it lives in ../shared/datasets)")
    return CALIFORNIA_CSV.read_bytes()


@pytest.fixture(scope="session")
def california_frame(california_bytes: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(california_bytes))


def upload(
    client: FlaskClient, data: bytes, filename: str = "data.csv", name: str | None = None
) -> Any:
    """POST a file to /api/v1/datasets and return the response."""
    form: dict[str, Any] = {"file": (io.BytesIO(data), filename)}
    if name is not None:
        form["name"] = name
    return client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")


def frame_csv(frame: pd.DataFrame) -> bytes:
    """A DataFrame as CSV bytes."""
    return frame.to_csv(index=False).encode()


def train(client: FlaskClient, dataset_id: str, **spec: Any) -> Any:
    """POST a training job (immediate mode: it has finished when this returns)."""
    body = {"dataset_id": dataset_id, **spec}
    return client.post("/api/v1/training-jobs", json=body)


@pytest.fixture
def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    return frame


@pytest.fixture
def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]
    return frame


@pytest.fixture
def diabetes_model(client: FlaskClient, diabetes_frame: pd.DataFrame) -> dict[str, Any]:
    """A registered ridge model on the diabetes data: ``{"dataset", "job", "version"}``."""
    dataset = upload(client, frame_csv(diabetes_frame), "diabetes.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=3
    ).get_json()
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/diabetes/versions/1").get_json()
    return {"dataset": dataset, "job": job, "version": version}


@pytest.fixture
def iris_model(client: FlaskClient, iris_frame: pd.DataFrame) -> dict[str, Any]:
    """A registered logistic regression on iris with string labels."""
    dataset = upload(client, frame_csv(iris_frame), "iris.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="target",
        algorithm="logistic_regression",
        model_name="iris",
        cv_folds=3,
    ).get_json()
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/iris/versions/1").get_json()
    return {"dataset": dataset, "job": job, "version": version}
