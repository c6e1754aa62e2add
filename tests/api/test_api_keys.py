"""HTTP contract of /api/v1/keys: create (the key shown once), list (no secrets), revoke."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from mlserve.context import Context
from mlserve.security import keys as auth
from mlserve.security.keys import KEY_PATTERN
from mlserve.store.orm import ApiKey
from tests.api.test_api_datasets import assert_error
from tests.conftest import keyed_client

KEY_VIEW = {
    "prefix",
    "role",
    "name",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
}


def as_client(app: Flask, key: str, form: str = "bearer") -> FlaskClient:
    client = app.test_client()
    if form == "bearer":
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    else:
        client.environ_base["HTTP_X_API_KEY"] = key
    return client


def admin_prefix(app: Flask) -> str:
    secret: str = app.extensions["test_keys"]["admin"]
    return secret[4:12]


def key_rows(ctx: Context) -> list[tuple[str, str, bool]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.prefix))
        return [(r.prefix, r.role, r.revoked_at is not None) for r in rows]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("viewer", "/api/v1/models", "/api/v1/keys"),
        ("predictor", None, "/api/v1/models"),
        ("trainer", "/api/v1/training-jobs", "/api/v1/audit"),
        ("admin", "/api/v1/audit", None),
    ],
)
def test_created_key_is_shown_once_and_works_for_its_role(
    app: Flask, client: FlaskClient, role: str, allowed: str | None, refused: str | None
) -> None:
    response = client.post("/api/v1/keys", json={"role": role, "name": f"ci {role}"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == KEY_VIEW | {"key"}
    match = KEY_PATTERN.fullmatch(body["key"])
    assert match is not None and match.group(1) == body["prefix"]
    assert (body["role"], body["name"], body["created_by"]) == (
        role,
        f"ci {role}",
        admin_prefix(app),
    )
    assert body["expires_at"] is None and body["revoked_at"] is None
    assert body["last_used_at"] is None
    new = as_client(app, body["key"], form="x-api-key")
    if allowed is not None:
        assert new.get(allowed).status_code == 200
    if refused is not None:
        details = assert_error(new.get(refused), 403, "forbidden")
        assert details["role"] == role
    # the key is never shown again
    for url in ("/api/v1/keys", "/api/v1/audit"):
        assert body["key"] not in client.get(url).get_data(as_text=True)


def test_created_key_expiry(client: FlaskClient) -> None:
    body = client.post("/api/v1/keys", json={"role": "viewer", "expires_in_days": 1.5}).get_json()
    lifetime = parse(body["expires_at"]) - parse(body["created_at"])
    assert abs(lifetime - timedelta(days=1.5)) < timedelta(seconds=5)


def test_created_predictor_key_predicts_at_once(
    app: Flask, client: FlaskClient, diabetes_model: dict[str, Any]
) -> None:
    key = client.post("/api/v1/keys", json={"role": "predictor"}).get_json()["key"]
    features = [c["name"] for c in diabetes_model["dataset"]["columns"] if c["name"] != "target"]
    rows = [dict.fromkeys(features, 0.0)]
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = as_client(app, key).post(
            "/api/v1/models/diabetes/predict",
            json={"instances": rows},
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["model_version"] == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"role": "root"}, "role", "role: Input should be 'viewer', 'predictor'"),
        ({}, "role", "role: Field required"),
        ({"role": "viewer", "scope": "all"}, "scope", "scope: Extra inputs are not permitted"),
        ({"role": "viewer", "name": "n" * 101}, "name", "name: String should have at most 100"),
        ({"role": "viewer", "name": 7}, "name", "name: Input should be a valid string"),
        ({"role": "viewer", "name": "two\nlines"}, "name", "name: String should match pattern"),
        ({"role": "viewer", "expires_in_days": 0}, "expires_in_days", "greater than 0"),
        ({"role": "viewer", "expires_in_days": -3}, "expires_in_days", "greater than 0"),
        ({"role": "viewer", "expires_in_days": 36_501}, "expires_in_days", "less than or equal"),
        ({"role": "viewer", "expires_in_days": "soon"}, "expires_in_days", "valid number"),
    ],
)
def test_create_validation(
    client: FlaskClient, ctx: Context, body: dict[str, Any], field: str, message: str
) -> None:
    before = key_rows(ctx)
    details = assert_error(client.post("/api/v1/keys", json=body), 422, "validation_error")
    assert details["field"] == field
    assert details["message"].startswith(message) or message in details["message"]
    assert key_rows(ctx) == before


def test_create_with_a_non_json_body_is_refused(client: FlaskClient, ctx: Context) -> None:
    before = key_rows(ctx)
    response = client.post("/api/v1/keys", data="role=admin", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")
    assert_error(client.post("/api/v1/keys", json=["admin"]), 422, "validation_error")
    assert key_rows(ctx) == before


# --------------------------------------------------------------------------- list


def test_list_never_shows_secrets_or_hmacs(app: Flask, client: FlaskClient, ctx: Context) -> None:
    created = [
        client.post("/api/v1/keys", json={"role": r}).get_json() for r in ("viewer", "trainer")
    ]
    response = client.get("/api/v1/keys")
    assert response.status_code == 200
    listed = response.get_json()["keys"]
    assert all(set(item) == KEY_VIEW for item in listed)
    assert [item["prefix"] for item in listed] == [
        created[1]["prefix"],
        created[0]["prefix"],
        admin_prefix(app),
    ]
    text = response.get_data(as_text=True)
    with ctx.db.session() as session:
        hmacs = list(session.scalars(select(ApiKey.key_hmac)))
    assert len(hmacs) == 3
    for secret in [c["key"] for c in created] + [app.extensions["test_keys"]["admin"]]:
        assert secret not in text and secret[13:] not in text
    assert not any(h in text for h in hmacs)


def test_list_shows_last_use(app: Flask, client: FlaskClient) -> None:
    key = client.post("/api/v1/keys", json={"role": "viewer"}).get_json()
    assert as_client(app, key["key"]).get("/api/v1/models").status_code == 200
    listed = {k["prefix"]: k for k in client.get("/api/v1/keys").get_json()["keys"]}
    used = listed[key["prefix"]]["last_used_at"]
    assert used is not None and parse(used) >= parse(key["created_at"])


# --------------------------------------------------------------------------- revoke


@pytest.mark.parametrize("form", ["bearer", "x-api-key"])
def test_revoked_key_is_refused_at_once(app: Flask, client: FlaskClient, form: str) -> None:
    key = client.post("/api/v1/keys", json={"role": "trainer"}).get_json()
    own = as_client(app, key["key"], form)
    assert own.get("/api/v1/models").status_code == 200  # now cached in this process
    response = client.delete(f"/api/v1/keys/{key['prefix']}")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == KEY_VIEW and body["prefix"] == key["prefix"]
    assert body["revoked_at"] is not None
    refused = own.get("/api/v1/models")
    details = assert_error(refused, 401, "unauthorized")
    assert details == {"message": "this API key was revoked", "key_prefix": key["prefix"]}
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="mlserve"'
    listed = {k["prefix"]: k for k in client.get("/api/v1/keys").get_json()["keys"]}
    assert listed[key["prefix"]]["revoked_at"] == body["revoked_at"]
    again = client.delete(f"/api/v1/keys/{key['prefix']}")
    assert again.status_code == 200 and again.get_json()["revoked_at"] == body["revoked_at"]


def test_revoke_unknown_prefix_is_404(client: FlaskClient, ctx: Context) -> None:
    before = key_rows(ctx)
    details = assert_error(client.delete("/api/v1/keys/AAAAAAAA"), 404, "not_found")
    assert details == {
        "message": "api key 'AAAAAAAA' not found",
        "resource": "api key",
        "key": "AAAAAAAA",
    }
    assert key_rows(ctx) == before


def test_admin_can_revoke_its_own_key(app: Flask, client: FlaskClient) -> None:
    assert client.delete(f"/api/v1/keys/{admin_prefix(app)}").status_code == 200
    assert_error(client.get("/api/v1/keys"), 401, "unauthorized")


# --------------------------------------------------------------------------- non-admins


@pytest.mark.parametrize("role", ["viewer", "predictor", "trainer"])
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/keys", {"role": "admin"}),
        ("GET", "/api/v1/keys", None),
        ("DELETE", "/api/v1/keys/{admin}", None),
        ("GET", "/api/v1/audit", None),
    ],
)
def test_non_admin_is_forbidden(
    app: Flask,
    ctx: Context,
    client: FlaskClient,
    role: str,
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    keyed = keyed_client(app, role)
    before = key_rows(ctx)
    response = keyed.open(url.format(admin=admin_prefix(app)), method=method, json=body)
    details = assert_error(response, 403, "forbidden")
    assert details == {
        "message": f"role '{role}' may not do this (needs 'admin')",
        "role": role,
        "permission": "admin",
    }
    assert key_rows(ctx) == before
    assert auth.count_keys(ctx) == len(before)
