"""Web UI sign-in: the session cookie, its CSRF token, and how the API accepts it.

Tables: wrong keys, ``next`` targets (open redirects), changes made through a session
with and without the token. The fast lane knows nothing of cookies: a cookie-only
prediction is replayed through Flask, which accepts the session.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes
from sqlalchemy import update

from mlserve import create_app
from mlserve.api import session as web_session
from mlserve.api.current import context_of
from mlserve.api.fastlane import PredictFastLane
from mlserve.context import Context
from mlserve.errors import Unauthorized
from mlserve.registry import service as registry
from mlserve.security import audit
from mlserve.security import keys as auth
from mlserve.settings import Settings
from mlserve.store.orm import ApiKey, utcnow
from mlserve.web.blueprint import safe_next
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import frame_csv, keyed_client, train, upload

COOKIE = "mlserve_session"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
ROWS = load_diabetes(as_frame=True).frame.drop(columns="target").iloc[:2].to_dict("records")


def sign_in(client: FlaskClient, key: str, next_url: str | None = None) -> Any:
    """Fill and post the sign-in form as a browser would; return the POST's answer."""
    page = client.get("/login")
    token = CSRF_INPUT.search(page.get_data(as_text=True))
    assert token is not None
    form = {"api_key": key, "csrf_token": token.group(1)}
    if next_url is not None:
        form["next"] = next_url
    return client.post("/login", data=form)


def page_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token a page gives its scripts (``<meta name="csrf-token">``)."""
    found = CSRF_META.search(client.get(path).get_data(as_text=True))
    assert found is not None
    return found.group(1)


def session_of(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """What the client's session cookie holds, checked with the app's signature."""
    cookie = client.get_cookie(COOKIE)
    if cookie is None:
        return {}
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data: dict[str, Any] = serializer.loads(cookie.value)
    return data


def signed_in(app: Flask, role: str) -> tuple[FlaskClient, str, auth.CreatedKey]:
    """A browser-like client signed in with a new key of ``role``, and its CSRF token."""
    created = auth.create_key(context_of(app), role, name=f"web-{role}")
    client = app.test_client()
    assert sign_in(client, created.secret).status_code == 303
    return client, page_token(client, "/login"), created


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app with ``diabetes`` v1 (ridge), trained through the API with an admin key."""
    home = tmp_path_factory.mktemp("web-session") / "home"
    app = create_app(
        Settings(home=home, jobs_immediate=True, log_level="WARNING", model_refresh_interval_ms=0)
    )
    admin = keyed_client(app)
    dataset = upload(admin, frame_csv(load_diabetes(as_frame=True).frame), "d.csv").get_json()
    job = train(
        admin, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    yield app
    context_of(app).db.dispose()


# --------------------------------------------------------------------------- signing in


def test_sign_in_starts_a_session_holding_the_prefix_never_the_key(site: Flask) -> None:
    created = auth.create_key(context_of(site), "viewer", name="web")
    client = site.test_client()
    response = sign_in(client, created.secret, "/models")
    assert (response.status_code, response.headers["Location"]) == (303, "/models")
    held = session_of(site, client)
    assert set(held) == {"prefix", "key_id", "signed_in_at", "generation", "csrf", "_permanent"}
    assert (held["prefix"], held["key_id"]) == (created.row.prefix, created.row.id)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    assert created.secret.rsplit("_", 1)[1] not in cookie.value
    assert client.get("/models").status_code == 200


def test_sign_in_replaces_the_signed_out_session(site: Flask) -> None:
    """A new CSRF token at sign-in: nothing chosen before signing in survives (fixation)."""
    created = auth.create_key(context_of(site), "viewer")
    client = site.test_client()
    before = page_token(client, "/login")
    sign_in(client, created.secret)
    assert page_token(client, "/login") != before


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "an API key is required"),
        ("garbage", "invalid API key"),
        ("forged", "invalid API key"),
        ("revoked", "this API key was revoked"),
    ],
)
def test_wrong_key_is_refused_next_to_the_field(site: Flask, kind: str, message: str) -> None:
    ctx: Context = context_of(site)
    real = auth.create_key(ctx, "admin").secret
    keys = {"empty": "", "garbage": "letmein", "forged": real[:13] + "A" * 43, "revoked": real}
    if kind == "revoked":
        auth.revoke_key(ctx, real[4:12])
    client = site.test_client()
    response = sign_in(client, keys[kind])
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert re.search(rf'id="error-api_key" role="alert">{re.escape(message)}', html)
    assert 'aria-invalid="true"' in html
    assert "prefix" not in session_of(site, client)
    assert client.get("/datasets").status_code == 302


