"""What the in-process benchmarks share: an app with their settings, an uploaded dataset,
a trained version, rows as the JSON records a client sends, and WSGI calls as a server
makes them (Flask's test client costs about as much as a one-row prediction).

The benchmarks run as scripts (``python bench/<name>.py``), so they import this module
by its file name, as ``bench/serve.py`` imports ``serve_contenders``.
"""

from __future__ import annotations

import io
import sys
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


class Wsgi:
    """Calls the application as a WSGI server does: one environ per request, the answer's
    status, headers and body read back."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app.wsgi_app  # the fast lane, then Flask
        self.base = {
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }

    def post(
        self, path: str, data: bytes, headers: dict[str, str]
    ) -> tuple[str, dict[str, str], bytes]:
        environ = dict(self.base)
        environ.update(
            REQUEST_METHOD="POST",
            PATH_INFO=path,
            QUERY_STRING="",
            CONTENT_LENGTH=str(len(data)),
            CONTENT_TYPE=headers.get("Content-Type", "application/json"),
        )
        environ["wsgi.input"] = io.BytesIO(data)
        for name, value in headers.items():
            if name != "Content-Type":
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer: list[Any] = []
        body = self.app(environ, lambda status, head, exc_info=None: answer.extend((status, head)))
        try:
            content = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        return answer[0], dict(answer[1]), content
