"""The prediction fast lane answers plain successful predictions; Flask answers the rest alike."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes, load_iris
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.api.fastlane import ROUTE, TYPED_MIN_BYTES, PredictFastLane
from mlserve.context import Context
from mlserve.errors import Conflict
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, train, upload

MAX_ROWS = 5
JSON = "application/json"
FLASK_JSON = "application/json; charset=utf-8"  # same body, but the lane leaves it to Flask
V1 = "/api/v1/models/{}/predict"
KSERVE = "/v1/models/{}:predict"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the module: ``diabetes`` v1 (production) and v2, ``iris`` v1.

    Every test here only predicts (or is refused), so the state is shared.
    """
    home = tmp_path_factory.mktemp("fastlane") / "home"
    application = create_app(
        Settings(
            home=home,
            jobs_immediate=True,
            log_level="WARNING",
            max_batch_rows=MAX_ROWS,
            model_refresh_interval_ms=0,
        )
    )
    client = keyed_client(application)
    diabetes = upload(client, frame_csv(load_diabetes(as_frame=True).frame), "d.csv").get_json()
    for algorithm in ("ridge", "lasso"):
        job = train(
            client, diabetes["id"], target="target", algorithm=algorithm,
            model_name="diabetes", cv_folds=0,
        ).get_json()  # fmt: skip
        assert job["status"] == "succeeded", job
    bunch = load_iris(as_frame=True)
    iris_frame = bunch.frame
    iris_frame["target"] = bunch.target_names[bunch.target]
    iris = upload(client, frame_csv(iris_frame), "iris.csv").get_json()
    job = train(
        client, iris["id"], target="target", algorithm="logistic_regression",
        model_name="iris", cv_folds=0,
    ).get_json()  # fmt: skip
    assert job["status"] == "succeeded", job
    response = client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1})
    assert response.status_code == 200
    yield application
    context_of(application).db.dispose()


@pytest.fixture
def client(served: Flask) -> FlaskClient:
    return keyed_client(served)


@pytest.fixture
def lane(served: Flask) -> PredictFastLane:
    middleware = served.wsgi_app
    assert isinstance(middleware, PredictFastLane)
    return middleware


@pytest.fixture(params=["usual", "typed"])
def decoding(request: pytest.FixtureRequest, lane: PredictFastLane) -> Iterator[str]:
    """Records bodies decoded the usual way, or by the version's features at any size
    (:mod:`mlserve.api.typedjson`, from ``TYPED_MIN_BYTES`` otherwise)."""
    if request.param == "typed":
        lane.typed_min_bytes = 0
    yield request.param
    lane.typed_min_bytes = TYPED_MIN_BYTES


def diabetes_rows(n: int) -> list[dict[str, Any]]:
    frame = load_diabetes(as_frame=True).frame.drop(columns="target")
    rows: list[dict[str, Any]] = frame.iloc[10 : 10 + n].to_dict("records")
    return rows


def iris_rows(n: int) -> list[dict[str, Any]]:
    frame = load_iris(as_frame=True).frame.drop(columns="target")
    rows: list[dict[str, Any]] = frame.iloc[::50].head(n).to_dict("records")
    return rows


def body(rows: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"instances": rows, **extra}).encode()


def post(
    client: FlaskClient, url: str, data: bytes, content_type: str | None = JSON, **kwargs: Any
) -> TestResponse:
    if content_type is not None:
        kwargs["content_type"] = content_type
    return client.post(url, data=data, **kwargs)


PREDICTION_ID = re.compile(rb'"prediction_id":"[0-9a-f]{32}"')


def same_but_ids(got: bytes, expected: bytes) -> bool:
    """The same bytes once each body's (random, distinct) ``prediction_id`` is blanked."""
    ids = PREDICTION_ID.findall(got), PREDICTION_ID.findall(expected)
    assert len(ids[0]) == len(ids[1]) <= 1
    assert not ids[0] or ids[0] != ids[1]
    blank = b'"prediction_id":"-"'
    return PREDICTION_ID.sub(blank, got) == PREDICTION_ID.sub(blank, expected)


