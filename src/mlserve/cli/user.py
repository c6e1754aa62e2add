"""User-facing ``mlserve`` commands that talk to a running server over REST.

Attach them to the main click group with :func:`register_user_commands`::

    mlserve datasets upload FILE [--name N]
    mlserve datasets list
    mlserve datasets show ID
    mlserve train --dataset ID --target COL --algorithm NAME --model-name NAME [...]
    mlserve jobs list
    mlserve jobs show ID
    mlserve models list
    mlserve models show NAME [--version N]
    mlserve models alias NAME ALIAS VERSION
    mlserve predict MODEL --input rows.csv|rows.json [--alias A | --version V] [--output F]

Every command takes ``--url`` (``MLSERVE_URL``) and ``--api-key``
(``MLSERVE_API_KEY``) and prints the server's JSON answer, indented, to stdout.
A server error prints its message to stderr and exits with status 1.

Tests (or embedding programs) can route the commands to an in-process server by
invoking them with ``obj={"transport": httpx.MockTransport(...)}``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click
import httpx
import orjson

from mlserve.cli.inputs import (
    convert_cell,
    parse_features,
    parse_params,
    read_instances,
)
from mlserve.client import DEFAULT_URL, ApiError, Client, ClientError

__all__ = [
    "convert_cell",
    "datasets",
    "jobs",
    "models",
    "parse_features",
    "parse_params",
    "predict",
    "read_instances",
    "register_user_commands",
    "train",
]

F = TypeVar("F", bound=Callable[..., Any])

# -- shared options and plumbing ------------------------------------------------------


def server_options(func: F) -> F:
    """Add ``--url`` and ``--api-key`` to a command."""
    func = click.option(
        "--api-key",
        envvar="MLSERVE_API_KEY",
        default=None,
        show_envvar=True,
        help="API key, sent as a bearer token.",
    )(func)
    func = click.option(
        "--url",
        envvar="MLSERVE_URL",
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="Base URL of the mlserve server.",
    )(func)
    return func


def reports_errors(func: F) -> F:
    """Turn client errors into a message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            click.echo(f"Error: {exc.message} ({exc.code}, HTTP {exc.status_code})", err=True)
            if exc.details:
                click.echo(_dumps(exc.details), err=True)
            raise click.exceptions.Exit(1) from exc
        except ClientError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            raise click.exceptions.Exit(1) from exc

    return cast(F, wrapper)


def _make_client(url: str, api_key: str | None) -> Client:
    """Build the client, with the transport injected through ``ctx.obj`` if any."""
    ctx = click.get_current_context()
    transport: httpx.BaseTransport | None = None
    obj = ctx.find_root().obj
    if isinstance(obj, dict):
        candidate = obj.get("transport")
        if isinstance(candidate, httpx.BaseTransport):
            transport = candidate
    return Client(url, api_key, transport=transport)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _echo_json(value: Any) -> None:
    click.echo(_dumps(value))


# -- parsing helpers ------------------------------------------------------------------


# -- datasets -------------------------------------------------------------------------


@click.group()
def datasets() -> None:
    """Upload and inspect datasets."""


@datasets.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Dataset name (default: the file name stem).")
@server_options
@reports_errors
def datasets_upload(file: Path, name: str | None, url: str, api_key: str | None) -> None:
    """Upload FILE (CSV, Parquet...) as a new dataset."""
    with _make_client(url, api_key) as client:
        _echo_json(client.upload_dataset(file, name=name))


@datasets.command("list")
@server_options
@reports_errors
def datasets_list(url: str, api_key: str | None) -> None:
    """List datasets."""
    with _make_client(url, api_key) as client:
        _echo_json(client.list_datasets())


@datasets.command("show")
@click.argument("dataset_id")
@server_options
@reports_errors
def datasets_show(dataset_id: str, url: str, api_key: str | None) -> None:
    """Show one dataset and its column summaries."""
    with _make_client(url, api_key) as client:
        _echo_json(client.get_dataset(dataset_id))


# -- training -------------------------------------------------------------------------


