"""``mlserve keys create/list/revoke`` (direct database access on the server's machine) and
the other way the first admin key is made: printed once by the first ``mlserve serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.bootstrap import bootstrap_admin_key, build_context
from mlserve.cli.main import main
from mlserve.context import Context
from mlserve.security import keys as auth
from mlserve.security.keys import KEY_PATTERN, Principal
from mlserve.server import prepare
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLSERVE_SECRET_KEY", raising=False)
    monkeypatch.setenv("MLSERVE_LOG_LEVEL", "WARNING")
    return tmp_path / "home"


def keys(home: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, ["keys", *args], env={"MLSERVE_HOME": str(home), **env})


@pytest.fixture
def served(home: Path) -> Iterator[Flask]:
    """The service on the same home (its database and its ``secret_key`` file)."""
    application = create_app(home=home, jobs_immediate=True, log_level="WARNING")
    yield application
    context_of(application).db.dispose()


def create(home: Path, role: str, *extra: str, **env: str) -> str:
    result = keys(home, "create", "--role", role, *extra, **env)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert KEY_PATTERN.fullmatch(key), result.stdout  # stdout is the key alone: scriptable
    assert result.stderr.strip() == f"prefix {key[4:12]}, role {role}: store the key now"
    return key


def get(app: Flask, url: str, key: str) -> int:
    return app.test_client().get(url, headers={"Authorization": f"Bearer {key}"}).status_code


def test_created_key_works_against_the_service(home: Path) -> None:
    admin = create(home, "admin", "--name", "ops")
    trainer = create(home, "trainer")
    application = create_app(home=home, jobs_immediate=True, log_level="WARNING")
    try:
        assert get(application, "/api/v1/keys", admin) == 200
        assert get(application, "/api/v1/models", trainer) == 200
        assert get(application, "/api/v1/keys", trainer) == 403
        listed = application.test_client().get(
            "/api/v1/keys", headers={"X-API-Key": admin}
        ).get_json()["keys"]  # fmt: skip
        assert [(k["prefix"], k["role"], k["name"]) for k in listed] == [
            (trainer[4:12], "trainer", ""),
            (admin[4:12], "admin", "ops"),
        ]
    finally:
        context_of(application).db.dispose()
    assert (home / "secret_key").is_file()


def test_key_created_under_another_secret_is_refused(home: Path, served: Flask) -> None:
    key = create(home, "admin", MLSERVE_SECRET_KEY="not the service's secret")
    response = served.test_client().get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    details = assert_error(response, 401, "unauthorized")
    assert details["message"] == "invalid API key"


def test_create_with_expiry(home: Path) -> None:
    create(home, "viewer", "--expires-in-days", "2")
    line = keys(home, "list").stdout.strip()
    _, role, name, created, expires, revoked, used = line.split("\t")
    assert (role, name, revoked, used) == ("viewer", "-", "-", "-")
    assert expires != "-" and expires > created


def test_list_shows_prefix_role_and_state(home: Path, served: Flask) -> None:
    viewer = create(home, "viewer", "--name", "dashboards")
    admin = create(home, "admin")
    assert get(served, "/api/v1/models", viewer) == 200
    assert keys(home, "revoke", admin[4:12]).exit_code == 0
    result = keys(home, "list")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [row[:3] for row in rows] == [
        [admin[4:12], "admin", "-"],
        [viewer[4:12], "viewer", "dashboards"],
    ]
    assert all(len(row) == 7 for row in rows)
    assert rows[0][5] != "-" and rows[1][5] == "-"  # revoked_at
    assert rows[1][6] != "-" and rows[0][6] == "-"  # last_used_at
    assert viewer not in result.output and admin not in result.output


def test_list_on_an_empty_home_prints_nothing(home: Path) -> None:
    result = keys(home, "list")
    assert (result.exit_code, result.output) == (0, "")


def test_revoke_stops_the_key(home: Path, served: Flask) -> None:
    key = create(home, "admin")
    result = keys(home, "revoke", key[4:12])
    assert result.exit_code == 0
    assert result.stdout == f"revoked {key[4:12]}\n"
    response = served.test_client().get("/api/v1/keys", headers={"X-API-Key": key})
    details = assert_error(response, 401, "unauthorized")
    assert details == {"message": "this API key was revoked", "key_prefix": key[4:12]}


def test_revoke_unknown_prefix_fails_with_a_message(home: Path) -> None:
    create(home, "admin")
    result = keys(home, "revoke", "NOPE1234")
    assert result.exit_code == 1
    assert result.stderr == "Error: api key 'NOPE1234' not found\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create"], "Missing option '--role'"),
        (["create", "--role", "root"], "'root' is not one of 'viewer', 'predictor', 'trainer'"),
        (["create", "--role", "viewer", "--expires-in-days", "0"], "0 is not in the range 0<x"),
        (["create", "--role", "viewer", "--expires-in-days", "-1"], "not in the range 0<x"),
        (["revoke"], "Missing argument 'PREFIX'"),
    ],
)
def test_usage_errors(home: Path, args: list[str], message: str) -> None:
    result = keys(home, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert keys(home, "list").stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "n" * 101], "name must be at most 100 characters"),
        (["--name", "two\nlines"], "without control characters"),
        (["--expires-in-days", "40000"], "not in the range 0<x<=36500"),
    ],
    ids=["name-too-long", "name-control-character", "lifetime-too-long"],
)
def test_invalid_key_spec_is_a_clean_error(home: Path, args: list[str], message: str) -> None:
    result = keys(home, "create", "--role", "viewer", *args)
    assert keys(home, "list").stdout == ""  # nothing was created, whatever the exit
    assert result.exit_code in (1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert message in result.stderr


# --------------------------------------------------------------------------- the bootstrap key


def test_bootstrap_admin_key_is_made_once(ctx: Context, capsys: pytest.CaptureFixture[str]) -> None:
    key = bootstrap_admin_key(ctx)
    out = capsys.readouterr().out
    assert key is not None and KEY_PATTERN.fullmatch(key)
    assert [m.group(0) for m in KEY_PATTERN.finditer(out)] == [key]
    assert ctx.keys.authenticate(key) == Principal(key[4:12], "admin")
    assert bootstrap_admin_key(ctx) is None
    assert capsys.readouterr().out == ""
    assert [(row.role, row.name) for row in auth.list_keys(ctx)] == [("admin", "bootstrap")]


def test_no_bootstrap_key_once_any_key_exists(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    created = auth.create_key(ctx, "viewer")
    auth.revoke_key(ctx, created.row.prefix)  # even a revoked one: the operator made keys
    assert bootstrap_admin_key(ctx) is None
    assert capsys.readouterr().out == ""
    assert auth.count_keys(ctx) == 1


@pytest.mark.parametrize(
    ("overrides", "made"),
    [({}, 1), ({"bootstrap_admin_key": False}, 0), ({"auth": False}, 0)],
    ids=["default", "bootstrap-off", "auth-off"],
)
def test_prepare_bootstraps_as_configured(
    settings: Settings, capsys: pytest.CaptureFixture[str], overrides: dict[str, Any], made: int
) -> None:
    configured = Settings(**{**settings.model_dump(), **overrides})
    prepare(configured, demo=False)
    printed = [m.group(0) for m in KEY_PATTERN.finditer(capsys.readouterr().out)]
    assert len(printed) == made
    ctx = build_context(configured)
    try:
        assert auth.count_keys(ctx) == made
        for key in printed:
            assert ctx.keys.authenticate(key).role == "admin"
    finally:
        ctx.db.dispose()