def assert_same(got: TestResponse, expected: TestResponse) -> None:
    """Same status, same bytes (prediction ids aside), same content type."""
    assert got.status_code == expected.status_code
    assert same_but_ids(got.data, expected.data)
    assert got.headers["Content-Type"] == expected.headers["Content-Type"] == JSON
    assert got.headers["Content-Length"] == str(len(got.data))
    for name in ("X-Content-Type-Options", "Cache-Control", "Content-Security-Policy"):
        assert got.headers[name] == expected.headers[name], name


# --------------------------------------------------------------------------- answered by the lane

SUCCESSES = [
    pytest.param(V1.format("diabetes"), diabetes_rows(1), id="v1-one-row"),
    pytest.param(V1.format("diabetes"), diabetes_rows(MAX_ROWS), id="v1-max-rows"),
    pytest.param(V1.format("diabetes") + "?alias=production", diabetes_rows(2), id="alias"),
    pytest.param(V1.format("diabetes") + "?alias=latest", diabetes_rows(2), id="alias-latest"),
    pytest.param(V1.format("diabetes") + "?version=2", diabetes_rows(2), id="version"),
    pytest.param(V1.format("iris"), iris_rows(3), id="v1-classifier"),
    pytest.param(KSERVE.format("diabetes"), diabetes_rows(3), id="kserve"),
    pytest.param(KSERVE.format("iris"), iris_rows(2), id="kserve-classifier"),
    pytest.param(
        KSERVE.format("diabetes"),
        [list(row.values()) for row in diabetes_rows(2)],
        id="kserve-list-form",
    ),
    pytest.param(
        V1.format("diabetes"), [diabetes_rows(1)[0] | {"bmi": None}], id="v1-null-imputed"
    ),
]


@pytest.mark.parametrize(("url", "rows"), SUCCESSES)
def test_lane_answers_plain_prediction_as_flask_would(
    client: FlaskClient,
    lane: PredictFastLane,
    decoding: str,
    url: str,
    rows: list[dict[str, Any]],
) -> None:
    before, typed = lane.answered, lane.typed
    fast = post(client, url, body(rows))
    assert fast.status_code == 200, fast.get_json()
    assert lane.answered == before + 1
    assert lane.typed == typed + (decoding == "typed" and type(rows[0]) is dict)
    flask = post(client, url, body(rows), FLASK_JSON)
    assert lane.answered == before + 1
    assert_same(fast, flask)
    payload = fast.get_json()
    assert len(payload["predictions"]) == len(rows)
    if url.startswith("/v1/"):
        assert set(payload) == {"predictions", "prediction_id"}


def test_lane_answers_with_warnings_and_extra_keys_as_flask_would(
    client: FlaskClient, lane: PredictFastLane
) -> None:
    rows = [row | {"bmi": None, "patient_id": 7} for row in diabetes_rows(2)]
    before = lane.answered
    fast = post(client, V1.format("diabetes"), body(rows, extra="ignore"))
    assert fast.status_code == 200, fast.get_json()
    assert lane.answered == before + 1
    assert_same(fast, post(client, V1.format("diabetes"), body(rows, extra="ignore"), FLASK_JSON))
    assert fast.get_json()["warnings"] == [
        {"row": 0, "field": "bmi", "warning": "null_imputed"},
        {"row": 1, "field": "bmi", "warning": "null_imputed"},
    ]
    refused = post(client, V1.format("diabetes"), body(rows))
    assert lane.answered == before + 1
    error = assert_error(refused, 422, "validation_error")
    assert error["field"] == "patient_id"
    assert 'send extra: "ignore"' in error["message"]


