"""Tests of :mod:`mlserve.cli.user` through ``CliRunner`` against a fake server.

The commands reach the fake server through ``obj={"transport": ...}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from mlserve.cli.user import (
    convert_cell,
    parse_features,
    parse_params,
    read_instances,
    register_user_commands,
)

URL = "http://mlserve.test"
NOW = "2025-01-01T00:00:00Z"


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "details": details}}
    )


def job(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job_id,
        "dataset_id": "ds1",
        "model_name": "iris",
        "status": status,
        "progress": 1.0 if status in ("succeeded", "failed") else 0.0,
        "stage": status,
        "error": None,
        "model_version": 1 if status == "succeeded" else None,
        "spec": {},
        "created_at": NOW,
        "started_at": None,
        "finished_at": None,
    }
    body.update(extra)
    return body


class FakeServer:
    """Route table of canned answers; records each request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.job_statuses = ["queued", "running", "succeeded"]
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {
            ("POST", "/api/v1/datasets"): lambda r: httpx.Response(
                201, json={"id": "ds1", "name": "iris", "n_rows": 2, "columns": []}
            ),
            ("GET", "/api/v1/datasets"): lambda r: httpx.Response(
                200, json={"datasets": [{"id": "ds1", "name": "iris"}]}
            ),
            ("GET", "/api/v1/datasets/ds1"): lambda r: httpx.Response(
                200, json={"id": "ds1", "name": "iris"}
            ),
            ("POST", "/api/v1/training-jobs"): lambda r: httpx.Response(
                202, json=job("job1", "queued", spec=json.loads(r.content))
            ),
            ("GET", "/api/v1/training-jobs"): lambda r: httpx.Response(
                200, json={"jobs": [job("job1", "queued")]}
            ),
            ("GET", "/api/v1/training-jobs/job1"): self._poll_job,
            ("GET", "/api/v1/models"): lambda r: httpx.Response(
                200,
                json={"models": [{"name": "iris", "latest_version": 2, "aliases": {}}]},
            ),
            ("GET", "/api/v1/models/iris"): lambda r: httpx.Response(
                200, json={"name": "iris", "versions": [{"version": 1}, {"version": 2}]}
            ),
            ("GET", "/api/v1/models/iris/versions/2"): lambda r: httpx.Response(
                200, json={"model_name": "iris", "version": 2, "metrics": {"accuracy": 0.9}}
            ),
            ("PUT", "/api/v1/models/iris/aliases/production"): lambda r: httpx.Response(
                200,
                json={
                    "model_name": "iris",
                    "alias": "production",
                    "version": json.loads(r.content)["version"],
                },
            ),
            ("POST", "/api/v1/models/iris/predict"): self._predict,
        }

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            segments = request.url.path.rstrip("/").split("/")
            response = error(
                404, "not_found", f"{segments[-2]} {segments[-1]!r} not found", key=segments[-1]
            )
        else:
            response = route(request)
        self.responses.append(response)
        return response

    def _poll_job(self, request: httpx.Request) -> httpx.Response:
        status = self.job_statuses.pop(0) if len(self.job_statuses) > 1 else self.job_statuses[0]
        extra = {"error": "target column is constant"} if status == "failed" else {}
        return httpx.Response(200, json=job("job1", status, **extra))

    def _predict(self, request: httpx.Request) -> httpx.Response:
        instances = json.loads(request.content)["instances"]
        return httpx.Response(
            200,
            json={
                "predictions": [0] * len(instances),
                "model_name": "iris",
                "model_version": int(request.url.params.get("version", 2)),
            },
        )


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("mlserve")
    register_user_commands(group)
    return group


