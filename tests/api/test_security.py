"""Who may call what: the route-permission walk, the full auth matrix and the OpenAPI security.

The matrix sends one request per (route, credential) to one shared app: every route of
the URL map, with concrete ids from a trained model and a valid body, so an authorized
request succeeds with its documented status and a refused one says 401 or 403 (and
changes nothing). :data:`ROUTES` is checked against the URL map, so a new route
without a row here fails :func:`test_matrix_covers_every_route`.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from apiflask import APIBlueprint
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes
from sqlalchemy import func, select, update

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.api.fastlane import PredictFastLane
from mlserve.api.security import permission_of
from mlserve.api.v2 import V2_ERROR
from mlserve.context import Context
from mlserve.registry import service as registry
from mlserve.security import keys as auth
from mlserve.server import check_auth_binding
from mlserve.settings import Settings
from mlserve.store.orm import ApiKey, ModelVersion, utcnow
from tests.api.test_api_datasets import assert_error, stored_state
from tests.api.test_fastlane import same_but_ids
from tests.conftest import frame_csv, keyed_client, train, upload

# --------------------------------------------------------------------------- the permission table

# What the issue asks, written out independently of src: endpoint -> permission.
# "docs" is public while settings.public_docs, else "read".
ERROR_OUT = {"$ref": "#/components/schemas/ErrorOut"}
EXPECTED_PERMISSIONS = {
    "static": "public",
    "health.health": "public",
    "health.ready": "public",
    "openapi.spec": "docs",
    "openapi.docs": "docs",
    "openapi.swagger_ui_oauth_redirect": "docs",
    "docs_assets.asset": "docs",
    "datasets.upload": "train",
    "datasets.list_datasets": "read",
    "datasets.get_dataset": "read",
    "datasets.preview": "read",
    "algorithms.list_algorithms": "read",
    "training_jobs.create_job": "train",
    "training_jobs.list_jobs": "read",
    "training_jobs.get_job": "read",
    "training_jobs.cancel_job": "train",
    "models.list_models": "read",
    "models.get_model": "read",
    "models.list_versions": "read",
    "models.get_version": "read",
    "models.get_evaluation": "read",
    "models.set_alias": "train",
    "models.delete_alias": "train",
    "models.import_version": "train",
    "traffic.get_alias": "read",
    "traffic.get_comparison": "read",
    "traffic.promote": "train",
    "explain.explain_v1": "predict",
    "predict.model_status_kserve": "predict",
    "v2.server_metadata": "public",
    "v2.live": "public",
    "v2.ready": "public",
    "v2.model_metadata": "read",
    "v2.version_metadata": "read",
    "v2.model_ready": "read",
    "v2.version_ready": "read",
    "v2.infer": "predict",
    "v2.infer_version": "predict",
    "predict.predict_v1": "predict",
    "predict.predict_kserve": "predict",
    "predict.predict_csv": "predict",
    "online.post_samples": "train",
    "online.get_online": "read",
    "online.post_online_update": "train",
    "online.post_retrain": "train",
    "online.post_feedback": "predict",
    "online.get_live_metrics": "read",
    "online.get_drift": "read",
    "metrics.prometheus": "metrics",
    "keys.create_key": "admin",
    "keys.list_keys": "admin",
    "keys.revoke_key": "admin",
    "keys.list_audit": "admin",
    # the web UI: pages need read; signing in and out, and the UI's files, are public
    "web.static": "public",
    "web.plotly_js": "public",
    "web.login": "public",
    "web.logout": "public",
    "web.home": "read",
    "web.datasets": "read",
    "web.dataset": "read",
    "web.train": "read",
    "web.job": "read",
    "web.models": "read",
    "web.model": "read",
    "web.compare": "read",
    "web.version": "read",
    "web.predict_picker": "read",
    "web.predict": "read",
    "web.traffic": "read",
    "web.api_access": "read",
}
ROLE_GRANTS = {
    "viewer": {"read"},
    "predictor": {"predict"},
    "trainer": {"read", "predict", "train"},
    "admin": {"read", "predict", "train", "admin"},
}
SECURITY_REQUIREMENT = [{"bearer": []}, {"apiKeyHeader": []}]
FLASK_JSON = "application/json; charset=utf-8"  # same body, but the fast lane leaves it to Flask
WWW_AUTHENTICATE = 'Bearer realm="mlserve"'


def undeclared(app: Flask) -> list[str]:
    """Endpoints of ``app`` that declare no permission (the walk the module docstring names)."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    return sorted(e for e in endpoints if permission_of(app, e) is None)


