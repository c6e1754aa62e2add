"""Tests of :mod:`mlserve.client` against a fake server on ``httpx.MockTransport``."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlserve.client import (
    ApiError,
    Client,
    ClientError,
    ConnectionFailed,
    InvalidResponse,
    JobTimeout,
)

BASE = "http://mlserve.test"
API_KEY = "s3cret"
NOW = "2025-01-01T00:00:00Z"


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "details": details}}
    )


def parse_multipart(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """Field name -> (filename, content) of a multipart/form-data request."""
    raw = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw + request.content)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
    return fields


class FakeServer:
    """In-memory stand-in for the mlserve REST API, recording every request."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[httpx.Request] = []
        self.datasets: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        # Statuses reported by successive GETs of a job, the last one repeating.
        self.job_statuses: dict[str, list[str]] = {}
        self.models: dict[str, dict[str, Any]] = {
            "iris": {
                "name": "iris",
                "latest_version": 2,
                "aliases": {"production": 1},
                "created_at": NOW,
                "versions": [self._version("iris", 1), self._version("iris", 2)],
            }
        }
        self.ready = True
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., httpx.Response]]] = [
            ("GET", re.compile(r"/health"), self.health),
            ("GET", re.compile(r"/ready"), self.readiness),
            ("POST", re.compile(r"/api/v1/datasets"), self.upload),
            ("GET", re.compile(r"/api/v1/datasets"), self.list_datasets),
            ("GET", re.compile(r"/api/v1/datasets/(?P<id>[^/]+)"), self.get_dataset),
            ("POST", re.compile(r"/api/v1/training-jobs"), self.create_job),
            ("GET", re.compile(r"/api/v1/training-jobs"), self.list_jobs),
            ("GET", re.compile(r"/api/v1/training-jobs/(?P<id>[^/]+)"), self.get_job),
            ("GET", re.compile(r"/api/v1/models"), self.list_models),
            ("GET", re.compile(r"/api/v1/models/(?P<name>[^/]+)"), self.get_model),
            (
                "GET",
                re.compile(r"/api/v1/models/(?P<name>[^/]+)/versions/(?P<v>[^/]+)"),
                self.get_version,
            ),
            (
                "PUT",
                re.compile(r"/api/v1/models/(?P<name>[^/]+)/aliases/(?P<alias>[^/]+)"),
                self.set_alias,
            ),
            ("POST", re.compile(r"/api/v1/models/(?P<name>[^/]+)/predict"), self.predict),
        ]

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if (
            self.api_key is not None
            and request.url.path.startswith("/api/")
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            return error(401, "unauthorized", "missing or invalid API key")
        path = request.url.path
        allowed = False
        for method, pattern, view in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                return view(request, **match.groupdict())
        if allowed:
            return error(405, "method_not_allowed", f"{request.method} is not allowed")
        return error(404, "not_found", f"no route for {path}")

    # -- views ------------------------------------------------------------------------

    def health(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    def readiness(self, request: httpx.Request) -> httpx.Response:
        if not self.ready:
            return error(503, "service_unavailable", "database unreachable", check="database")
        return httpx.Response(200, json={"status": "ready", "checks": {"database": "ok"}})

    def upload(self, request: httpx.Request) -> httpx.Response:
        fields = parse_multipart(request)
        if "file" not in fields:
            return error(400, "bad_request", "missing file field", field="file")
        filename, content = fields["file"]
        name = fields["name"][1].decode() if "name" in fields else str(filename)
        lines = content.decode().strip().splitlines()
        header = lines[0].split(",")
        dataset_id = f"ds{len(self.datasets) + 1}"
        self.datasets[dataset_id] = {
            "id": dataset_id,
            "name": name,
            "filename": filename,
            "source_format": Path(str(filename)).suffix.lstrip("."),
            "n_rows": len(lines) - 1,
            "n_columns": len(header),
            "size_bytes": len(content),
            "sha256": "0" * 64,
            "columns": [
                {"name": col, "type": "number", "dtype": "float64", "missing": 0, "unique": 3}
                for col in header
            ],
            "created_at": NOW,
        }
        return httpx.Response(201, json=self.datasets[dataset_id])

    def list_datasets(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"datasets": list(self.datasets.values())})

    def get_dataset(self, request: httpx.Request, id: str) -> httpx.Response:
        if id not in self.datasets:
            return error(404, "not_found", f"dataset {id!r} not found", resource="dataset", key=id)
        return httpx.Response(200, json=self.datasets[id])

    def create_job(self, request: httpx.Request) -> httpx.Response:
        try:
            spec = json.loads(request.content)
        except ValueError:
            return error(400, "malformed_json", "the body is not valid JSON")
        if spec.get("dataset_id") not in self.datasets and spec.get("dataset_id") != "ds-fixed":
            return error(404, "not_found", "dataset not found", resource="dataset")
        job_id = f"job{len(self.jobs) + 1}"
        self.jobs[job_id] = {
            "id": job_id,
            "dataset_id": spec["dataset_id"],
            "model_name": spec["model_name"],
            "status": "queued",
            "progress": 0.0,
            "stage": "queued",
            "error": None,
            "model_version": None,
            "spec": spec,
            "created_at": NOW,
            "started_at": None,
            "finished_at": None,
        }
        return httpx.Response(202, json=self.jobs[job_id])

    def list_jobs(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"jobs": list(self.jobs.values())})

    def get_job(self, request: httpx.Request, id: str) -> httpx.Response:
        if id not in self.jobs:
            return error(404, "not_found", f"job {id!r} not found", resource="job", key=id)
        job = self.jobs[id]
        statuses = self.job_statuses.get(id)
        if statuses:
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            job["status"] = status
            job["progress"] = {"queued": 0.0, "running": 0.5}.get(status, 1.0)
            if status == "succeeded":
                job["model_version"] = 1
                job["finished_at"] = NOW
            if status == "failed":
                job["error"] = "target column is constant"
        return httpx.Response(200, json=job)

    def list_models(self, request: httpx.Request) -> httpx.Response:
        summaries = [
            {key: value for key, value in model.items() if key != "versions"}
            for model in self.models.values()
        ]
        return httpx.Response(200, json={"models": summaries})

    def get_model(self, request: httpx.Request, name: str) -> httpx.Response:
        if name not in self.models:
            return error(404, "not_found", f"model {name!r} not found", resource="model", key=name)
        return httpx.Response(200, json=self.models[name])

    def get_version(self, request: httpx.Request, name: str, v: str) -> httpx.Response:
        model = self.models.get(name)
        if model is None or not v.isdigit() or not 1 <= int(v) <= len(model["versions"]):
            return error(404, "not_found", f"model version {name}/{v} not found")
        return httpx.Response(200, json=model["versions"][int(v) - 1])

    def set_alias(self, request: httpx.Request, name: str, alias: str) -> httpx.Response:
        if name not in self.models:
            return error(404, "not_found", f"model {name!r} not found")
        version = json.loads(request.content)["version"]
        self.models[name]["aliases"][alias] = version
        return httpx.Response(200, json={"model_name": name, "alias": alias, "version": version})

    def predict(self, request: httpx.Request, name: str) -> httpx.Response:
        if name not in self.models:
            return error(404, "not_found", f"model {name!r} not found")
        instances = json.loads(request.content)["instances"]
        if not instances:
            return error(422, "validation_error", "instances is empty", field="instances")
        alias = request.url.params.get("alias")
        version_param = request.url.params.get("version")
        model = self.models[name]
        if alias is not None:
            if alias not in model["aliases"]:
                return error(404, "not_found", f"alias {alias!r} not found")
            version = model["aliases"][alias]
        else:
            version = int(version_param) if version_param else model["latest_version"]
        return httpx.Response(
            200,
            json={
                "predictions": ["setosa"] * len(instances),
                "probabilities": [[0.9, 0.1]] * len(instances),
                "classes": ["setosa", "versicolor"],
                "model_name": name,
                "model_version": version,
            },
        )

    @staticmethod
    def _version(name: str, version: int) -> dict[str, Any]:
        return {
            "model_name": name,
            "version": version,
            "task": "classification",
            "algorithm": "random_forest",
            "params": {"n_estimators": 100},
            "metrics": {"accuracy": 0.95},
            "cv_metrics": {"accuracy": {"mean": 0.94, "std": 0.02}},
            "signature": {"inputs": [{"name": "sepal_length", "type": "number"}]},
            "dataset_id": "ds1",
            "job_id": f"job{version}",
            "training_seconds": 0.5,
            "artifact_sha256": "f" * 64,
            "created_at": NOW,
        }


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.delenv("MLSERVE_API_KEY", raising=False)
    return Client(BASE, transport=server.transport)