@pytest.fixture
def invoke(
    cli: click.Group, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    monkeypatch.delenv("MLSERVE_URL", raising=False)
    monkeypatch.delenv("MLSERVE_API_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str, url: str | None = URL, env: dict[str, str] | None = None) -> Result:
        argv = [*args, "--url", url] if url is not None else list(args)
        return runner.invoke(cli, argv, obj={"transport": server.transport}, env=env)

    return run


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    path = tmp_path / "iris.csv"
    path.write_text("sepal_length,species\n5.1,setosa\n4.9,setosa\n")
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- wiring and common options --------------------------------------------------------


def test_register_user_commands_adds_the_user_commands(cli: click.Group) -> None:
    assert sorted(cli.commands) == ["datasets", "jobs", "models", "predict", "train"]
    datasets = cli.commands["datasets"]
    models = cli.commands["models"]
    jobs = cli.commands["jobs"]
    assert isinstance(datasets, click.Group)
    assert isinstance(models, click.Group)
    assert isinstance(jobs, click.Group)
    assert sorted(datasets.commands) == ["list", "show", "upload"]
    assert sorted(jobs.commands) == ["list", "show"]
    assert sorted(models.commands) == ["alias", "list", "register", "show"]


def test_register_user_commands_twice_is_harmless(cli: click.Group) -> None:
    register_user_commands(cli)
    assert sorted(cli.commands) == ["datasets", "jobs", "models", "predict", "train"]


def test_register_user_commands_merges_into_existing_group() -> None:
    main = click.Group("mlserve")
    server_jobs = click.Group("jobs")
    server_jobs.add_command(click.Command("purge", callback=lambda: None))
    main.add_command(server_jobs)

    register_user_commands(main)

    assert main.commands["jobs"] is server_jobs
    assert sorted(server_jobs.commands) == ["list", "purge", "show"]


@pytest.mark.parametrize(
    "existing",
    [click.Command("train", callback=lambda: None), click.Group("jobs", {"show": click.Group()})],
    ids=["plain-command", "sub-command"],
)
def test_register_user_commands_refuses_clashes(existing: click.Command) -> None:
    main = click.Group("mlserve")
    main.add_command(existing)
    with pytest.raises(ValueError, match="already has"):
        register_user_commands(main)


def test_cli_url_and_api_key_from_environment(
    invoke: Callable[..., Result], server: FakeServer
) -> None:
    result = invoke(
        "models",
        "list",
        url=None,
        env={"MLSERVE_URL": "http://env.test:9000", "MLSERVE_API_KEY": "k3y"},
    )
    assert result.exit_code == 0, result.output
    assert str(server.last.url) == "http://env.test:9000/api/v1/models"
    assert server.last.headers["authorization"] == "Bearer k3y"


def test_cli_url_and_api_key_options(invoke: Callable[..., Result], server: FakeServer) -> None:
    result = invoke("models", "list", "--api-key", "opt", url="http://opt.test")
    assert result.exit_code == 0, result.output
    assert str(server.last.url) == "http://opt.test/api/v1/models"
    assert server.last.headers["authorization"] == "Bearer opt"


def test_cli_defaults_to_local_server_without_auth(
    invoke: Callable[..., Result], server: FakeServer
) -> None:
    result = invoke("models", "list", url=None)
    assert result.exit_code == 0, result.output
    assert str(server.last.url) == "http://127.0.0.1:8000/api/v1/models"
    assert "authorization" not in server.last.headers


def test_cli_prints_indented_json(invoke: Callable[..., Result]) -> None:
    result = invoke("models", "list")
    assert result.exit_code == 0
    assert result.stdout.startswith('{\n  "models": [\n')
    assert json.loads(result.stdout)["models"][0]["name"] == "iris"


def test_cli_api_error_goes_to_stderr_with_exit_1(invoke: Callable[..., Result]) -> None:
    result = invoke("models", "show", "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: models 'nope' not found (not_found, HTTP 404)" in result.stderr
    assert '"key": "nope"' in result.stderr


def test_cli_connection_failure_exits_1(cli: click.Group) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    result = CliRunner().invoke(
        cli, ["datasets", "list", "--url", URL], obj={"transport": httpx.MockTransport(refuse)}
    )
    assert result.exit_code == 1
    assert "Error: cannot reach mlserve at http://mlserve.test" in result.stderr


# -- datasets -------------------------------------------------------------------------


def test_cli_datasets_upload_posts_file_and_name(
    invoke: Callable[..., Result], server: FakeServer, iris_csv: Path
) -> None:
    result = invoke("datasets", "upload", str(iris_csv), "--name", "flowers")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "ds1"
    request = server.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/datasets")
    body = request.content
    assert b'name="file"; filename="iris.csv"' in body
    assert iris_csv.read_bytes() in body
    assert re.search(rb'name="name"\r\n\r\nflowers\r\n', body)


def test_cli_datasets_upload_missing_file_is_usage_error(
    invoke: Callable[..., Result], server: FakeServer, tmp_path: Path
) -> None:
    result = invoke("datasets", "upload", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert server.requests == []


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["datasets", "list"], "/api/v1/datasets"),
        (["datasets", "show", "ds1"], "/api/v1/datasets/ds1"),
        (["jobs", "list"], "/api/v1/training-jobs"),
        (["jobs", "show", "job1"], "/api/v1/training-jobs/job1"),
        (["models", "list"], "/api/v1/models"),
        (["models", "show", "iris"], "/api/v1/models/iris"),
        (["models", "show", "iris", "--version", "2"], "/api/v1/models/iris/versions/2"),
    ],
)
def test_cli_read_commands_get_path_and_print_answer(
    invoke: Callable[..., Result], server: FakeServer, args: list[str], path: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert (server.last.method, server.last.url.path) == ("GET", path)
    assert json.loads(result.stdout) == server.responses[-1].json()


def test_cli_models_alias_puts_version(invoke: Callable[..., Result], server: FakeServer) -> None:
    result = invoke("models", "alias", "iris", "production", "2")
    assert result.exit_code == 0, result.output
    assert (server.last.method, server.last.url.path) == (
        "PUT",
        "/api/v1/models/iris/aliases/production",
    )
    assert json.loads(server.last.content) == {"version": 2}
    assert json.loads(result.stdout) == {"model_name": "iris", "alias": "production", "version": 2}


@pytest.mark.parametrize("version", ["0", "two"])
def test_cli_models_alias_rejects_bad_version(
    invoke: Callable[..., Result], server: FakeServer, version: str
) -> None:
    result = invoke("models", "alias", "iris", "production", version)
    assert result.exit_code == 2
    assert server.requests == []


# -- train ----------------------------------------------------------------------------

REQUIRED = ["--dataset", "ds1", "--target", "species", "--algorithm", "rf", "--model-name", "iris"]


def test_cli_train_sends_only_required_fields_by_default(
    invoke: Callable[..., Result], server: FakeServer
) -> None:
    result = invoke("train", *REQUIRED)
    assert result.exit_code == 0, result.output
    assert (server.last.method, server.last.url.path) == ("POST", "/api/v1/training-jobs")
    assert json.loads(server.last.content) == {
        "dataset_id": "ds1",
        "target": "species",
        "algorithm": "rf",
        "model_name": "iris",
    }
    assert json.loads(result.stdout)["status"] == "queued"
    assert len(server.requests) == 1


def test_cli_train_sends_every_option(invoke: Callable[..., Result], server: FakeServer) -> None:
    result = invoke(
        "train",
        *REQUIRED,
        "--task",
        "classification",
        "--param",
        "n_estimators=50",
        "--param",
        "criterion=gini",
        "--param",
        "max_depth=null",
        "--features",
        "sepal_length, sepal_width",
        "--test-size",
        "0.3",
        "--cv-folds",
        "0",
        "--random-state",
        "42",
        "--time-budget",
        "90",
        "--drop-duplicates",
        "--keep-missing-target",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(server.last.content) == {
        "dataset_id": "ds1",
        "target": "species",
        "algorithm": "rf",
        "model_name": "iris",
        "task": "classification",
        "params": {"n_estimators": 50, "criterion": "gini", "max_depth": None},
        "features": ["sepal_length", "sepal_width"],
        "test_size": 0.3,
        "cv_folds": 0,
        "random_state": 42,
        "time_budget_s": 90.0,
        "drop_duplicates": True,
        "drop_missing_target": False,
    }


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--param", "oops"], "expected key=value"),
        (["--param", "=1"], "expected key=value"),
        (["--param", "a=1", "--param", "a=2"], "'a' is given twice"),
        (["--features", " , "], "comma-separated"),
        (["--task", "clustering"], "clustering"),
        (["--cv-folds", "many"], "many"),
    ],
)
def test_cli_train_bad_options_are_usage_errors(
    invoke: Callable[..., Result], server: FakeServer, args: list[str], match: str
) -> None:
    result = invoke("train", *REQUIRED, *args)
    assert result.exit_code == 2
    assert match in result.stderr
    assert server.requests == []


def test_cli_train_requires_target(invoke: Callable[..., Result], server: FakeServer) -> None:
    result = invoke("train", "--dataset", "ds1", "--algorithm", "rf", "--model-name", "m")
    assert result.exit_code == 2
    assert "--target" in result.stderr


def test_cli_train_wait_polls_until_succeeded(
    invoke: Callable[..., Result], server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlserve.client._client.time.sleep", lambda seconds: None)

    result = invoke("train", *REQUIRED, "--wait")

    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout)
    assert (final["status"], final["model_version"]) == ("succeeded", 1)
    polls = [r for r in server.requests if r.method == "GET"]
    assert [r.url.path for r in polls] == ["/api/v1/training-jobs/job1"] * 3
    # Each change of status, stage or progress is one line on stderr (issue 14: it
    # printed nothing for minutes); stdout keeps only the final JSON.
    assert result.stderr.splitlines() == [
        "job job1: queued - queued (0 %)",
        "job job1: running - running (0 %)",
        "job job1: succeeded - succeeded (100 %)",
    ]


def test_cli_train_wait_failed_job_exits_1(
    invoke: Callable[..., Result], server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlserve.client._client.time.sleep", lambda seconds: None)
    server.job_statuses = ["running", "failed"]

    result = invoke("train", *REQUIRED, "--wait")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert "Error: job job1 failed: target column is constant" in result.stderr


def test_cli_train_wait_timeout_exits_1(invoke: Callable[..., Result], server: FakeServer) -> None:
    server.job_statuses = ["running"]
    result = invoke("train", *REQUIRED, "--wait", "--wait-timeout", "0")
    assert result.exit_code == 1
    assert "Error: job 'job1' did not finish within 0 s (last status: running)" in result.stderr


def test_cli_train_api_error_exits_1(invoke: Callable[..., Result], server: FakeServer) -> None:
    server.routes[("POST", "/api/v1/training-jobs")] = lambda r: error(
        422, "validation_error", "target column 'species' is constant", field="target"
    )
    result = invoke("train", *REQUIRED)
    assert result.exit_code == 1
    assert "target column 'species' is constant (validation_error, HTTP 422)" in result.stderr
    assert '"field": "target"' in result.stderr


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        (["n_estimators=100"], {"n_estimators": 100}),
        (["alpha=0.5"], {"alpha": 0.5}),
        (["alpha=1e-3"], {"alpha": 0.001}),
        (["fit_intercept=false"], {"fit_intercept": False}),
        (["max_depth=null"], {"max_depth": None}),
        (["criterion=gini"], {"criterion": "gini"}),
        (['criterion="entropy"'], {"criterion": "entropy"}),
        (["hidden=[64, 32]"], {"hidden": [64, 32]}),
        (['weights={"a": 1}'], {"weights": {"a": 1}}),
        (["class_weight=balanced"], {"class_weight": "balanced"}),
        (["name=a=b"], {"name": "a=b"}),
        (["empty="], {"empty": ""}),
        (["x=NaN"], {"x": "NaN"}),
        (["x=Infinity"], {"x": "Infinity"}),
        ([" k =1"], {"k": 1}),
        (["a=1", "b=two"], {"a": 1, "b": "two"}),
    ],
)
def test_parse_params_values(pairs: list[str], expected: dict[str, Any]) -> None:
    assert parse_params(pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        (["novalue"], "expected key=value"),
        (["=1"], "expected key=value"),
        (["a=1", "a=2"], "twice"),
    ],
)
def test_parse_params_rejects_malformed_pairs(pairs: list[str], match: str) -> None:
    with pytest.raises(click.BadParameter, match=match):
        parse_params(pairs)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("a", ["a"]), ("a,b,c", ["a", "b", "c"]), (" a , b ,", ["a", "b"])],
)
def test_parse_features_splits_names(raw: str | None, expected: list[str] | None) -> None:
    assert parse_features(raw) == expected