@pytest.mark.parametrize(
    ("query", "version"),
    [("", 1), ("?alias=production", 1), ("?version=2", 2), ("?alias=latest", 2)],
)
def test_lane_selects_the_version_the_query_names(
    client: FlaskClient, lane: PredictFastLane, decoding: str, query: str, version: int
) -> None:
    before = lane.answered
    payload = post(client, V1.format("diabetes") + query, body(diabetes_rows(2))).get_json()
    assert lane.answered == before + 1
    assert (payload["model_name"], payload["model_version"]) == ("diabetes", version)


def test_lane_answers_without_content_type(client: FlaskClient, lane: PredictFastLane) -> None:
    data = body(iris_rows(3))
    before = lane.answered
    fast = post(client, V1.format("iris"), data, content_type=None)
    assert lane.answered == before + 1
    assert_same(fast, post(client, V1.format("iris"), data, FLASK_JSON))
    payload = fast.get_json()
    assert payload["classes"] == ["setosa", "versicolor", "virginica"]
    assert payload["predictions"] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(np.sum(payload["probabilities"], axis=1), 1.0, atol=1e-12)


# --------------------------------------------------------------------------- left to Flask


def _without_length(
    app: Flask, url: str, data: bytes, terminated: bool, content_type: str = JSON
) -> TestResponse:
    """POST ``data`` chunked: no Content-Length, the server marks the input terminated or not."""
    environ = EnvironBuilder(
        url,
        method="POST",
        data=data,
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked", "Authorization": _authorization(app)},
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = terminated
    return _call(app, environ)


def _authorization(app: Flask) -> str:
    """The ``Authorization`` header of the app's test admin key."""
    return str(keyed_client(app).environ_base["HTTP_AUTHORIZATION"])


def _call(app: Any, environ: dict[str, Any]) -> TestResponse:
    """Run a WSGI ``app`` on a hand-made ``environ``."""
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    return TestResponse(app_iter, status, headers, request=None)  # type: ignore[arg-type]


DECLINED_SUCCESSES = [
    # (id, url, body, content type): Flask answers 200; the lane does not.
    ("kserve-with-query", KSERVE.format("diabetes") + "?version=2", body(diabetes_rows(1)), JSON),
    ("unknown-query-parameter", V1.format("diabetes") + "?foo=1", body(diabetes_rows(1)), JSON),
    (
        "repeated-query-parameter",
        V1.format("diabetes") + "?version=2&version=2",
        body(diabetes_rows(1)),
        JSON,
    ),
    ("json-suffix-type", V1.format("diabetes"), body(diabetes_rows(1)), "application/x+json"),
]


@pytest.mark.parametrize(
    ("url", "data", "content_type"),
    [pytest.param(*case[1:], id=case[0]) for case in DECLINED_SUCCESSES],
)
def test_lane_leaves_unusual_successful_requests_to_flask(
    client: FlaskClient, lane: PredictFastLane, url: str, data: bytes, content_type: str
) -> None:
    before = lane.answered
    response = post(client, url, data, content_type)
    assert response.status_code == 200, response.get_json()
    assert lane.answered == before
    assert_same(response, post(client, url, data, FLASK_JSON))


@pytest.mark.parametrize("terminated", [True, False])
def test_body_without_content_length_goes_to_flask(
    served: Flask, client: FlaskClient, lane: PredictFastLane, terminated: bool
) -> None:
    url, data = V1.format("diabetes"), body(diabetes_rows(3))
    before = lane.answered
    chunked = _without_length(served, url, data, terminated)
    assert lane.answered == before
    assert chunked.status_code == 200, chunked.get_json()
    assert_same(chunked, post(client, url, data, FLASK_JSON))


def _row(**changes: Any) -> dict[str, Any]:
    return {**diabetes_rows(1)[0], **changes}


DIABETES = V1.format("diabetes")
ONE = body(diabetes_rows(1))
ERRORS = [
    # (id, url, body, status, code, details["field"] or None)
    ("malformed-json", DIABETES, b'{"instances": [', 400, "malformed_json", None),
    ("empty-body", DIABETES, b"", 400, "malformed_json", None),
    ("body-array", DIABETES, b"[1, 2]", 422, "validation_error", "instances"),
    ("body-string", DIABETES, b'"instances"', 422, "validation_error", "instances"),
    ("body-null", DIABETES, b"null", 422, "validation_error", "instances"),
    ("no-instances", DIABETES, b'{"rows": []}', 422, "validation_error", "instances"),
    ("extra-field", DIABETES, body(diabetes_rows(1), extra=1), 422, "validation_error", "extra"),
    (
        "instances-object",
        DIABETES,
        b'{"instances": {"age": 1}}',
        422,
        "validation_error",
        "instances",
    ),
    ("instances-empty", DIABETES, body([]), 422, "validation_error", "instances"),
    ("instance-not-object", DIABETES, b'{"instances": [1]}', 422, "validation_error", "instances"),
    (
        "instance-wrong-type",
        DIABETES,
        body([_row(), _row(bmi="x")]),
        422,
        "validation_error",
        "bmi",
    ),
    ("instance-missing", DIABETES, body([{"age": 0.1}]), 422, "validation_error", "sex"),
    ("instance-extra", DIABETES, body([_row(colour=1)]), 422, "validation_error", "colour"),
    # null is accepted now that every feature is imputed; a short list row is not.
    ("instance-short-list", DIABETES, body([[0.1, 0.2]]), 422, "validation_error", "instances"),
    ("extra-option", DIABETES, body([_row()], extra="maybe"), 422, "validation_error", "extra"),
    ("nan-token", DIABETES, body([_row(s1=math.nan)]), 422, "validation_error", "s1"),
    ("infinity-token", DIABETES, body([_row(), _row(s2=-math.inf)]), 422, "validation_error", "s2"),
    (
        "overflowing-number",
        DIABETES,
        re.sub(rb'"s3": [^,]+', b'"s3": 1e400', ONE),
        422,
        "validation_error",
        "s3",
    ),
    (
        "too-many-rows",
        DIABETES,
        body(diabetes_rows(MAX_ROWS + 1)),
        413,
        "payload_too_large",
        "instances",
    ),
    ("unknown-model", V1.format("nope"), ONE, 404, "not_found", None),
    ("kserve-unknown-model", KSERVE.format("nope"), ONE, 404, "not_found", None),
    ("kserve-invalid", KSERVE.format("iris"), ONE, 422, "validation_error", "age"),
    ("unknown-alias", DIABETES + "?alias=canary", ONE, 404, "not_found", None),
    ("unknown-version", DIABETES + "?version=9", ONE, 404, "not_found", None),
    ("empty-alias", DIABETES + "?alias=", ONE, 422, "validation_error", "alias"),
    ("long-alias", DIABETES + "?alias=" + "a" * 65, ONE, 422, "validation_error", "alias"),
    ("version-zero", DIABETES + "?version=0", ONE, 422, "validation_error", "version"),
    ("version-text", DIABETES + "?version=one", ONE, 422, "validation_error", "version"),
    ("version-negative", DIABETES + "?version=-1", ONE, 422, "validation_error", "version"),
    ("version-long", DIABETES + "?version=1234567890", ONE, 422, "validation_error", "version"),
    (
        "alias-and-version",
        DIABETES + "?alias=production&version=1",
        ONE,
        422,
        "validation_error",
        "alias",
    ),
    ("trailing-slash", DIABETES + "/", ONE, 404, "not_found", None),
    # every key once, but one twice: taken apart by msgspec, refused by the colon count
    ("duplicate-key", DIABETES, ONE[:-3] + b', "age": 1}]}', 400, "malformed_json", None),
    ("duplicate-instances", DIABETES, ONE[:-1] + b", " + ONE[1:], 400, "malformed_json", None),
    ("text-with-colon", DIABETES, body([_row(bmi="1:2")]), 422, "validation_error", "bmi"),
    ("a-list-value", DIABETES, body([_row(bmi=[1])]), 422, "validation_error", "bmi"),
    ("a-boolean-value", DIABETES, body([_row(), _row(s4=True)]), 422, "validation_error", "s4"),
]


@pytest.mark.parametrize(
    ("url", "data", "status", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in ERRORS],
)
def test_errors_are_flasks_whichever_way_they_came(
    client: FlaskClient,
    lane: PredictFastLane,
    decoding: str,
    url: str,
    data: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = lane.answered
    fast = post(client, url, data)
    assert lane.answered == before
    details = assert_error(fast, status, code)
    assert details.get("field") == field  # the replayed body was read
    assert_same(fast, post(client, url, data, FLASK_JSON))
    assert lane.answered == before


MUTATIONS: list[Any] = [
    None, True, False, "x", "1:2", "", 2**70, -(2**64), 1e308, 0, 1, [1], {"v": 1}, math.nan,
]  # fmt: skip


def random_body(rng: random.Random) -> bytes:
    """1 to 6 diabetes rows (6: over the module's limit), some values, keys and fields
    changed, some keys repeated."""
    rows = diabetes_rows(rng.randint(1, MAX_ROWS + 1))
    for row in rows:
        change = rng.random()
        if change < 0.3:
            row[rng.choice(list(row))] = rng.choice(MUTATIONS)
        elif change < 0.35:
            del row[rng.choice(list(row))]
        elif change < 0.4:
            row["patient_id"] = 7
    options = rng.choice([{}, {}, {"extra": "ignore"}, {"extra": "bogus"}, {"routing_key": "u"}])
    data = json.dumps({"instances": rows, **options}).encode()
    if rng.random() < 0.1:
        data = data.replace(b'"age": ', b'"age": 0, "age": ', 1)
    return data


@pytest.mark.parametrize("seed", range(2))
def test_typed_decoding_answers_random_bodies_as_flask(
    client: FlaskClient, lane: PredictFastLane, seed: int
) -> None:
    """At any size, every answer (success or error) is Flask's, and the typed decoding
    answers the well-formed bodies."""
    lane.typed_min_bytes = 0
    try:
        rng = random.Random(seed)
        before = lane.typed
        for _ in range(80):
            data = random_body(rng)
            assert_same(post(client, DIABETES, data), post(client, DIABETES, data, FLASK_JSON))
        assert lane.typed - before >= 20
    finally:
        lane.typed_min_bytes = TYPED_MIN_BYTES


def test_typed_decoding_starts_at_its_size(client: FlaskClient, lane: PredictFastLane) -> None:
    data = body(diabetes_rows(3))
    lane.typed_min_bytes = len(data) + 1
    try:
        before = lane.typed
        assert post(client, DIABETES, data).status_code == 200
        assert lane.typed == before
        lane.typed_min_bytes = len(data)
        assert post(client, DIABETES, data).status_code == 200
        assert lane.typed == before + 1
    finally:
        lane.typed_min_bytes = TYPED_MIN_BYTES


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "text/json"],
)
def test_wrong_content_type_is_415_from_flask(
    client: FlaskClient, lane: PredictFastLane, content_type: str
) -> None:
    before = lane.answered
    response = post(client, DIABETES, body(diabetes_rows(1)), content_type)
    details = assert_error(response, 415, "unsupported_media_type")
    assert details["content_type"] == content_type
    assert lane.answered == before