def test_sign_in_form_needs_its_csrf_token(site: Flask) -> None:
    created = auth.create_key(context_of(site), "viewer")
    client = site.test_client()
    client.get("/login")
    response = client.post("/login", data={"api_key": created.secret, "csrf_token": "forged"})
    assert response.status_code == 403
    assert "prefix" not in session_of(site, client)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/models", "/models"),
        ("/datasets?limit=5", "/datasets?limit=5"),
        ("/models/a%2Fb/predict?version=1", "/models/a%2Fb/predict?version=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/path", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_is_only_a_path_of_this_site(site: Flask, target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
    created = auth.create_key(context_of(site), "viewer")
    response = sign_in(site.test_client(), created.secret, target)
    assert (response.status_code, response.headers["Location"]) == (303, expected)


def test_session_secret_is_derived_not_the_key_secret(site: Flask, tmp_path: Path) -> None:
    ctx: Context = context_of(site)
    label = b"mlserve web session cookie v1"
    assert site.secret_key == hmac.new(ctx.secret_key, label, hashlib.sha256).digest()
    assert site.secret_key != ctx.secret_key
    client, _, _ = signed_in(site, "viewer")
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    other = create_app(Settings(home=tmp_path / "other", log_level="WARNING"))
    try:
        stranger = other.test_client()
        stranger.set_cookie(COOKIE, cookie.value)
        assert stranger.get("/models").status_code == 302  # signed under another secret
    finally:
        context_of(other).db.dispose()


@pytest.mark.parametrize(("secure", "flags"), [(False, set()), (True, {"Secure"})])
def test_session_cookie_flags(tmp_path: Path, secure: bool, flags: set[str]) -> None:
    app = create_app(
        Settings(home=tmp_path / "home", log_level="WARNING", session_cookie_secure=secure)
    )
    try:
        header = app.test_client().get("/login").headers["Set-Cookie"]
        attributes = {part.strip().split("=")[0] for part in header.split(";")[1:]}
        assert {"HttpOnly", "SameSite", "Path"} <= attributes
        assert "SameSite=Lax" in header
        assert attributes & {"Secure"} == flags
    finally:
        context_of(app).db.dispose()


def test_sign_out_needs_the_token_then_ends_the_session(site: Flask) -> None:
    client, token, _ = signed_in(site, "viewer")
    refused = client.post("/logout", data={"csrf_token": "nope"})
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert client.get("/models").status_code == 200
    response = client.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert client.get("/models").status_code == 302


# --------------------------------------------------------------------------- the API, by session


CHANGES = [
    ("PUT", "/api/v1/models/diabetes/aliases/web", lambda t: {"json": {"version": 1}}, 200),
    ("POST", "/api/v1/models/diabetes/predict", lambda t: {"json": {"instances": ROWS}}, 200),
    (
        "POST",
        "/api/v1/datasets",
        lambda t: {
            "data": {"file": (io.BytesIO(b"a,b\n1,2\n3,4\n"), "t.csv"), **t},
            "content_type": "multipart/form-data",
        },
        201,
    ),
]


@pytest.mark.parametrize("token", ["none", "wrong", "header", "form"])
@pytest.mark.parametrize(
    ("method", "url", "build", "status"), CHANGES, ids=["alias", "predict", "upload"]
)
def test_changes_through_a_session_need_the_csrf_token(
    site: Flask, method: str, url: str, build: Any, status: int, token: str
) -> None:
    client, csrf, _ = signed_in(site, "trainer")
    sent = {"none": None, "wrong": "x" * 43, "header": csrf, "form": csrf}[token]
    kwargs = build({"csrf_token": sent} if token == "form" else {})
    if token in ("wrong", "header"):
        kwargs["headers"] = {"X-CSRF-Token": sent}
    before = stored_state(context_of(site))
    response = client.open(url, method=method, **kwargs)
    form_allowed = token == "form" and "data" in kwargs  # a form field only in form bodies
    if token == "header" or form_allowed:
        assert response.status_code == status, response.get_data(as_text=True)
        return
    details = assert_error(response, 403, "csrf_failed")
    assert details["field"] == "csrf_token"
    assert stored_state(context_of(site)) == before


def test_reading_through_a_session_needs_no_token(site: Flask) -> None:
    client, _, _ = signed_in(site, "viewer")
    assert client.get("/api/v1/models").get_json()["models"][0]["name"] == "diabetes"


def test_header_key_needs_no_token_even_beside_a_session(site: Flask) -> None:
    client, _, _ = signed_in(site, "viewer")
    trainer = auth.create_key(context_of(site), "trainer").secret
    response = client.put(
        "/api/v1/models/diabetes/aliases/header",
        json={"version": 1},
        headers={"Authorization": f"Bearer {trainer}"},
    )
    assert response.status_code == 200  # the header's key (a trainer), no token needed
    assert (
        keyed_client(site, "trainer")
        .put("/api/v1/models/diabetes/aliases/header", json={"version": 1})
        .status_code
        == 200
    )


def test_viewer_session_may_not_set_an_alias(site: Flask) -> None:
    client, token, _ = signed_in(site, "viewer")
    response = client.put(
        "/api/v1/models/diabetes/aliases/nope", json={"version": 1}, headers={"X-CSRF-Token": token}
    )
    details = assert_error(response, 403, "forbidden")
    assert (details["role"], details["permission"]) == ("viewer", "train")
    assert "nope" not in registry.aliases(context_of(site), "diabetes")


def test_revoked_key_ends_the_session(site: Flask) -> None:
    ctx: Context = context_of(site)
    client, _, created = signed_in(site, "viewer")
    assert client.get("/api/v1/models").status_code == 200
    auth.revoke_key(ctx, created.row.prefix)
    response = client.get("/api/v1/models")
    details = assert_error(response, 401, "unauthorized")
    assert details["message"] == "this API key was revoked"
    assert f"{COOKIE}=;" in response.headers["Set-Cookie"]  # cleared
    assert session_of(site, client) == {}
    page = client.get("/models")
    assert (page.status_code, page.headers["Location"]) == (302, "/login?next=/models")


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"key_id": "0" * 32}, "the API key of this session no longer exists"),
        ({"prefix": "ZZZZZZZZ"}, "the API key of this session no longer exists"),
        ({"expire": True}, "this API key has expired"),
    ],
    ids=["other-row", "unknown-prefix", "expired-key"],
)
def test_session_naming_a_key_not_in_force_is_refused(
    site: Flask, claim: dict[str, Any], message: str
) -> None:
    """Cookies signed by the server (as after a key was deleted or expired): 401, cleared."""
    ctx: Context = context_of(site)
    client, _, created = signed_in(site, "viewer")
    held = session_of(site, client)
    if claim.pop("expire", False):
        with ctx.db.session() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.prefix == created.row.prefix)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        ctx.keys.forget(created.row.prefix)
    serializer = site.session_interface.get_signing_serializer(site)  # type: ignore[attr-defined]
    client.set_cookie(COOKIE, serializer.dumps({**held, **claim}))
    details = assert_error(client.get("/api/v1/models"), 401, "unauthorized")
    assert details["message"] == message
    assert session_of(site, client) == {}