@pytest.mark.parametrize(("raw", "match"), [(",", "comma-separated"), ("a,b,a", "twice")])
def test_parse_features_rejects_bad_lists(raw: str, match: str) -> None:
    with pytest.raises(click.BadParameter, match=match):
        parse_features(raw)


# -- predict input parsing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("007", 7),
        ("3.14", 3.14),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        (" 12 ", 12),
        ("true", True),
        ("False", False),
        ("setosa", "setosa"),
        (" padded ", " padded "),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1e999", "1e999"),
        ("1_000", "1_000"),
        ("0x1f", "0x1f"),
        ("12abc", "12abc"),
        ("١٢", "١٢"),
        ("yes", "yes"),
    ],
)
def test_convert_cell_table(cell: str | None, expected: Any) -> None:
    value = convert_cell(cell)
    assert value == expected
    assert type(value) is type(expected)


def test_read_instances_csv_converts_cells(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rows.csv",
        'sepal_length,petal_count,species,note\n5.1,3,setosa,\n,4,,"a, b"\n',
    )
    assert read_instances(path) == [
        {"sepal_length": 5.1, "petal_count": 3, "species": "setosa", "note": None},
        {"sepal_length": None, "petal_count": 4, "species": None, "note": "a, b"},
    ]


def test_read_instances_csv_handles_bom_short_rows_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes("\ufeffa, b\r\n1,2\r\n\r\n3\r\n".encode())
    assert read_instances(path) == [{"a": 1, "b": 2}, {"a": 3, "b": None}]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("rows.csv", "", "is empty"),
        ("rows.csv", "a,b\n", "holds no rows"),
        ("rows.csv", "a,b\n1,2,3\n", "line 2: 3 cells for 2 columns"),
        ("rows.csv", "a,a\n1,2\n", "names a column twice"),
        ("rows.csv", "a,\n1,2\n", "empty column name"),
        ("rows.json", "{not json", "is not valid JSON"),
        ("rows.json", "[]", "holds no rows"),
        ("rows.json", '{"rows": []}', "expected a list of objects"),
        ("rows.json", '{"instances": {"a": 1}}', "must be a list of objects"),
        ("rows.json", "[1, 2]", "instance 0 is a int, expected an object"),
        ("rows.json", '"text"', "must be a list of objects"),
        ("rows.txt", "a\n1\n", "cannot tell the format"),
    ],
)
def test_read_instances_rejects_bad_input(tmp_path: Path, name: str, text: str, match: str) -> None:
    with pytest.raises(click.ClickException, match=match):
        read_instances(write(tmp_path, name, text))