@click.command("train")
@click.option("--dataset", "dataset_id", required=True, help="Dataset id.")
@click.option("--target", required=True, help="Target column.")
@click.option(
    "--algorithm", required=True, help='Algorithm name, or "auto" (chosen by cross-validation).'
)
@click.option("--model-name", required=True, help="Model to add the new version to.")
@click.option(
    "--task",
    type=click.Choice(["regression", "classification"]),
    default=None,
    help="Task (default: inferred from the target).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hyper-parameter; VALUE is parsed as JSON when possible. Repeatable.",
)
@click.option("--features", default=None, metavar="A,B,C", help="Feature columns.")
@click.option("--test-size", type=float, default=None, help="Held-out fraction, in (0, 1).")
@click.option("--cv-folds", type=int, default=None, help="Cross-validation folds (0: none).")
@click.option("--random-state", type=int, default=None, help="Seed.")
@click.option(
    "--time-budget",
    "time_budget_s",
    type=float,
    default=None,
    help='With ALGORITHM "auto": seconds the choice may take (default 300).',
)
@click.option("--drop-duplicates", is_flag=True, help="Drop duplicate rows first.")
@click.option(
    "--keep-missing-target", is_flag=True, help="Do not drop rows whose target is missing."
)
@click.option("--wait", is_flag=True, help="Wait for the job to finish; exit 1 if it fails.")
@click.option(
    "--wait-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="With --wait: longest wait, in seconds.",
)
@server_options
@reports_errors
def train(
    dataset_id: str,
    target: str,
    algorithm: str,
    model_name: str,
    task: str | None,
    params: tuple[str, ...],
    features: str | None,
    test_size: float | None,
    cv_folds: int | None,
    random_state: int | None,
    time_budget_s: float | None,
    drop_duplicates: bool,
    keep_missing_target: bool,
    wait: bool,
    wait_timeout: float,
    url: str,
    api_key: str | None,
) -> None:
    """Queue a training job and print it (the final job with --wait)."""
    options: dict[str, Any] = {
        "task": task,
        "params": parse_params(params) or None,
        "features": parse_features(features),
        "test_size": test_size,
        "cv_folds": cv_folds,
        "random_state": random_state,
        "time_budget_s": time_budget_s,
        "drop_duplicates": True if drop_duplicates else None,
        "drop_missing_target": False if keep_missing_target else None,
    }
    with _make_client(url, api_key) as client:
        job = client.create_training_job(dataset_id, target, algorithm, model_name, **options)
        if not wait:
            _echo_json(job)
            return
        job = client.wait_for_job(job["id"], timeout_s=wait_timeout, on_change=_progress_line)
    _echo_json(job)
    if job.get("status") != "succeeded":
        click.echo(f"Error: job {job['id']} {job.get('status')}: {job.get('error')}", err=True)
        raise click.exceptions.Exit(1)


def _progress_line(job: dict[str, Any]) -> None:
    """One stderr line per change of a waited job: status, stage, percent done (stdout
    keeps the final job's JSON only, for scripts)."""
    percent = round(100 * float(job.get("progress") or 0.0))
    click.echo(f"job {job['id']}: {job.get('status')} - {job.get('stage')} ({percent} %)", err=True)


# -- jobs -----------------------------------------------------------------------------


@click.group()
def jobs() -> None:
    """Inspect training jobs."""


@jobs.command("list")
@server_options
@reports_errors
def jobs_list(url: str, api_key: str | None) -> None:
    """List training jobs."""
    with _make_client(url, api_key) as client:
        _echo_json(client.list_jobs())


@jobs.command("show")
@click.argument("job_id")
@server_options
@reports_errors
def jobs_show(job_id: str, url: str, api_key: str | None) -> None:
    """Show one training job."""
    with _make_client(url, api_key) as client:
        _echo_json(client.get_job(job_id))


# -- models ---------------------------------------------------------------------------


@click.group()
def models() -> None:
    """Inspect registered models and manage aliases."""