def test_body_over_size_limit_is_413_from_flask(
    served: Flask, client: FlaskClient, lane: PredictFastLane, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = body(diabetes_rows(3))
    monkeypatch.setitem(served.config, "MAX_CONTENT_LENGTH", len(data) - 1)
    monkeypatch.setattr(lane, "max_body_bytes", len(data) - 1)
    before = lane.answered
    fast = post(client, DIABETES, data)
    details = assert_error(fast, 413, "payload_too_large")
    assert details["content_length"] == len(data)
    assert fast.headers["Connection"] == "close"
    assert_same(fast, post(client, DIABETES, data, FLASK_JSON))
    assert lane.answered == before
    ok = post(client, DIABETES, body(diabetes_rows(1)))  # just under the limit
    assert ok.status_code == 200
    assert lane.answered == before + 1


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (Conflict("model artifact is missing from the store"), 409, "conflict"),
        (RuntimeError("boom"), 500, "internal_error"),
    ],
    ids=["conflict", "unexpected"],
)
def test_failing_prediction_is_replayed_through_flask(
    served: Flask,
    client: FlaskClient,
    lane: PredictFastLane,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    status: int,
    code: str,
) -> None:
    ctx: Context = context_of(served)

    def broken(row: Any) -> Any:
        raise raised

    monkeypatch.setattr(ctx.models, "get", broken)
    before = lane.answered
    data = body(diabetes_rows(1))
    fast = post(client, DIABETES, data)
    assert_error(fast, status, code)
    assert_same(fast, post(client, DIABETES, data, FLASK_JSON))
    assert lane.answered == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("url", [DIABETES, KSERVE.format("diabetes")], ids=["v1", "kserve"])