def test_session_expires_max_age_after_sign_in(
    site: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, _ = signed_in(site, "viewer")
    start = session_of(site, client)["signed_in_at"]
    max_age = context_of(site).settings.session_max_age_s
    monkeypatch.setattr(web_session.time, "time", lambda: start + max_age - 1)
    assert client.get("/api/v1/models").status_code == 200
    monkeypatch.setattr(web_session.time, "time", lambda: start + max_age + 1)
    assert_error(client.get("/api/v1/models"), 401, "unauthorized")  # the cookie's own age


@pytest.mark.parametrize(("age_s", "valid"), [(0, True), (99, True), (101, False), (-5, False)])
def test_sign_in_age_is_checked_by_the_server_too(site: Flask, age_s: float, valid: bool) -> None:
    """Even a cookie re-signed later (a refreshed timestamp) ends max age after sign-in."""
    claim = web_session.Claim("AAAAAAAA", "id", web_session.time.time() - age_s)
    with site.test_request_context("/"):
        if valid:
            web_session.check_age(claim, 100)
        else:
            with pytest.raises(Unauthorized, match="the session has expired: sign in again"):
                web_session.check_age(claim, 100)


def test_cookie_only_prediction_is_replayed_by_the_fast_lane_to_flask(site: Flask) -> None:
    lane = site.wsgi_app
    assert isinstance(lane, PredictFastLane)
    client, token, _ = signed_in(site, "predictor")
    answered = lane.answered
    response = client.post(
        "/api/v1/models/diabetes/predict",
        json={"instances": ROWS},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["predictions"]) == len(ROWS)
    assert lane.answered == answered  # Flask answered it, with the session
    refused = client.post("/api/v1/models/diabetes/predict", json={"instances": ROWS})
    assert_error(refused, 403, "csrf_failed")
    assert lane.answered == answered


def test_audit_names_the_session_key(site: Flask) -> None:
    ctx: Context = context_of(site)
    client, token, created = signed_in(site, "trainer")
    client.put(
        "/api/v1/models/diabetes/aliases/audited",
        json={"version": 1},
        headers={"X-CSRF-Token": token},
    )
    client.put("/api/v1/models/diabetes/aliases/audited", json={"version": 1})  # no token
    events = [
        audit.event_view(e)
        for e in audit.list_events(ctx, limit=10)
        if e.key_prefix == created.row.prefix
    ]
    assert [(e["method"], e["status"], e["outcome"]) for e in events][:2] == [
        ("PUT", 403, "denied"),
        ("PUT", 200, "ok"),
    ]
    login = [e for e in audit.list_events(ctx, limit=50) if e.route == "/login"]
    assert any(e.key_prefix == created.row.prefix and e.status == 303 for e in login)


def test_session_requests_count_against_the_key_rate_limit(tmp_path: Path) -> None:
    app = create_app(
        Settings(home=tmp_path / "home", log_level="WARNING", rate_limit_per_key="3/minute")
    )
    try:
        client, _, _ = signed_in(app, "viewer")  # the sign-in counts once
        assert [client.get("/api/v1/models").status_code for _ in range(2)] == [200, 200]
        assert_error(client.get("/api/v1/models"), 429, "too_many_requests")
    finally:
        context_of(app).db.dispose()


def test_failed_sign_ins_count_as_failed_authentications(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            home=tmp_path / "home", log_level="WARNING", rate_limit_auth_failures_per_ip="2/minute"
        )
    )
    try:
        client = app.test_client()
        assert [sign_in(client, "wrong").status_code for _ in range(3)] == [401, 401, 429]
    finally:
        context_of(app).db.dispose()