@pytest.mark.parametrize(
    "text",
    [
        '[{"a": 1, "b": "x", "c": null}, {"a": 2.5, "b": "y", "c": true}]',
        '{"instances": [{"a": 1, "b": "x", "c": null}, {"a": 2.5, "b": "y", "c": true}]}',
    ],
    ids=["list", "instances-object"],
)
def test_read_instances_json_keeps_values(tmp_path: Path, text: str) -> None:
    assert read_instances(write(tmp_path, "rows.json", text)) == [
        {"a": 1, "b": "x", "c": None},
        {"a": 2.5, "b": "y", "c": True},
    ]


def test_read_instances_format_overrides_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "rows.txt", "a,b\n1,x\n")
    assert read_instances(path, "csv") == [{"a": 1, "b": "x"}]


# -- predict command ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "query"),
    [
        ([], {}),
        (["--alias", "production"], {"alias": "production"}),
        (["--version", "1"], {"version": "1"}),
    ],
    ids=["latest", "alias", "version"],
)
def test_cli_predict_csv_posts_instances(
    invoke: Callable[..., Result],
    server: FakeServer,
    tmp_path: Path,
    extra: list[str],
    query: dict[str, str],
) -> None:
    rows = write(tmp_path, "rows.csv", "x,y,label\n1,2.5,a\n,-3,\n")

    result = invoke("predict", "iris", "--input", str(rows), *extra)

    assert result.exit_code == 0, result.output
    request = server.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/models/iris/predict")
    assert dict(request.url.params) == query
    assert json.loads(request.content) == {
        "instances": [{"x": 1, "y": 2.5, "label": "a"}, {"x": None, "y": -3, "label": None}]
    }
    assert json.loads(result.stdout)["predictions"] == [0, 0]