def effective(permission: str, public_docs: bool = True, public_metrics: bool = False) -> str:
    if permission == "docs":
        return "public" if public_docs else "read"
    if permission == "metrics":
        return "public" if public_metrics else "read"
    return permission


# --------------------------------------------------------------------------- the served app


def diabetes_rows(n: int) -> list[dict[str, Any]]:
    frame = load_diabetes(as_frame=True).frame.drop(columns="target")
    rows: list[dict[str, Any]] = frame.iloc[5 : 5 + n].to_dict("records")
    return rows


@dataclass
class Served:
    """One app with a trained ``diabetes`` v1, a small dataset and keys of every kind."""

    app: Flask
    ctx: Context
    admin: FlaskClient
    dataset_id: str
    small_csv: bytes
    job_id: str
    keys: dict[str, str] = field(default_factory=dict)

    def throwaway_prefix(self) -> str:
        return auth.create_key(self.ctx, "viewer", name="throwaway").row.prefix

    def ensure_alias(self, alias: str) -> str:
        registry.set_alias(self.ctx, "diabetes", alias, 1)
        return alias

    def logged_prediction(self) -> str:
        """The id of a fresh prediction of ``diabetes``, written to the prediction log."""
        response = self.admin.post(
            "/api/v1/models/diabetes/predict", json={"instances": PREDICT_ROWS}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert self.ctx.prediction_log.flush()
        prediction_id: str = response.get_json()["prediction_id"]
        return prediction_id


def build_served(home: Path, **overrides: Any) -> Served:
    app = create_app(
        Settings(
            home=home,
            jobs_immediate=True,
            log_level="WARNING",
            prediction_log_sample_rate=1.0,
            **overrides,
        )
    )
    ctx: Context = context_of(app)
    admin = keyed_client(app) if ctx.settings.auth else app.test_client()
    frame = load_diabetes(as_frame=True).frame
    dataset = upload(admin, frame_csv(frame), "diabetes.csv").get_json()
    job = train(
        admin, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    stream = train(  # an incremental model, for the online learning routes
        admin,
        dataset["id"],
        target="target",
        algorithm="sgd_regressor",
        model_name="stream",
        cv_folds=0,
    ).get_json()
    assert stream["status"] == "succeeded", stream
    return Served(app, ctx, admin, dataset["id"], frame_csv(frame.head(40)), job["id"])


def make_credentials(served: Served) -> None:
    """Keys of each role, and admin keys that are revoked, expired, forged or malformed."""
    ctx = served.ctx
    for role in ROLE_GRANTS:
        served.keys[role] = auth.create_key(ctx, role, name=f"matrix-{role}").secret
    revoked = auth.create_key(ctx, "admin", name="revoked")
    auth.revoke_key(ctx, revoked.row.prefix)
    served.keys["revoked"] = revoked.secret
    expired = auth.create_key(ctx, "admin", name="expired", expires_in_days=1)
    with ctx.db.session() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == expired.row.prefix)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    ctx.keys.forget(expired.row.prefix)
    served.keys["expired"] = expired.secret
    real = served.keys["admin"]
    # the right format and an existing admin prefix, but not its secret
    served.keys["unknown"] = real[:13] + ("A" if real[13] != "A" else "B") + real[14:]
    served.keys["malformed"] = real[:-1]  # one character short of the format


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    state = build_served(tmp_path_factory.mktemp("matrix") / "home")
    make_credentials(state)
    yield state
    state.ctx.db.dispose()


# --------------------------------------------------------------------------- the route table


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    status: int  # what an authorized request answers
    build: Callable[[Served], Call]


def _get(url: str) -> Callable[[Served], Call]:
    return lambda s: Call("GET", url.format(s=s))


def _newest(s: Served) -> int:
    """The newest version of ``diabetes`` (the one this served app trained last)."""
    with s.ctx.db.session() as session:
        query = select(func.max(ModelVersion.version)).where(ModelVersion.model_name == "diabetes")
        return int(session.scalar(query) or 1)


def _upload(s: Served) -> Call:
    form = {"file": (io.BytesIO(s.small_csv), "small.csv")}
    return Call("POST", "/api/v1/datasets", {"data": form, "content_type": "multipart/form-data"})


def _train(s: Served) -> Call:
    spec = {
        "dataset_id": s.dataset_id,
        "target": "target",
        "algorithm": "ridge",
        "model_name": "matrix",
        "cv_folds": 0,
    }
    return Call("POST", "/api/v1/training-jobs", {"json": spec})


def _predict_csv(s: Served) -> Call:
    form = {"file": (io.BytesIO(s.small_csv), "rows.csv")}
    return Call(
        "POST",
        "/api/v1/models/diabetes/predict/csv",
        {"data": form, "content_type": "multipart/form-data"},
    )


PREDICT_ROWS = diabetes_rows(3)
ROUTES: dict[str, Route] = {
    "static": Route(404, _get("/static/missing.txt")),
    "health.health": Route(200, _get("/health")),
    "health.ready": Route(200, _get("/ready")),
    "openapi.spec": Route(200, _get("/openapi.json")),
    "openapi.docs": Route(200, _get("/docs")),
    "openapi.swagger_ui_oauth_redirect": Route(200, _get("/docs/oauth2-redirect")),
    "docs_assets.asset": Route(200, _get("/docs/assets/swagger-ui.css")),
    "datasets.upload": Route(201, _upload),
    "datasets.list_datasets": Route(200, _get("/api/v1/datasets?limit=5")),
    "datasets.get_dataset": Route(200, _get("/api/v1/datasets/{s.dataset_id}")),
    "datasets.preview": Route(200, _get("/api/v1/datasets/{s.dataset_id}/preview?rows=3")),
    "algorithms.list_algorithms": Route(200, _get("/api/v1/algorithms?task=regression")),
    "training_jobs.create_job": Route(202, _train),
    "training_jobs.list_jobs": Route(200, _get("/api/v1/training-jobs")),
    "training_jobs.get_job": Route(200, _get("/api/v1/training-jobs/{s.job_id}")),
    "training_jobs.cancel_job": Route(  # the job has finished: nothing to cancel
        409, lambda s: Call("POST", f"/api/v1/training-jobs/{s.job_id}/cancel")
    ),
    "models.list_models": Route(200, _get("/api/v1/models")),
    "models.get_model": Route(200, _get("/api/v1/models/diabetes")),
    "models.list_versions": Route(200, _get("/api/v1/models/diabetes/versions")),
    "models.get_version": Route(200, _get("/api/v1/models/diabetes/versions/1")),
    "models.get_evaluation": Route(200, _get("/api/v1/models/diabetes/versions/1/evaluation")),
    "models.set_alias": Route(
        200,
        lambda s: Call("PUT", "/api/v1/models/diabetes/aliases/staging", {"json": {"version": 1}}),
    ),
    "models.delete_alias": Route(
        204,
        lambda s: Call("DELETE", f"/api/v1/models/diabetes/aliases/{s.ensure_alias('doomed')}"),
    ),
    "models.import_version": Route(
        422,
        lambda s: Call(
            "POST",
            "/api/v1/models/imported/versions",
            {"data": {"file": (io.BytesIO(b""), "m.onnx")}, "content_type": "multipart/form-data"},
        ),
    ),
    "traffic.get_alias": Route(
        200, lambda s: Call("GET", f"/api/v1/models/diabetes/aliases/{s.ensure_alias('seen')}")
    ),
    "traffic.get_comparison": Route(  # a plain alias: its one version
        200,
        lambda s: Call(
            "GET", f"/api/v1/models/diabetes/aliases/{s.ensure_alias('seen')}/comparison"
        ),
    ),
    "traffic.promote": Route(
        409,
        lambda s: Call(
            "POST",
            f"/api/v1/models/diabetes/aliases/{s.ensure_alias('seen')}/promote",
            {"json": {}},
        ),
    ),
    "explain.explain_v1": Route(  # an unknown model: answered before any explainer loads
        404,
        lambda s: Call(
            "POST", "/api/v1/models/nope/explain", {"json": {"instances": PREDICT_ROWS}}
        ),
    ),
    "predict.model_status_kserve": Route(200, _get("/v1/models/diabetes")),
    "v2.server_metadata": Route(200, _get("/v2")),
    "v2.live": Route(200, _get("/v2/health/live")),
    "v2.ready": Route(200, _get("/v2/health/ready")),
    "v2.model_metadata": Route(200, _get("/v2/models/diabetes")),
    "v2.version_metadata": Route(200, _get("/v2/models/diabetes/versions/1")),
    "v2.model_ready": Route(200, _get("/v2/models/diabetes/ready")),
    # The newest version: in the PostgreSQL pass both served apps of this module share one
    # schema, and a version's file is in the home of the app that trained it.
    "v2.version_ready": Route(
        200, lambda s: Call("GET", f"/v2/models/diabetes/versions/{_newest(s)}/ready")
    ),
    "v2.infer": Route(
        422, lambda s: Call("POST", "/v2/models/diabetes/infer", {"json": {"inputs": []}})
    ),
    "v2.infer_version": Route(
        422,
        lambda s: Call("POST", "/v2/models/diabetes/versions/1/infer", {"json": {"inputs": []}}),
    ),
    "predict.predict_v1": Route(
        200,
        lambda s: Call(
            "POST", "/api/v1/models/diabetes/predict", {"json": {"instances": PREDICT_ROWS}}
        ),
    ),
    "predict.predict_kserve": Route(
        200,
        lambda s: Call(
            "POST", "/v1/models/diabetes:predict", {"json": {"instances": PREDICT_ROWS}}
        ),
    ),
    "predict.predict_csv": Route(200, _predict_csv),
    "online.post_samples": Route(
        201,
        lambda s: Call(
            "POST",
            "/api/v1/models/diabetes/samples",
            {"json": {"instances": PREDICT_ROWS, "targets": [150.0, 80.5, 200]}},
        ),
    ),
    "online.get_online": Route(200, _get("/api/v1/models/diabetes/online")),
    "online.post_online_update": Route(
        202, lambda s: Call("POST", "/api/v1/models/stream/online-update")
    ),
    "online.post_retrain": Route(202, lambda s: Call("POST", "/api/v1/models/stream/retrain")),
    "online.post_feedback": Route(
        200,
        lambda s: Call(
            "POST",
            f"/api/v1/predictions/{s.logged_prediction()}/feedback",
            {"json": {"targets": [150.0, 80.5, 200]}},
        ),
    ),
    "online.get_live_metrics": Route(200, _get("/api/v1/models/diabetes/versions/1/live-metrics")),
    "online.get_drift": Route(200, _get("/api/v1/models/diabetes/versions/1/drift")),
    "metrics.prometheus": Route(200, _get("/metrics")),
    "keys.create_key": Route(
        201, lambda s: Call("POST", "/api/v1/keys", {"json": {"role": "viewer", "name": "m"}})
    ),
    "keys.list_keys": Route(200, _get("/api/v1/keys")),
    "keys.revoke_key": Route(200, lambda s: Call("DELETE", f"/api/v1/keys/{s.throwaway_prefix()}")),
    "keys.list_audit": Route(200, _get("/api/v1/audit?limit=3")),
    "web.static": Route(200, _get("/static/ui/css/mlserve.css")),
    "web.plotly_js": Route(200, _get("/static/vendor/plotly.min.js")),
    "web.login": Route(200, _get("/login")),
    "web.logout": Route(303, lambda s: Call("POST", "/logout")),
    "web.home": Route(200, _get("/")),
    "web.datasets": Route(200, _get("/datasets")),
    "web.dataset": Route(200, _get("/datasets/{s.dataset_id}")),
    "web.train": Route(200, _get("/train?dataset={s.dataset_id}")),
    "web.job": Route(200, _get("/jobs/{s.job_id}")),
    "web.models": Route(200, _get("/models")),
    "web.model": Route(200, _get("/models/diabetes")),
    "web.compare": Route(200, _get("/models/diabetes/compare?a=1&b=1")),
    "web.version": Route(200, _get("/models/diabetes/versions/1")),
    "web.predict_picker": Route(200, _get("/predict")),
    "web.predict": Route(200, _get("/models/diabetes/predict")),
    "web.traffic": Route(  # a plain alias: the page shows its one version
        200, lambda s: Call("GET", f"/models/diabetes/aliases/{s.ensure_alias('seen')}/traffic")
    ),
    "web.api_access": Route(200, _get("/api-access")),
}
# Pages answer people, not programs: no valid key sends them to the sign-in form.
WEB_PAGES = {e for e, p in EXPECTED_PERMISSIONS.items() if e.startswith("web.") and p != "public"}
# (credential, header form): what a request carries. None: no key at all.
INVALID = {
    "malformed": "invalid API key",
    "unknown": "invalid API key",
    "revoked": "this API key was revoked",
    "expired": "this API key has expired",
}
CREDENTIALS = [("none", None)] + [
    (kind, form) for kind in [*INVALID, *ROLE_GRANTS] for form in ("bearer", "x-api-key")
]


def headers_for(served: Served, kind: str, form: str | None) -> dict[str, str]:
    if form is None:
        return {}
    key = served.keys[kind]
    return {"Authorization": f"Bearer {key}"} if form == "bearer" else {"X-API-Key": key}


def key_state(ctx: Context) -> list[tuple[str, bool]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.prefix))
        return [(row.prefix, row.revoked_at is not None) for row in rows]