def test_auth_off_needs_no_sign_in_and_no_token(tmp_path: Path) -> None:
    app = create_app(
        Settings(home=tmp_path / "home", auth=False, jobs_immediate=True, log_level="WARNING")
    )
    try:
        client = app.test_client()
        page = client.get("/models")
        assert page.status_code == 200
        assert "Sign out" not in page.get_data(as_text=True)
        assert "Authentication is off" in client.get("/login").get_data(as_text=True)
        dataset = upload(client, b"a,b\n1,2\n3,4\n")
        assert dataset.status_code == 201
    finally:
        context_of(app).db.dispose()


def _copy(site: Flask, client: FlaskClient, app: Flask | None = None) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    thief = (app or site).test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief


def _create_key(client: FlaskClient, token: str) -> Any:
    return client.post(
        "/api/v1/keys", json={"role": "viewer"}, headers={web_session.CSRF_HEADER: token}
    )


def test_sign_out_ends_every_copy_of_the_session_cookie(site: Flask) -> None:
    """Issue 13 item 4: a copied cookie and its token stop working at sign-out."""
    client, token, created = signed_in(site, "admin")
    thief = _copy(site, client)
    assert _create_key(thief, token).status_code == 201
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    details = assert_error(_create_key(thief, token), 401, "unauthorized")
    assert details["message"] == "this session was signed out"
    assert thief.get("/models").status_code == 302
    again = site.test_client()  # signing in again starts a session at the new generation
    assert sign_in(again, created.secret).status_code == 303
    assert again.get("/api/v1/models").status_code == 200
    assert session_of(site, again)["generation"] == 1


def test_sign_out_ends_the_session_in_another_process(site: Flask) -> None:
    """A second app on the same database (another worker or replica) refuses the copy."""
    ctx: Context = context_of(site)
    other = create_app(
        Settings(
            home=ctx.settings.home,
            database_url=ctx.settings.database_url,
            log_level="WARNING",
            auth_cache_ttl_s=0,
            migrate_on_start=False,
        )
    )
    try:
        other.secret_key = site.secret_key  # replicas share the server secret
        client, token, _ = signed_in(site, "viewer")
        thief = _copy(site, client, other)
        assert thief.get("/api/v1/models").status_code == 200
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert_error(thief.get("/api/v1/models"), 401, "unauthorized")
    finally:
        context_of(other).db.dispose()