class FakeClock:
    """Monotonic clock advanced only by ``sleep``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(client: Client) -> FakeClock:
    fake = FakeClock()
    client._clock = fake
    client._sleep = fake.sleep
    return fake


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    path = tmp_path / "iris.csv"
    path.write_text("sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n")
    return path


# -- construction and auth ------------------------------------------------------------


def test_client_sends_bearer_token_when_api_key_set() -> None:
    server = FakeServer(api_key=API_KEY)
    with Client(BASE, API_KEY, transport=server.transport) as client:
        assert client.list_models()["models"][0]["name"] == "iris"
    assert server.last.headers["authorization"] == f"Bearer {API_KEY}"


def test_client_sends_no_authorization_without_api_key(client: Client, server: FakeServer) -> None:
    client.health()
    assert "authorization" not in server.last.headers
    assert server.last.headers["accept"] == "application/json"


def test_client_reads_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_API_KEY", API_KEY)
    server = FakeServer(api_key=API_KEY)
    with Client(BASE, transport=server.transport) as client:
        client.list_models()
    assert server.last.headers["authorization"] == f"Bearer {API_KEY}"
    with Client(BASE, "explicit", transport=server.transport) as client:
        client.health()
    assert server.last.headers["authorization"] == "Bearer explicit"


def test_client_wrong_api_key_raises_api_error_401() -> None:
    server = FakeServer(api_key=API_KEY)
    with (
        Client(BASE, "wrong", transport=server.transport) as client,
        pytest.raises(ApiError, match="invalid API key") as info,
    ):
        client.list_datasets()
    assert (info.value.status_code, info.value.code) == (401, "unauthorized")


def test_client_context_manager_closes_connections(server: FakeServer) -> None:
    with Client(BASE, transport=server.transport) as client:
        assert not client.closed
    assert client.closed


def test_client_default_url_is_loopback_8000(server: FakeServer) -> None:
    with Client(transport=server.transport) as client:
        client.health()
    assert str(server.last.url) == "http://127.0.0.1:8000/health"


@pytest.mark.parametrize("url", [f"{BASE}/prefix", f"{BASE}/prefix/"])
def test_client_keeps_url_path_prefix(url: str, server: FakeServer) -> None:
    server.routes = [("GET", re.compile(r"/prefix/api/v1/models"), server.list_models)]
    with Client(url, transport=server.transport) as client:
        client.list_models()
    assert server.last.url.path == "/prefix/api/v1/models"


# -- request shapes -------------------------------------------------------------------


def test_client_upload_dataset_sends_multipart_file_and_name(
    client: Client, server: FakeServer, iris_csv: Path
) -> None:
    dataset = client.upload_dataset(iris_csv, name="flowers")

    request = server.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/datasets")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = parse_multipart(request)
    assert set(fields) == {"file", "name"}
    assert fields["file"] == ("iris.csv", iris_csv.read_bytes())
    assert fields["name"] == (None, b"flowers")
    assert dataset["id"] == "ds1"
    assert dataset["name"] == "flowers"
    assert dataset["n_rows"] == 2


def test_client_upload_dataset_names_dataset_after_file_stem(
    client: Client, server: FakeServer, iris_csv: Path
) -> None:
    client.upload_dataset(str(iris_csv))
    assert parse_multipart(server.last)["name"] == (None, b"iris")


def test_client_upload_dataset_accepts_open_file(
    client: Client, server: FakeServer, iris_csv: Path
) -> None:
    with iris_csv.open("rb") as fh:
        client.upload_dataset(fh)
    fields = parse_multipart(server.last)
    assert fields["file"] == ("iris.csv", iris_csv.read_bytes())


def test_client_upload_dataset_buffer_needs_filename(client: Client, server: FakeServer) -> None:
    buffer = io.BytesIO(b"a,b\n1,2\n")
    with pytest.raises(ValueError, match="filename="):
        client.upload_dataset(buffer)

    client.upload_dataset(buffer, "tiny", filename="tiny.csv")
    fields = parse_multipart(server.last)
    assert fields["file"] == ("tiny.csv", b"a,b\n1,2\n")
    assert fields["name"] == (None, b"tiny")


def test_client_upload_dataset_missing_path_raises_oserror(client: Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        client.upload_dataset(tmp_path / "nope.csv")


def test_client_list_and_get_datasets(client: Client, server: FakeServer, iris_csv: Path) -> None:
    client.upload_dataset(iris_csv)

    listing = client.list_datasets()
    assert (server.last.method, server.last.url.path) == ("GET", "/api/v1/datasets")
    assert [d["id"] for d in listing["datasets"]] == ["ds1"]

    dataset = client.get_dataset("ds1")
    assert (server.last.method, server.last.url.path) == ("GET", "/api/v1/datasets/ds1")
    assert [c["name"] for c in dataset["columns"]] == ["sepal_length", "sepal_width", "species"]


def test_client_create_training_job_sends_spec_as_json(
    client: Client, server: FakeServer, iris_csv: Path
) -> None:
    client.upload_dataset(iris_csv)
    job = client.create_training_job(
        "ds1",
        "species",
        "random_forest",
        "iris",
        task="classification",
        params={"n_estimators": 50, "max_depth": None},
        features=["sepal_length", "sepal_width"],
        test_size=0.25,
        cv_folds=0,
        random_state=7,
        drop_duplicates=True,
        drop_missing_target=False,
    )

    request = server.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/training-jobs")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "dataset_id": "ds1",
        "target": "species",
        "algorithm": "random_forest",
        "model_name": "iris",
        "task": "classification",
        "params": {"n_estimators": 50, "max_depth": None},
        "features": ["sepal_length", "sepal_width"],
        "test_size": 0.25,
        "cv_folds": 0,
        "random_state": 7,
        "drop_duplicates": True,
        "drop_missing_target": False,
    }
    assert job["status"] == "queued"
    assert job["id"] == "job1"


def test_client_create_training_job_leaves_out_none_options(
    client: Client, server: FakeServer
) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m", task=None, features=None)
    assert json.loads(server.last.content) == {
        "dataset_id": "ds-fixed",
        "target": "y",
        "algorithm": "ridge",
        "model_name": "m",
    }


def test_client_create_training_job_rejects_unknown_option(
    client: Client, server: FakeServer
) -> None:
    with pytest.raises(TypeError, match=r"unknown training option.*n_jobs"):
        client.create_training_job("ds-fixed", "y", "ridge", "m", n_jobs=2)
    assert server.requests == []


def test_client_get_and_list_jobs(client: Client, server: FakeServer) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m")

    assert client.get_job("job1")["model_name"] == "m"
    assert (server.last.method, server.last.url.path) == ("GET", "/api/v1/training-jobs/job1")

    assert [j["id"] for j in client.list_jobs()["jobs"]] == ["job1"]
    assert (server.last.method, server.last.url.path) == ("GET", "/api/v1/training-jobs")


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.list_models(), "GET", "/api/v1/models", None),
        (lambda c: c.get_model("iris"), "GET", "/api/v1/models/iris", None),
        (lambda c: c.get_version("iris", 2), "GET", "/api/v1/models/iris/versions/2", None),
        (
            lambda c: c.set_alias("iris", "production", 2),
            "PUT",
            "/api/v1/models/iris/aliases/production",
            {"version": 2},
        ),
        (lambda c: c.health(), "GET", "/health", None),
        (lambda c: c.ready(), "GET", "/ready", None),
    ],
    ids=["list_models", "get_model", "get_version", "set_alias", "health", "ready"],
)
def test_client_registry_and_probe_request_shapes(
    client: Client,
    server: FakeServer,
    call: Callable[[Client], dict[str, Any]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    result = call(client)
    request = server.last
    assert (request.method, request.url.path, request.url.query) == (method, path, b"")
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body
    assert isinstance(result, dict)


def test_client_registry_answers(client: Client) -> None:
    assert client.list_models()["models"][0]["aliases"] == {"production": 1}
    assert [v["version"] for v in client.get_model("iris")["versions"]] == [1, 2]
    assert client.get_version("iris", 2)["metrics"] == {"accuracy": 0.95}
    assert client.set_alias("iris", "staging", 2) == {
        "model_name": "iris",
        "alias": "staging",
        "version": 2,
    }
    assert client.health() == {"status": "ok"}
    assert client.ready()["status"] == "ready"


def test_client_quotes_path_segments(client: Client, server: FakeServer) -> None:
    with pytest.raises(ApiError):
        client.get_model("a b/c")
    assert server.last.url.raw_path == b"/api/v1/models/a%20b%2Fc"


@pytest.mark.parametrize(
    ("kwargs", "query", "model_version"),
    [
        ({}, {}, 2),
        ({"alias": "production"}, {"alias": "production"}, 1),
        ({"version": 2}, {"version": "2"}, 2),
    ],
    ids=["latest", "alias", "version"],
)
def test_client_predict_sends_instances_and_selector(
    client: Client,
    server: FakeServer,
    kwargs: dict[str, Any],
    query: dict[str, str],
    model_version: int,
) -> None:
    rows = [{"sepal_length": 5.1, "species_hint": None}, {"sepal_length": 4.9, "x": "a"}]

    result = client.predict("iris", rows, **kwargs)

    request = server.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/models/iris/predict")
    assert dict(request.url.params) == query
    assert json.loads(request.content) == {"instances": rows}
    assert result["predictions"] == ["setosa", "setosa"]
    assert result["classes"] == ["setosa", "versicolor"]
    assert (result["model_name"], result["model_version"]) == ("iris", model_version)


def test_client_predict_rejects_alias_and_version(client: Client, server: FakeServer) -> None:
    with pytest.raises(ValueError, match="alias or version, not both"):
        client.predict("iris", [{"a": 1}], alias="production", version=1)
    assert server.requests == []


# -- wait_for_job ---------------------------------------------------------------------


def test_client_wait_for_job_polls_until_succeeded(
    client: Client, server: FakeServer, clock: FakeClock
) -> None:
    job = client.create_training_job("ds-fixed", "y", "ridge", "m")
    server.job_statuses["job1"] = ["queued", "running", "running", "succeeded"]

    final = client.wait_for_job(job["id"], timeout_s=60, poll_interval_s=0.25)

    assert final["status"] == "succeeded"
    assert final["model_version"] == 1
    polls = [r for r in server.requests if r.method == "GET"]
    assert len(polls) == 4
    assert all(r.url.path == "/api/v1/training-jobs/job1" for r in polls)
    assert clock.sleeps == [0.25, 0.25, 0.25]


def test_client_wait_for_job_returns_failed_job(
    client: Client, server: FakeServer, clock: FakeClock
) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m")
    server.job_statuses["job1"] = ["running", "failed"]

    final = client.wait_for_job("job1", poll_interval_s=1)

    assert final["status"] == "failed"
    assert final["error"] == "target column is constant"


def test_client_wait_for_job_times_out(
    client: Client, server: FakeServer, clock: FakeClock
) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m")
    server.job_statuses["job1"] = ["running"]

    with pytest.raises(JobTimeout, match=r"job 'job1' did not finish within 2 s.*running") as info:
        client.wait_for_job("job1", timeout_s=2, poll_interval_s=0.5)

    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, ClientError)
    assert info.value.job["status"] == "running"
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert len([r for r in server.requests if r.method == "GET"]) == 5


def test_client_wait_for_job_last_sleep_stops_at_deadline(
    client: Client, server: FakeServer, clock: FakeClock
) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m")
    server.job_statuses["job1"] = ["queued"]

    with pytest.raises(JobTimeout):
        client.wait_for_job("job1", timeout_s=1, poll_interval_s=0.75)

    assert clock.sleeps == [0.75, 0.25]


def test_client_wait_for_job_with_real_clock_times_out(client: Client, server: FakeServer) -> None:
    client.create_training_job("ds-fixed", "y", "ridge", "m")
    server.job_statuses["job1"] = ["running"]
    with pytest.raises(TimeoutError, match="did not finish"):
        client.wait_for_job("job1", timeout_s=0.05, poll_interval_s=0.01)


def test_client_wait_for_job_unknown_job_raises_not_found(client: Client) -> None:
    with pytest.raises(ApiError, match="job 'nope' not found") as info:
        client.wait_for_job("nope", poll_interval_s=0.01)
    assert info.value.code == "not_found"


@pytest.mark.parametrize(
    ("timeout_s", "poll_interval_s", "match"),
    [(-1, 0.5, "timeout_s"), (10, 0, "poll_interval_s"), (10, -0.1, "poll_interval_s")],
)
def test_client_wait_for_job_rejects_bad_timing(
    client: Client, timeout_s: float, poll_interval_s: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        client.wait_for_job("job1", timeout_s=timeout_s, poll_interval_s=poll_interval_s)


# -- errors ---------------------------------------------------------------------------


def test_client_not_found_raises_api_error_with_envelope_fields(client: Client) -> None:
    with pytest.raises(ApiError, match="model 'nope' not found") as info:
        client.get_model("nope")
    exc = info.value
    assert exc.status_code == 404
    assert exc.code == "not_found"
    assert exc.message == "model 'nope' not found"
    assert exc.details == {"resource": "model", "key": "nope"}
    assert str(exc) == "model 'nope' not found (not_found, HTTP 404)"
    assert isinstance(exc, ClientError)


def test_client_ready_503_raises_service_unavailable(client: Client, server: FakeServer) -> None:
    server.ready = False
    with pytest.raises(ApiError, match="database unreachable") as info:
        client.ready()
    assert (info.value.status_code, info.value.code) == (503, "service_unavailable")
    assert info.value.details == {"check": "database"}


@pytest.mark.parametrize(
    ("response", "status", "code", "message", "details"),
    [
        (
            error(422, "validation_error", "bad target", field="target"),
            422,
            "validation_error",
            "bad target",
            {"field": "target"},
        ),
        (error(409, "conflict", "exists"), 409, "conflict", "exists", {}),
        (
            error(413, "payload_too_large", "too many rows", limit=10),
            413,
            "payload_too_large",
            "too many rows",
            {"limit": 10},
        ),
        (
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            502,
            "http_502",
            "<html>Bad Gateway</html>",
            {},
        ),
        (httpx.Response(500), 500, "http_500", "Internal Server Error", {}),
        (httpx.Response(400, json={"detail": "nope"}), 400, "http_400", '{"detail":"nope"}', {}),
        (
            httpx.Response(418, json={"error": {"message": "teapot"}}),
            418,
            "http_418",
            "teapot",
            {},
        ),
        (
            httpx.Response(400, json={"error": {"code": "bad_request", "details": [1]}}),
            400,
            "bad_request",
            "Bad Request",
            {},
        ),
    ],
    ids=[
        "422-envelope",
        "409-envelope",
        "413-envelope",
        "502-html",
        "500-empty",
        "400-other-json",
        "418-no-code",
        "400-no-message",
    ],
)
def test_client_maps_error_responses_to_api_error(
    response: httpx.Response,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
) -> None:
    transport = httpx.MockTransport(lambda request: response)
    with Client(BASE, transport=transport) as client, pytest.raises(ApiError) as info:
        client.list_models()
    exc = info.value
    assert (exc.status_code, exc.code, exc.message, exc.details) == (
        status,
        code,
        message,
        details,
    )


def test_client_truncates_long_non_json_error_body() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="x" * 2000))
    with Client(BASE, transport=transport) as client, pytest.raises(ApiError) as info:
        client.health()
    assert info.value.message == "x" * 500 + "..."


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, text="not json"), "non-JSON body"),
        (httpx.Response(200, json=[1, 2]), "JSON list, expected an object"),
    ],
)
def test_client_invalid_success_body_raises_invalid_response(
    response: httpx.Response, match: str
) -> None:
    transport = httpx.MockTransport(lambda request: response)
    with Client(BASE, transport=transport) as client, pytest.raises(InvalidResponse, match=match):
        client.health()


@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (httpx.ConnectError("Connection refused"), r"cannot reach mlserve at http://mlserve\.test"),
        (httpx.ReadTimeout("timed out"), "did not answer GET /api/v1/models in time"),
        (httpx.RemoteProtocolError("peer closed"), "cannot reach mlserve.*peer closed"),
    ],
    ids=["refused", "timeout", "protocol"],
)
def test_client_transport_errors_raise_connection_failed(exc: Exception, match: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with (
        Client(BASE, transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ConnectionFailed, match=match) as info,
    ):
        client.list_models()
    assert info.value.__cause__ is exc


def test_client_reads_mlserve_url_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_URL", "http://mlserve.example:9000/prefix/")
    with Client() as client:
        assert client.url == "http://mlserve.example:9000/prefix"
    with Client("http://explicit:1") as client:
        assert client.url == "http://explicit:1"
    monkeypatch.delenv("MLSERVE_URL")
    with Client() as client:
        assert client.url == "http://127.0.0.1:8000"