def test_cli_predict_json_instances_object(
    invoke: Callable[..., Result], server: FakeServer, tmp_path: Path
) -> None:
    rows = write(tmp_path, "rows.json", '{"instances": [{"x": "007", "y": null}]}')
    result = invoke("predict", "iris", "--input", str(rows))
    assert result.exit_code == 0, result.output
    assert json.loads(server.last.content) == {"instances": [{"x": "007", "y": None}]}


def test_cli_predict_writes_output_file(
    invoke: Callable[..., Result], server: FakeServer, tmp_path: Path
) -> None:
    rows = write(tmp_path, "rows.json", '[{"x": 1}, {"x": 2}, {"x": 3}]')
    out = tmp_path / "out.json"

    result = invoke("predict", "iris", "--input", str(rows), "--output", str(out))

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote 3 predictions to {out}" in result.stderr
    assert json.loads(out.read_text()) == {
        "predictions": [0, 0, 0],
        "model_name": "iris",
        "model_version": 2,
    }


def test_cli_predict_alias_and_version_is_usage_error(
    invoke: Callable[..., Result], server: FakeServer, tmp_path: Path
) -> None:
    rows = write(tmp_path, "rows.json", '[{"x": 1}]')
    result = invoke("predict", "iris", "--input", str(rows), "--alias", "a", "--version", "1")
    assert result.exit_code == 2
    assert "--alias or --version, not both" in result.stderr
    assert server.requests == []


def test_cli_predict_bad_input_exits_1_without_request(
    invoke: Callable[..., Result], server: FakeServer, tmp_path: Path
) -> None:
    rows = write(tmp_path, "rows.json", "[1]")
    result = invoke("predict", "iris", "--input", str(rows))
    assert result.exit_code == 1
    assert "instance 0 is a int" in result.stderr
    assert server.requests == []


def test_cli_predict_unknown_model_exits_1(invoke: Callable[..., Result], tmp_path: Path) -> None:
    rows = write(tmp_path, "rows.json", '[{"x": 1}]')
    result = invoke("predict", "nope", "--input", str(rows))
    assert result.exit_code == 1
    assert "(not_found, HTTP 404)" in result.stderr
