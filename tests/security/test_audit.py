"""The audit log: one event per mutating request, whatever its outcome; never for predictions."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.security import audit
from mlserve.security import keys as auth
from mlserve.settings import Settings
from mlserve.store.orm import AuditEvent, as_utc, utcnow
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, train, upload

EVENT_FIELDS = {
    "id",
    "at",
    "key_prefix",
    "remote_addr",
    "method",
    "route",
    "object",
    "status",
    "outcome",
}


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """One app for the module with ``diabetes`` v1 trained; tests look at the events
    written after their own start only, and revoke keys of their own."""
    from sklearn.datasets import load_diabetes

    application = create_app(
        Settings(
            home=tmp_path_factory.mktemp("audit") / "home", jobs_immediate=True, log_level="WARNING"
        )
    )
    admin = keyed_client(application)
    frame = load_diabetes(as_frame=True).frame
    dataset = upload(admin, frame_csv(frame), "diabetes.csv").get_json()
    job = train(
        admin, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    yield application, {"dataset": dataset, "job": job}
    context_of(application).db.dispose()


@pytest.fixture
def shared_app(audited: tuple[Flask, dict[str, Any]]) -> Flask:
    return audited[0]


@pytest.fixture
def shared_ctx(shared_app: Flask) -> Context:
    context: Context = context_of(shared_app)
    return context


@pytest.fixture
def model(audited: tuple[Flask, dict[str, Any]]) -> dict[str, Any]:
    return audited[1]


def last_id(ctx: Context) -> int:
    with ctx.db.session() as session:
        return max(session.scalars(select(AuditEvent.id)), default=0)


def events_after(ctx: Context, after: int) -> list[AuditEvent]:
    with ctx.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)
        return list(session.scalars(query))


def prefix_of(app: Flask, role: str) -> str:
    keyed_client(app, role)  # makes the key if needed
    secret: str = app.extensions["test_keys"][role]
    return secret[4:12]


@pytest.mark.parametrize(
    "outcome",
    [
        *[(200, "ok"), (204, "ok"), (302, "ok"), (401, "denied"), (403, "denied")],
        *[(429, "denied"), (404, "rejected"), (409, "rejected"), (413, "rejected")],
        *[(415, "rejected"), (422, "rejected"), (500, "error"), (503, "error")],
    ],
    ids=str,
)
def test_outcome_of(outcome: tuple[int, str]) -> None:
    status, expected = outcome
    assert audit.outcome_of(status) == expected


# --------------------------------------------------------------------------- one event per request


Request = Callable[[Flask, dict[str, Any]], Any]


def _upload(role: str) -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        form = {"file": (io.BytesIO(b"a,b\n1,2\n3,4\n5,6\n"), "t.csv")}
        return keyed_client(app, role).post(
            "/api/v1/datasets", data=form, content_type="multipart/form-data"
        )

    return send


def _train(role: str | None, body: dict[str, Any] | None = None, **kw: Any) -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        spec = body if body is not None else {
            "dataset_id": model["dataset"]["id"],
            "target": "target",
            "algorithm": "ridge",
            "model_name": "audited",
            "cv_folds": 0,
        }  # fmt: skip
        client = keyed_client(app, role) if role else app.test_client()
        if "content_type" in kw:
            return client.post("/api/v1/training-jobs", data=json.dumps(spec), **kw)
        return client.post("/api/v1/training-jobs", json=spec, **kw)

    return send


def _set_alias(role: str, alias: str = "production") -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        url = f"/api/v1/models/diabetes/aliases/{alias}"
        return keyed_client(app, role).put(url, json={"version": 1})

    return send


def _delete_alias(role: str, alias: str) -> Request:
    def send_delete(app: Flask, model: dict[str, Any]) -> Any:
        return keyed_client(app, role).delete(f"/api/v1/models/diabetes/aliases/{alias}")

    return send_delete


def _create_key(role: str) -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        return keyed_client(app, role).post("/api/v1/keys", json={"role": "viewer"})

    return send


def _revoke_key(role: str) -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        target = auth.create_key(context_of(app), "viewer", name="target").row.prefix
        model["target"] = target
        return keyed_client(app, role).delete(f"/api/v1/keys/{target}")

    return send


def _with_key(key: Callable[[Context], str]) -> Request:
    def send(app: Flask, model: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {key(context_of(app))}"}
        return app.test_client().put(
            "/api/v1/models/diabetes/aliases/production", json={"version": 1}, headers=headers
        )

    return send


def _revoked_admin(ctx: Context) -> str:
    created = auth.create_key(ctx, "admin")
    auth.revoke_key(ctx, created.row.prefix)
    return created.secret


# (request, status, key role whose prefix is recorded or None, method, route, object)
MUTATIONS = [
    pytest.param(
        _upload("trainer"), 201, "trainer", "POST", "/api/v1/datasets", "created", id="upload"
    ),
    pytest.param(
        _train("trainer"), 202, "trainer", "POST", "/api/v1/training-jobs", "created", id="train"
    ),
    pytest.param(
        _set_alias("trainer"),
        200,
        "trainer",
        "PUT",
        "/api/v1/models/<name>/aliases/<alias>",
        "diabetes/production",
        id="set-alias",
    ),
    pytest.param(
        _create_key("admin"), 201, "admin", "POST", "/api/v1/keys", "created", id="create-key"
    ),
    pytest.param(
        _revoke_key("admin"),
        200,
        "admin",
        "DELETE",
        "/api/v1/keys/<prefix>",
        "target",
        id="revoke-key",
    ),
    pytest.param(
        _upload("viewer"), 403, "viewer", "POST", "/api/v1/datasets", None, id="denied-403"
    ),
    pytest.param(
        _create_key("trainer"), 403, "trainer", "POST", "/api/v1/keys", None, id="denied-403-keys"
    ),
    pytest.param(_train(None), 401, None, "POST", "/api/v1/training-jobs", None, id="denied-401"),
    pytest.param(
        _with_key(lambda ctx: "mls_AAAAAAAA_" + "x" * 43),
        401,
        None,
        "PUT",
        "/api/v1/models/<name>/aliases/<alias>",
        "diabetes/production",
        id="denied-401-unknown-key",
    ),
    pytest.param(
        _train("trainer", {"target": "target"}),
        422,
        "trainer",
        "POST",
        "/api/v1/training-jobs",
        None,
        id="rejected-422",
    ),
    pytest.param(
        _train("trainer", content_type="text/plain"),
        415,
        "trainer",
        "POST",
        "/api/v1/training-jobs",
        None,
        id="rejected-415",
    ),
    pytest.param(
        _delete_alias("trainer", "missing"),
        404,
        "trainer",
        "DELETE",
        "/api/v1/models/<name>/aliases/<alias>",
        "diabetes/missing",
        id="rejected-404",
    ),
]


@pytest.mark.parametrize(("send", "status", "role", "method", "route", "obj"), MUTATIONS)
def test_each_mutating_request_writes_one_event(
    shared_app: Flask,
    shared_ctx: Context,
    model: dict[str, Any],
    send: Request,
    status: int,
    role: str | None,
    method: str,
    route: str,
    obj: str | None,
) -> None:
    app, ctx = shared_app, shared_ctx
    if role is not None:
        keyed_client(app, role)
    before, start = last_id(ctx), utcnow()
    response = send(app, model)
    assert response.status_code == status, response.get_data(as_text=True)
    if obj == "target":
        obj = model.pop("target")
    if obj == "created":  # what the request created: its id, or a key's prefix
        body = response.get_json()
        obj = body.get("id") or body["prefix"]
    events = events_after(ctx, before)
    assert len(events) == 1, [(e.method, e.route, e.status) for e in events]
    got = audit.event_view(events[0])
    assert as_utc(got.pop("at")) - start < timedelta(seconds=30)
    assert as_utc(events[0].at) >= start - timedelta(seconds=1)
    assert got == {
        "id": before + 1,
        "key_prefix": prefix_of(app, role) if role else None,
        "remote_addr": "127.0.0.1",
        "method": method,
        "route": route,
        "object": obj,
        "status": status,
        "outcome": audit.outcome_of(status),
    }


def test_delete_alias_writes_one_event(shared_app: Flask, shared_ctx: Context) -> None:
    app, ctx, client = shared_app, shared_ctx, keyed_client(shared_app)
    assert client.put("/api/v1/models/diabetes/aliases/staging", json={"version": 1}).status_code
    before = last_id(ctx)
    response = keyed_client(app, "trainer").delete("/api/v1/models/diabetes/aliases/staging")
    assert response.status_code == 204
    [row] = events_after(ctx, before)
    assert (row.key_prefix, row.method, row.route, row.object, row.status, row.outcome) == (
        prefix_of(app, "trainer"),
        "DELETE",
        "/api/v1/models/<name>/aliases/<alias>",
        "diabetes/staging",
        204,
        "ok",
    )


def test_denied_revoked_key_is_audited_with_its_prefix(
    shared_app: Flask, shared_ctx: Context, model: dict[str, Any]
) -> None:
    app, ctx = shared_app, shared_ctx
    secret = _revoked_admin(ctx)
    before = last_id(ctx)
    response = _with_key(lambda _: secret)(app, model)
    details = assert_error(response, 401, "unauthorized")
    assert details["key_prefix"] == secret[4:12]
    [row] = events_after(ctx, before)
    assert (row.outcome, row.status) == ("denied", 401)
    assert row.key_prefix == secret[4:12]


def test_creations_are_audited_with_the_created_object(
    shared_app: Flask, shared_ctx: Context, model: dict[str, Any]
) -> None:
    app, ctx = shared_app, shared_ctx
    before = last_id(ctx)
    dataset = _upload("trainer")(app, model).get_json()["id"]
    job = _train("trainer")(app, model).get_json()["id"]
    key = keyed_client(app).post("/api/v1/keys", json={"role": "viewer"}).get_json()["prefix"]
    objects = [row.object for row in events_after(ctx, before)]
    assert objects == [dataset, job, key]


# --------------------------------------------------------------------------- not audited


def test_predictions_and_reads_are_not_audited(
    shared_app: Flask, shared_ctx: Context, model: dict[str, Any]
) -> None:
    app, ctx, client = shared_app, shared_ctx, keyed_client(shared_app)
    rows = [{c["name"]: 0.01 for c in model["dataset"]["columns"] if c["name"] != "target"}]
    body = json.dumps({"instances": rows})
    before = last_id(ctx)
    predictor = keyed_client(app, "predictor")
    for url in ("/api/v1/models/diabetes/predict", "/v1/models/diabetes:predict"):
        for content_type in ("application/json", "application/json; charset=utf-8"):
            assert predictor.post(url, data=body, content_type=content_type).status_code == 200
    assert predictor.post("/api/v1/models/nope/predict", json={"instances": rows}).status_code == (
        404
    )
    csv = ",".join(rows[0]) + "\n" + ",".join(str(v) for v in rows[0].values()) + "\n"
    sent = predictor.post(
        "/api/v1/models/diabetes/predict/csv",
        data={"file": (io.BytesIO(csv.encode()), "rows.csv")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 200, sent.get_data(as_text=True)
    denied = app.test_client().post("/api/v1/models/diabetes/predict", json={"instances": rows})
    assert denied.status_code == 401
    for url in ("/api/v1/models", "/api/v1/datasets", "/api/v1/keys", "/api/v1/audit", "/health"):
        assert client.get(url).status_code == 200
    assert events_after(ctx, before) == []


# --------------------------------------------------------------------------- GET /api/v1/audit


def test_audit_list_is_newest_first_with_limit_and_offset(app: Flask, client: FlaskClient) -> None:
    trainer = keyed_client(app, "trainer")
    for alias in ("a", "b", "c", "d", "e"):  # five 404s on unknown model: rejected events
        assert trainer.delete(f"/api/v1/models/m/aliases/{alias}").status_code == 404
    created = client.post("/api/v1/keys", json={"role": "viewer", "name": "x"})
    assert created.status_code == 201
    response = client.get("/api/v1/audit")
    assert response.status_code == 200
    events = response.get_json()["events"]
    assert all(set(e) == EVENT_FIELDS for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert [(e["method"], e["object"], e["outcome"]) for e in events[:6]] == [
        ("POST", created.get_json()["prefix"], "ok"),
        *[("DELETE", f"m/{a}", "rejected") for a in "edcba"],
    ]
    page = client.get("/api/v1/audit?limit=2&offset=1").get_json()["events"]
    assert page == events[1:3]
    assert client.get("/api/v1/audit?limit=1&offset=100").get_json() == {"events": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"), ("limit=x", "limit")],
)
def test_audit_list_validation(client: FlaskClient, query: str, field: str) -> None:
    details = assert_error(client.get(f"/api/v1/audit?{query}"), 422, "validation_error")
    assert details["field"] == field


def test_audit_with_auth_off_records_no_prefix(tmp_path: Path) -> None:
    application = create_app(
        Settings(home=tmp_path / "home", auth=False, jobs_immediate=True, log_level="WARNING")
    )
    ctx: Context = context_of(application)
    try:
        response = application.test_client().post("/api/v1/keys", json={"role": "viewer"})
        assert response.status_code == 201
        [row] = events_after(ctx, 0)
        assert (row.key_prefix, row.route, row.status, row.outcome) == (
            None,
            "/api/v1/keys",
            201,
            "ok",
        )
    finally:
        ctx.db.dispose()


# --------------------------------------------------------------------------- write failures


def test_failure_to_write_an_event_does_not_fail_the_request(
    app: Flask, ctx: Context, caplog: pytest.LogCaptureFixture, diabetes_frame: Any
) -> None:
    def refuse(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT"):
            raise OperationalError(statement, {}, Exception("disk I/O error"))

    trainer = keyed_client(app, "trainer")
    event.listen(ctx.db.engine, "before_cursor_execute", refuse)
    try:
        with caplog.at_level(logging.ERROR, logger="mlserve.security.audit"):
            form = {"file": (io.BytesIO(frame_csv(diabetes_frame.head(30))), "d.csv")}
            response = trainer.post(
                "/api/v1/datasets", data=form, content_type="multipart/form-data"
            )
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", refuse)
    assert response.status_code == 201, response.get_json()
    assert trainer.get(f"/api/v1/datasets/{response.get_json()['id']}").status_code == 200
    assert events_after(ctx, 0) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "mlserve.security.audit"]
    assert len(messages) == 1
    assert messages[0].startswith("audit event not written (POST /api/v1/datasets 201)")
    # the next request is recorded again
    assert trainer.delete("/api/v1/models/m/aliases/a").status_code == 404
    assert [e.status for e in events_after(ctx, 0)] == [404]