_ADDRESSES = itertools.count(1)


def fresh_client(app: Flask) -> FlaskClient:
    """A client with an address of its own: the matrix's many refused requests must not
    reach the per-address limit of failed authentications (a feature tested elsewhere)."""
    client = app.test_client()
    n = next(_ADDRESSES)
    client.environ_base["REMOTE_ADDR"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return client


def send(client: FlaskClient, call: Call, headers: dict[str, str]) -> Any:
    return client.open(call.url, method=call.method, headers=headers, **call.kwargs)


# --------------------------------------------------------------------------- (a) the walk


def test_every_route_declares_a_permission(app: Flask) -> None:
    assert undeclared(app) == []


def test_permission_table_is_the_issue_table(app: Flask) -> None:
    declared = {
        rule.endpoint: permission_of(app, rule.endpoint) for rule in app.url_map.iter_rules()
    }
    assert declared == EXPECTED_PERMISSIONS


def test_matrix_covers_every_route(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(ROUTES)


def test_walk_detects_undeclared_route_and_it_fails_closed(settings: Settings) -> None:
    application = create_app(settings)
    dummy = APIBlueprint("dummy", __name__, url_prefix="/dummy")

    @dummy.get("/thing")
    def thing() -> dict[str, bool]:
        return {"ok": True}

    application.register_blueprint(dummy)
    try:
        assert undeclared(application) == ["dummy.thing"]
        assert_error(application.test_client().get("/dummy/thing"), 401, "unauthorized")
        for role in ("viewer", "predictor", "trainer"):
            details = assert_error(
                keyed_client(application, role).get("/dummy/thing"), 403, "forbidden"
            )
            assert (details["role"], details["permission"]) == (role, "admin")
        response = keyed_client(application, "admin").get("/dummy/thing")
        assert (response.status_code, response.get_json()) == (200, {"ok": True})
    finally:
        context_of(application).db.dispose()


# --------------------------------------------------------------------------- (b) the matrix


@pytest.mark.parametrize(("kind", "form"), CREDENTIALS, ids=[f"{k}-{f}" for k, f in CREDENTIALS])
@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_auth_matrix(served: Served, endpoint: str, kind: str, form: str | None) -> None:
    route = ROUTES[endpoint]
    call = route.build(served)
    permission = effective(EXPECTED_PERMISSIONS[endpoint])
    allowed = permission == "public" or (kind in ROLE_GRANTS and permission in ROLE_GRANTS[kind])
    mutating = call.method in ("POST", "PUT", "DELETE")
    before = None if allowed or not mutating else (stored_state(served.ctx), key_state(served.ctx))
    response = send(fresh_client(served.app), call, headers_for(served, kind, form))

    if allowed:
        assert response.status_code == route.status, response.get_data(as_text=True)[:500]
        return
    if endpoint in WEB_PAGES:
        if kind == "none" or kind in INVALID:
            assert response.status_code == 302
            location = urlsplit(response.headers["Location"])
            assert (location.path, parse_qs(location.query)) == ("/login", {"next": [call.url]})
        else:
            assert (response.status_code, response.mimetype) == (403, "text/html")
        return
    if call.url.startswith("/v2/"):  # the Open Inference Protocol's {"error": "<message>"}
        assert response.status_code == (401 if kind == "none" or kind in INVALID else 403)
        assert isinstance(response.get_json()["error"], str)
    elif kind == "none" or kind in INVALID:
        details = assert_error(response, 401, "unauthorized")
        expected = INVALID.get(kind, "an API key is required")
        assert details["message"].startswith(expected)
        assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
    else:
        details = assert_error(response, 403, "forbidden")
        assert (details["role"], details["permission"]) == (kind, permission)
        assert "WWW-Authenticate" not in response.headers
    if before is not None:  # a refused change changed nothing
        assert (stored_state(served.ctx), key_state(served.ctx)) == before


@pytest.mark.parametrize(("kind", "form"), CREDENTIALS, ids=[f"{k}-{f}" for k, f in CREDENTIALS])
@pytest.mark.parametrize("endpoint", ["predict.predict_v1", "predict.predict_kserve"])
def test_fast_lane_answers_as_flask_for_every_credential(
    served: Served, endpoint: str, kind: str, form: str | None
) -> None:
    lane = served.app.wsgi_app
    assert isinstance(lane, PredictFastLane)
    call = ROUTES[endpoint].build(served)
    headers = headers_for(served, kind, form)
    client = fresh_client(served.app)
    answered = lane.answered
    fast = client.post(call.url, json=call.kwargs["json"], headers=headers)
    allowed = kind in ROLE_GRANTS and "predict" in ROLE_GRANTS[kind]
    assert lane.answered == answered + allowed  # the lane answered exactly the allowed ones
    slow = client.post(
        call.url, data=json.dumps(call.kwargs["json"]), content_type=FLASK_JSON, headers=headers
    )
    assert lane.answered == answered + allowed
    assert fast.status_code == slow.status_code
    assert fast.status_code in ((200,) if allowed else (401, 403))
    assert same_but_ids(fast.data, slow.data)  # the same bytes, whichever lane answered
    assert fast.headers.get("WWW-Authenticate") == slow.headers.get("WWW-Authenticate")


def test_bearer_wins_over_x_api_key(served: Served) -> None:
    """Both headers sent: the ``Authorization`` one is the key checked, in both lanes."""
    viewer, predictor = served.keys["viewer"], served.keys["predictor"]
    client = fresh_client(served.app)
    both = {"Authorization": f"Bearer {viewer}", "X-API-Key": predictor}
    assert client.get("/api/v1/models", headers=both).status_code == 200
    body = {"instances": PREDICT_ROWS}
    for content_type in ("application/json", FLASK_JSON):
        response = client.post(
            "/api/v1/models/diabetes/predict",
            data=json.dumps(body),
            content_type=content_type,
            headers=both,
        )
        assert_error(response, 403, "forbidden")


# --------------------------------------------------------------------------- (c) OpenAPI


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def documented_operations(app: Flask) -> dict[tuple[str, str], str]:
    """(METHOD, OpenAPI path) -> endpoint, for every route APIFlask documents."""
    operations = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXPECTED_PERMISSIONS and not rule.endpoint.startswith(
            ("static", "openapi.", "docs_assets.", "web.")
        ):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                operations[(method, openapi_path(rule.rule))] = rule.endpoint
    return operations


def spec_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    }


def test_openapi_documents_each_operation_security(client: FlaskClient, app: Flask) -> None:
    spec = client.get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <key>",
    }
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    operations = spec_operations(spec)
    expected = documented_operations(app)
    assert set(operations) == set(expected)
    for (method, path), operation in operations.items():
        permission = effective(EXPECTED_PERMISSIONS[expected[(method, path)]])
        where = f"{method} {path}"
        if permission == "public":
            assert operation["security"] == [], where
            assert "401" not in operation["responses"], where
            continue
        assert operation["security"] == SECURITY_REQUIREMENT, where
        for status in ("401", "403"):
            content = operation["responses"][status]["content"]["application/json"]
            want = V2_ERROR if where.split()[-1].startswith("/v2") else ERROR_OUT
            assert content["schema"] == want, where