def test_other_methods_are_405(
    client: FlaskClient, lane: PredictFastLane, method: str, url: str
) -> None:
    before = lane.answered
    response = client.open(url, method=method, data=body(diabetes_rows(1)), content_type=JSON)
    assert_error(response, 405, "method_not_allowed")
    assert lane.answered == before


def test_other_routes_pass_through(client: FlaskClient, lane: PredictFastLane) -> None:
    before = lane.answered
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/api/v1/models/diabetes").get_json()["aliases"] == {"production": 1}
    response = client.put("/api/v1/models/iris/aliases/staging", json={"version": 1})
    assert response.status_code == 200
    assert client.delete("/api/v1/models/iris/aliases/staging").status_code == 204
    assert lane.answered == before


@pytest.mark.parametrize("content_type", [JSON, FLASK_JSON], ids=["lane", "flask"])
def test_non_ascii_digit_version_is_422(client: FlaskClient, content_type: str) -> None:
    response = post(client, DIABETES + "?version=%C2%B2", ONE, content_type)
    assert assert_error(response, 422, "validation_error")["field"] == "version"


def test_non_ascii_digit_content_length_is_left_to_flask(served: Flask) -> None:
    environ = EnvironBuilder(
        DIABETES,
        method="POST",
        data=ONE,
        content_type=JSON,
        headers={"Authorization": _authorization(served)},
    ).get_environ()
    environ["CONTENT_LENGTH"] = "\xb2"  # a latin-1 header byte that str.isdigit() accepts
    flask_only = served.wsgi_app.app  # type: ignore[attr-defined]
    expected = _call(flask_only, dict(environ))
    assert expected.status_code == 400
    environ["wsgi.input"].seek(0)
    assert_same(_call(served, environ), expected)


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("/api/v1/models/diabetes/predict", True),
        ("/v1/models/diabetes:predict", True),
        ("/api/v1/models/diabetes/predict/csv", False),
        ("/api/v1/models/diabetes/predict/", False),
        ("/api/v1/models/a/b/predict", False),
        ("/v1/models/diabetes:predict/csv", False),
    ],
)
def test_lane_route_matches_only_the_json_predict_paths(path: str, matches: bool) -> None:
    assert (ROUTE.fullmatch(path) is not None) is matches


def test_csv_route_is_left_to_flask_even_with_a_json_body(
    client: FlaskClient, lane: PredictFastLane
) -> None:
    before = lane.answered
    response = post(client, DIABETES + "/csv", ONE, JSON)
    # Flask's CSV view answers: it wants a multipart file, not the JSON prediction body.
    assert assert_error(response, 422, "validation_error")["field"] == "file"
    assert lane.answered == before
