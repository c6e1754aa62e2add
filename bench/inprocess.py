"""What the in-process benchmarks share: an app with their settings, an uploaded dataset,
a trained version, and rows as the JSON records a client sends.

The benchmarks run as scripts (``python bench/<name>.py``), so they import this module
by its file name, as ``bench/serve.py`` imports ``serve_contenders``.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from flask import Flask
from flask.testing import FlaskClient

from mlserve import create_app
from mlserve.training.explain_record import to_records


def bench_app(**settings: Any) -> Flask:
    """An app in a new temporary home that runs jobs in the request, logs warnings only,
    has no authentication and no rate limits; ``settings`` override or add to these."""
    defaults: dict[str, Any] = {
        "home": Path(tempfile.mkdtemp()),
        "jobs_immediate": True,
        "log_level": "WARNING",
        "auth": False,
        "rate_limit_per_ip": "off",
        "rate_limit_per_key": "off",
    }
    return create_app(**{**defaults, **settings})


def upload(client: FlaskClient, data: bytes, filename: str) -> str:
    """Upload ``data`` (CSV or Parquet bytes) as a dataset; return its id."""
    answer = client.post(
        "/api/v1/datasets",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), filename)},
    )
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["id"])


def train(client: FlaskClient, dataset_id: str, **spec: Any) -> dict[str, Any]:
    """Run a training job (``spec``: target, algorithm, model_name... ``cv_folds`` 0 unless
    given) and return it, checked to have succeeded."""
    job = client.post(
        "/api/v1/training-jobs", json={"cv_folds": 0, **spec, "dataset_id": dataset_id}
    ).get_json()
    assert job["status"] == "succeeded", job
    return dict(job)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON records (missing values as ``None``)."""
    return to_records(frame)