def test_openapi_description_names_each_operation_permission(
    client: FlaskClient, app: Flask
) -> None:
    operations = spec_operations(client.get("/openapi.json").get_json())
    expected = documented_operations(app)
    wrong = {}
    for key, operation in operations.items():
        permission = effective(EXPECTED_PERMISSIONS[expected[key]])
        if permission == "public":
            continue
        if f"Needs the `{permission}` permission." not in operation.get("description", ""):
            wrong[" ".join(key)] = operation.get("description", "")[-40:]
    assert wrong == {}


def test_openapi_with_auth_off_requires_nothing(tmp_path: Path) -> None:
    application = create_app(Settings(home=tmp_path / "home", auth=False, log_level="WARNING"))
    try:
        spec = application.test_client().get("/openapi.json").get_json()
        operations = spec_operations(spec)
        assert len(operations) == len(documented_operations(application))
        assert {str(op["security"]) for op in operations.values()} == {"[]"}
    finally:
        context_of(application).db.dispose()


# --------------------------------------------------------------------------- (d) settings


DOCS_URLS = ["/openapi.json", "/docs", "/docs/oauth2-redirect", "/docs/assets/swagger-ui.css"]


def test_private_docs_need_a_read_key(tmp_path: Path) -> None:
    application = create_app(
        Settings(
            home=tmp_path / "home", public_docs=False, jobs_immediate=True, log_level="WARNING"
        )
    )
    try:
        anonymous = application.test_client()
        for url in DOCS_URLS:
            response = anonymous.get(url)
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
            details = assert_error(
                keyed_client(application, "predictor").get(url), 403, "forbidden"
            )
            assert details["permission"] == "read"
            for role in ("viewer", "trainer", "admin"):
                assert keyed_client(application, role).get(url).status_code == 200, (url, role)
        for url in ("/health", "/ready"):
            assert anonymous.get(url).status_code == 200
        spec = keyed_client(application, "viewer").get("/openapi.json").get_json()
        assert spec_operations(spec)[("GET", "/health")]["security"] == []
        assert spec_operations(spec)[("GET", "/api/v1/models")]["security"] == SECURITY_REQUIREMENT
    finally:
        context_of(application).db.dispose()


@pytest.fixture(scope="module")
def served_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    state = build_served(tmp_path_factory.mktemp("open") / "home", auth=False)
    yield state
    state.ctx.db.dispose()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer garbage"}], ids=["no", "bad"])
@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_auth_off_opens_every_route(
    served_open: Served, endpoint: str, headers: dict[str, str]
) -> None:
    route = ROUTES[endpoint]
    response = send(fresh_client(served_open.app), route.build(served_open), headers)
    assert response.status_code == route.status, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize(
    ("auth_on", "host", "refused"),
    [
        (False, "0.0.0.0", True),
        (False, "::", True),
        (False, "192.0.2.10", True),
        (False, "example.org", True),
        (False, "127.0.0.1", False),
        (False, "localhost", False),
        (False, "::1", False),
        (True, "0.0.0.0", False),
        (True, "::", False),
    ],
)
def test_auth_off_is_refused_off_loopback(auth_on: bool, host: str, refused: bool) -> None:
    settings = Settings(auth=auth_on, host=host)
    if refused:
        with pytest.raises(
            SystemExit, match=re.escape(f"refusing to serve without authentication on {host}:")
        ):
            check_auth_binding(settings)
    else:
        check_auth_binding(settings)