@models.command("list")
@server_options
@reports_errors
def models_list(url: str, api_key: str | None) -> None:
    """List registered models."""
    with _make_client(url, api_key) as client:
        _echo_json(client.list_models())


@models.command("show")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Show this version.")
@server_options
@reports_errors
def models_show(name: str, version: int | None, url: str, api_key: str | None) -> None:
    """Show a model and its versions, or one version with --version."""
    with _make_client(url, api_key) as client:
        if version is None:
            _echo_json(client.get_model(name))
        else:
            _echo_json(client.get_version(name, version))


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(min=1))
@server_options
@reports_errors
def models_alias(name: str, alias: str, version: int, url: str, api_key: str | None) -> None:
    """Point ALIAS of model NAME at VERSION."""
    with _make_client(url, api_key) as client:
        _echo_json(client.set_alias(name, alias, version))


@models.command("register")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--metadata",
    default=None,
    metavar="JSON",
    help='What the file cannot say, e.g. \'{"task": "regression", "feature_names": [...]}\'.',
)
@click.option(
    "--sample",
    default=None,
    metavar="JSON",
    help="A few rows (or {input: nested list}) the server runs before registering.",
)
@server_options
@reports_errors
def models_register(
    name: str, file: Path, metadata: str | None, sample: str | None, url: str, api_key: str | None
) -> None:
    """Register an .onnx or .skops FILE as the next version of model NAME."""
    try:
        meta = json.loads(metadata) if metadata else None
        rows = json.loads(sample) if sample else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    with _make_client(url, api_key) as client:
        _echo_json(client.register_model(name, file, sample_input=rows, metadata=meta))


# -- predictions ----------------------------------------------------------------------


@click.command("predict")
@click.argument("model")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rows to predict: a .csv file with a header, or a .json list of objects.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="Input format (default: from the file extension).",
)
@click.option("--alias", default=None, help="Use the version this alias points at.")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Use this version.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the JSON answer here instead of stdout.",
)
@server_options
@reports_errors
def predict(
    model: str,
    input_path: Path,
    fmt: str | None,
    alias: str | None,
    version: int | None,
    output: Path | None,
    url: str,
    api_key: str | None,
) -> None:
    """Predict with MODEL (alias production if set, else the latest version)."""
    if alias is not None and version is not None:
        raise click.UsageError("pass --alias or --version, not both")
    instances = read_instances(input_path, fmt)
    with _make_client(url, api_key) as client:
        result = client.predict(model, instances, alias=alias, version=version)
    if output is None:
        _echo_json(result)
        return
    output.write_text(_dumps(result) + "\n", encoding="utf-8")
    count = len(result.get("predictions") or [])
    click.echo(f"wrote {count} predictions to {output}", err=True)


# -- wiring ---------------------------------------------------------------------------

USER_COMMANDS: tuple[click.Command, ...] = (datasets, train, jobs, models, predict)


def register_user_commands(group: click.Group) -> None:
    """Attach the user commands to ``group`` (the main ``mlserve`` group).

    Adds ``datasets``, ``train``, ``jobs``, ``models`` and ``predict``. When
    ``group`` already has a sub-group of the same name (say, a server-side
    ``jobs`` group), the user sub-commands are added into it instead.

    Parameters
    ----------
    group : click.Group
        The group to extend.

    Raises
    ------
    ValueError
        A command of the same name already exists and cannot be merged.
    """
    for command in USER_COMMANDS:
        name = command.name
        assert name is not None
        existing = group.commands.get(name)
        if existing is command:
            continue  # registered already
        if existing is None:
            group.add_command(command, name)
            continue
        if not (isinstance(existing, click.Group) and isinstance(command, click.Group)):
            raise ValueError(f"the group already has a command named {name!r}")
        clashes = sorted(
            sub_name
            for sub_name, sub in command.commands.items()
            if existing.commands.get(sub_name, sub) is not sub
        )
        if clashes:
            raise ValueError(f"{name!r} already has sub-command(s) {', '.join(clashes)}")
        for sub_name, sub in command.commands.items():
            existing.add_command(sub, sub_name)
