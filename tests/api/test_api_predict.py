"""HTTP contract of the prediction endpoints and the matrix of inputs they refuse."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import frame_csv, keyed_client, train, upload

PREDICT = "/api/v1/models/{name}/predict"
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def make_mixed_frame() -> pd.DataFrame:
    """Diabetes with a text, a boolean, an integer and a nullable number feature."""
    frame: pd.DataFrame = load_diabetes(as_frame=True).frame.head(120).copy()
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    frame.loc[[2, 11, 40], "bmi"] = np.nan
    frame["smoker"] = frame.index % 3 == 0
    frame["visits"] = frame.index % 7
    return frame


def register_mixed(client: FlaskClient) -> dict[str, Any]:
    dataset = upload(client, frame_csv(make_mixed_frame()), "mixed.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="mixed", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    return {"dataset": dataset, "job": job}


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    return make_mixed_frame()


@pytest.fixture
def mixed_model(client: FlaskClient) -> dict[str, Any]:
    return register_mixed(client)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlaskClient, Context]]:
    """One app for the whole module with model ``mixed`` v1 as production.

    Only for tests whose requests are refused or read-only; each still proves it
    changed nothing with :func:`stored_state`.
    """
    home = tmp_path_factory.mktemp("predict") / "home"
    application: Flask = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    client = keyed_client(application)
    register_mixed(client)
    assert (
        client.put("/api/v1/models/mixed/aliases/production", json={"version": 1}).status_code
        == 200
    )
    yield client, context_of(application)
    context_of(application).db.dispose()


def good_row() -> dict[str, Any]:
    return {
        "age": 0.01,
        "sex": "male",
        "bmi": 0.02,
        "bp": -0.01,
        "s1": 0.0,
        "s2": 0.01,
        "s3": -0.02,
        "s4": 0.0,
        "s5": 0.03,
        "s6": -0.01,
        "smoker": True,
        "visits": 3,
    }


def rows_of(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """The first ``n`` feature rows of ``frame`` as JSON-ready dicts (NaN as null)."""
    features = frame.drop(columns="target").head(n)
    return json.loads(features.to_json(orient="records"))


def post(client: FlaskClient, name: str, instances: Any, **query: Any) -> Any:
    # json.dumps, not the app's orjson: it also writes integers beyond 64 bits.
    return client.post(
        PREDICT.format(name=name),
        data=json.dumps({"instances": instances}),
        content_type="application/json",
        query_string=query,
    )


def post_raw(
    client: FlaskClient, name: str, body: bytes | str, content_type: str = "application/json"
) -> Any:
    return client.post(PREDICT.format(name=name), data=body, content_type=content_type)


# --------------------------------------------------------------------------- success


def test_predict_regression_batch_returns_one_value_per_row(
    client: FlaskClient, mixed_model: dict[str, Any], mixed_frame: pd.DataFrame
) -> None:
    response = post(client, "mixed", rows_of(mixed_frame, 25))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) - {"warnings"} == {
        "predictions",
        "model_name",
        "model_version",
        "prediction_id",
    }
    # Rows of the training data: only their missing values are guessed.
    assert {w["warning"] for w in body.get("warnings", [])} <= {"null_imputed"}
    assert re.fullmatch("[0-9a-f]{32}", body["prediction_id"])
    assert (body["model_name"], body["model_version"]) == ("mixed", 1)
    assert len(body["predictions"]) == 25
    assert all(isinstance(p, float) and np.isfinite(p) for p in body["predictions"])
    target = mixed_frame["target"]
    assert (
        target.min() - 100
        < min(body["predictions"])
        < max(body["predictions"])
        < (target.max() + 100)
    )


def test_predict_same_rows_give_same_predictions(
    client: FlaskClient, mixed_model: dict[str, Any]
) -> None:
    single = post(client, "mixed", [good_row()]).get_json()["predictions"]
    batch = post(client, "mixed", [good_row()] * 4).get_json()["predictions"]
    # Equal to the last bits or so: a compiled model may sum in another order
    # for a batch than for one row.
    np.testing.assert_allclose(batch, single * 4, rtol=1e-12)


def test_predict_classifier_probabilities_sum_to_one(
    client: FlaskClient, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    rows = rows_of(iris_frame.iloc[[0, 1, 60, 61, 120, 121]], 6)
    response = post(client, "iris", rows)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "predictions",
        "probabilities",
        "classes",
        "model_name",
        "model_version",
        "prediction_id",
    }
    assert (
        body["classes"] == IRIS_CLASSES == iris_model["version"]["signature"]["output"]["classes"]
    )
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (6, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    # Columns follow ``classes``: the most probable column is the predicted label.
    assert [body["classes"][i] for i in probabilities.argmax(axis=1)] == body["predictions"]
    assert body["predictions"] == [
        "setosa",
        "setosa",
        "versicolor",
        "versicolor",
        "virginica",
        "virginica",
    ]


def test_kserve_predict_returns_only_predictions(
    client: FlaskClient, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    rows = rows_of(iris_frame.iloc[[0, 75, 149]], 3)
    response = client.post("/v1/models/iris:predict", json={"instances": rows})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"predictions", "prediction_id"}
    assert body["predictions"] == post(client, "iris", rows).get_json()["predictions"]


@pytest.fixture
def two_versions(client: FlaskClient, mixed_model: dict[str, Any]) -> dict[int, float]:
    """Version 2 of mixed (alpha 1000) next to version 1; each's prediction of good_row."""
    job = train(
        client,
        mixed_model["dataset"]["id"],
        target="target",
        algorithm="ridge",
        model_name="mixed",
        cv_folds=0,
        params={"alpha": 1000.0},
    ).get_json()
    assert job["model_version"] == 2
    found = {
        v: post(client, "mixed", [good_row()], version=v).get_json()["predictions"][0]
        for v in (1, 2)
    }
    assert found[1] != pytest.approx(found[2])
    return found


def test_predict_default_is_latest_without_production(
    client: FlaskClient, two_versions: dict[int, float]
) -> None:
    body = post(client, "mixed", [good_row()]).get_json()
    assert body["model_version"] == 2
    assert body["predictions"] == [two_versions[2]]


def test_predict_default_follows_production_alias(
    client: FlaskClient, two_versions: dict[int, float]
) -> None:
    client.put("/api/v1/models/mixed/aliases/production", json={"version": 1})
    body = post(client, "mixed", [good_row()]).get_json()
    assert (body["model_version"], body["predictions"]) == (1, [two_versions[1]])
    kserve = client.post("/v1/models/mixed:predict", json={"instances": [good_row()]})
    assert kserve.get_json()["predictions"] == [two_versions[1]]
    assert client.delete("/api/v1/models/mixed/aliases/production").status_code == 204
    assert post(client, "mixed", [good_row()]).get_json()["model_version"] == 2


def test_predict_by_alias_and_by_version(
    client: FlaskClient, two_versions: dict[int, float]
) -> None:
    client.put("/api/v1/models/mixed/aliases/staging", json={"version": 1})
    by_alias = post(client, "mixed", [good_row()], alias="staging").get_json()
    assert (by_alias["model_version"], by_alias["predictions"]) == (1, [two_versions[1]])
    by_version = post(client, "mixed", [good_row()], version=2).get_json()
    assert (by_version["model_version"], by_version["predictions"]) == (2, [two_versions[2]])
    latest = post(client, "mixed", [good_row()], alias="latest").get_json()
    assert latest["model_version"] == 2
    client.put("/api/v1/models/mixed/aliases/staging", json={"version": 2})
    moved = post(client, "mixed", [good_row()], alias="staging").get_json()
    assert moved["model_version"] == 2


def _with(**changes: Any) -> dict[str, Any]:
    row = good_row()
    row.update(changes)
    return row


ACCEPTED_ROWS = [
    # (case id, row): values the signature allows
    ("nullable-number-null", _with(bmi=None)),
    ("integer-as-whole-float", _with(visits=3.0)),
    ("number-as-integer", _with(age=0)),
    ("boolean-false", _with(smoker=False)),
    ("unseen-category", _with(sex="other")),
    ("big-integer-in-number", _with(age=10**30)),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=i) for i, r in ACCEPTED_ROWS])
def test_predict_accepts_valid_values(
    shared: tuple[FlaskClient, Context], row: dict[str, Any]
) -> None:
    client, _ctx = shared
    response = post(client, "mixed", [good_row(), row])
    assert response.status_code == 200, response.get_json()
    predictions = response.get_json()["predictions"]
    assert len(predictions) == 2 and all(np.isfinite(predictions))


# --------------------------------------------------------------------------- refusals


def _body(instances: Any) -> bytes:
    return json.dumps({"instances": instances}).encode()


def _second_row(**changes: Any) -> bytes:
    return _body([good_row(), _with(**changes)])


def _missing(name: str) -> bytes:
    row = good_row()
    del row[name]
    return _body([good_row(), good_row(), row])


def _raw_value(name: str, token: str) -> bytes:
    return _second_row(**{name: "@@"}).replace(b'"@@"', token.encode())


BAD_BODIES: list[tuple[str, Callable[[], bytes], int, str, str | None, int | None]] = [
    # (case id, body factory, status, code, field in details, row in details)
    ("truncated-json", lambda: b'{"instances": [', 400, "malformed_json", None, None),
    ("empty-body", lambda: b"", 400, "malformed_json", None, None),
    ("single-quotes", lambda: b"{'instances': []}", 400, "malformed_json", None, None),
    ("missing-feature", lambda: _missing("bmi"), 422, "validation_error", "bmi", 2),
    ("extra-feature", lambda: _second_row(colour="red"), 422, "validation_error", "colour", 1),
    ("string-for-number", lambda: _second_row(bmi="0.02"), 422, "validation_error", "bmi", 1),
    ("bool-for-number", lambda: _second_row(age=True), 422, "validation_error", "age", 1),
    ("list-for-number", lambda: _second_row(age=[1]), 422, "validation_error", "age", 1),
    ("number-for-category", lambda: _second_row(sex=1), 422, "validation_error", "sex", 1),
    ("bool-for-category", lambda: _second_row(sex=False), 422, "validation_error", "sex", 1),
    ("fraction-for-integer", lambda: _second_row(visits=3.5), 422, "validation_error", "visits", 1),
    ("string-for-integer", lambda: _second_row(visits="3"), 422, "validation_error", "visits", 1),
    ("number-for-boolean", lambda: _second_row(smoker=1), 422, "validation_error", "smoker", 1),
    (
        "string-for-boolean",
        lambda: _second_row(smoker="true"),
        422,
        "validation_error",
        "smoker",
        1,
    ),
    # null for a feature without missing training values is accepted (imputed) since issue 14
    ("nan-token", lambda: _raw_value("age", "NaN"), 422, "validation_error", "age", 1),
    ("infinity-token", lambda: _raw_value("bp", "Infinity"), 422, "validation_error", "bp", 1),
    (
        "minus-infinity-token",
        lambda: _raw_value("s1", "-Infinity"),
        422,
        "validation_error",
        "s1",
        1,
    ),
    ("overflowing-float", lambda: _raw_value("s2", "1e999"), 422, "validation_error", "s2", 1),
    (
        "overflowing-integer",
        lambda: _raw_value("visits", "9" * 400),
        422,
        "validation_error",
        "visits",
        1,
    ),
    (
        "overflowing-integer-number",
        lambda: _raw_value("age", "9" * 400),
        422,
        "validation_error",
        "age",
        1,
    ),
    ("nan-first-row", lambda: b'{"instances":[{"age": NaN}]}', 422, "validation_error", "age", 0),
    ("empty-instances", lambda: _body([]), 422, "validation_error", "instances", None),
    ("instances-object", lambda: _body(good_row()), 422, "validation_error", "instances", None),
    ("instances-string", lambda: _body("rows"), 422, "validation_error", "instances", None),
    ("instances-null", lambda: _body(None), 422, "validation_error", "instances", None),
    (
        "row-not-object",
        lambda: _body([good_row(), [1, 2]]),
        422,
        "validation_error",
        "instances",
        1,
    ),
    (
        "body-is-array",
        lambda: json.dumps([good_row()]).encode(),
        422,
        "validation_error",
        "instances",
        None,
    ),
    (
        "body-without-instances",
        lambda: json.dumps({"rows": [good_row()]}).encode(),
        422,
        "validation_error",
        "instances",
        None,
    ),
    (
        "body-extra-field",
        lambda: json.dumps({"instances": [good_row()], "x": 1}).encode(),
        422,
        "validation_error",
        "x",
        None,
    ),
]


@pytest.mark.parametrize(
    ("make_body", "status", "code", "field", "row"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES],
)
def test_predict_bad_body_is_refused(
    shared: tuple[FlaskClient, Context],
    make_body: Callable[[], bytes],
    status: int,
    code: str,
    field: str | None,
    row: int | None,
) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    body = make_body()
    for path in (PREDICT.format(name="mixed"), "/v1/models/mixed:predict"):
        response = client.post(path, data=body, content_type="application/json")
        details = assert_error(response, status, code)
        if field is not None:
            assert details["field"] == field, details
            assert field in details["message"]
        if row is not None:
            assert details["row"] == row, details
            assert f"instances[{row}]" in details["message"]
    assert stored_state(ctx) == before


def test_predict_non_json_content_type_returns_415(shared: tuple[FlaskClient, Context]) -> None:
    client, _ctx = shared
    response = post_raw(client, "mixed", _body([good_row()]), content_type="text/plain")
    details = assert_error(response, 415, "unsupported_media_type")
    assert details["content_type"] == "text/plain"


LOOKUP_FAILURES = [
    # (case id, model name, query, status, code, expected details subset)
    ("unknown-model", "nope", {}, 404, "not_found", {"resource": "model", "key": "nope"}),
    ("unknown-model-by-version", "nope", {"version": 1}, 404, "not_found", {"resource": "model"}),
    (
        "unknown-model-by-alias",
        "nope",
        {"alias": "staging"},
        404,
        "not_found",
        {"resource": "model"},
    ),
    (
        "unknown-version",
        "mixed",
        {"version": 7},
        404,
        "not_found",
        {"resource": "model_version", "version": 7},
    ),
    (
        "unknown-alias",
        "mixed",
        {"alias": "staging"},
        404,
        "not_found",
        {"resource": "alias", "alias": "staging"},
    ),
    (
        "alias-and-version",
        "mixed",
        {"alias": "production", "version": 1},
        422,
        "validation_error",
        {"field": "alias"},
    ),
    ("version-zero", "mixed", {"version": 0}, 422, "validation_error", {"field": "version"}),
    ("version-text", "mixed", {"version": "one"}, 422, "validation_error", {"field": "version"}),
    ("alias-empty", "mixed", {"alias": ""}, 422, "validation_error", {"field": "alias"}),
]


@pytest.mark.parametrize(
    ("name", "query", "status", "code", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in LOOKUP_FAILURES],
)
def test_predict_unresolvable_model_is_refused(
    shared: tuple[FlaskClient, Context],
    name: str,
    query: dict[str, Any],
    status: int,
    code: str,
    expected: dict[str, Any],
) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    details = assert_error(post(client, name, [good_row()], **query), status, code)
    assert {k: details.get(k) for k in expected} == expected
    assert stored_state(ctx) == before


def test_kserve_predict_unknown_model_returns_404(client: FlaskClient) -> None:
    response = client.post("/v1/models/nope:predict", json={"instances": [good_row()]})
    assert assert_error(response, 404, "not_found")["key"] == "nope"


# --------------------------------------------------------------------------- limits


@pytest.fixture
def limited_client(settings: Settings, mixed_model: dict[str, Any]) -> Iterator[FlaskClient]:
    """A second app on the same home: at most 3 rows per request, 2 KiB bodies."""
    application: Flask = create_app(
        settings.model_copy(update={"max_batch_rows": 3, "max_content_length_bytes": 2048})
    )
    yield keyed_client(application)
    context_of(application).db.dispose()


def test_predict_more_rows_than_max_batch_rows_returns_413(
    limited_client: FlaskClient, ctx: Context
) -> None:
    assert post(limited_client, "mixed", [good_row()] * 3).status_code == 200
    before = stored_state(ctx)
    for path in (PREDICT.format(name="mixed"), "/v1/models/mixed:predict"):
        response = limited_client.post(path, json={"instances": [good_row()] * 4})
        details = assert_error(response, 413, "payload_too_large")
        assert (details["field"], details["limit"]) == ("instances", 3)
    assert stored_state(ctx) == before


def test_predict_body_over_content_length_returns_413(
    limited_client: FlaskClient, ctx: Context
) -> None:
    padded = _with(sex="x" * 3000)
    body = _body([padded])
    assert len(body) > 2048
    before = stored_state(ctx)
    assert_error(post_raw(limited_client, "mixed", body), 413, "payload_too_large")
    assert stored_state(ctx) == before
    assert post(limited_client, "mixed", [good_row()]).status_code == 200


def test_predict_batch_row_limit_is_checked_before_lookup(limited_client: FlaskClient) -> None:
    response = post(limited_client, "nope", [good_row()] * 4)
    assert_error(response, 413, "payload_too_large")


def test_predict_nullable_feature_from_training_data(
    client: FlaskClient, mixed_model: dict[str, Any], mixed_frame: pd.DataFrame
) -> None:
    rows = rows_of(mixed_frame, 12)
    assert rows[2]["bmi"] is None and rows[11]["bmi"] is None
    response = post(client, "mixed", rows)
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["predictions"]) == 12


# --------------------------------------------------------------------------- columnar inputs


def columnar(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The same rows by column: ``{feature: [value per row]}``."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def post_inputs(client: FlaskClient, name: str, inputs: Any, path: str = PREDICT) -> Any:
    return client.post(
        path.format(name=name), data=json.dumps({"inputs": inputs}), content_type="application/json"
    )


def test_predict_columnar_inputs_equal_instances(
    client: FlaskClient, mixed_model: dict[str, Any], mixed_frame: pd.DataFrame
) -> None:
    rows = rows_of(mixed_frame, 50)
    assert any(row["bmi"] is None for row in rows)
    by_row = post(client, "mixed", rows).get_json()
    by_column = post_inputs(client, "mixed", columnar(rows)).get_json()
    assert by_column.pop("prediction_id") != by_row.pop("prediction_id")
    assert by_column == by_row
    kserve = post_inputs(client, "mixed", columnar(rows), "/v1/models/{name}:predict").get_json()
    assert kserve.pop("prediction_id")
    assert kserve == {"predictions": by_row["predictions"], "warnings": by_row["warnings"]}


def test_predict_columnar_inputs_give_probabilities(
    client: FlaskClient, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    rows = rows_of(iris_frame.iloc[[0, 60, 120]], 3)
    by_column = post_inputs(client, "iris", columnar(rows)).get_json()
    by_row = post(client, "iris", rows).get_json()
    assert by_column.pop("prediction_id") != by_row.pop("prediction_id")
    assert by_column == by_row
    assert by_column["predictions"] == ["setosa", "versicolor", "virginica"]


def _columns(**changes: Any) -> dict[str, Any]:
    return {**columnar([good_row(), good_row()]), **changes}


COLUMNAR_REFUSED = [
    ("not-an-object", [good_row()], "inputs", r"non-empty object"),
    ("empty", {}, "inputs", r"non-empty object"),
    ("unknown-feature", _columns(height=[1.0, 2.0]), "height", r"inputs\.height: unknown"),
    (
        "missing-feature",
        {k: v for k, v in _columns().items() if k != "bp"},
        "bp",
        r"inputs\.bp: missing",
    ),
    ("ragged", _columns(age=[0.1]), "inputs", r"same length"),
    ("not-a-list", _columns(age=0.1), "inputs", r"same length"),
    ("empty-lists", {k: [] for k in good_row()}, "inputs", r"non-empty list"),
    ("wrong-type", _columns(age=[0.1, "old"]), "age", r"inputs\.age\[1\]: expected a finite"),
    ("bool-for-number", _columns(s1=[0.0, True]), "s1", r"inputs\.s1\[1\]"),
    ("not-whole", _columns(visits=[1, 2.5]), "visits", r"inputs\.visits\[1\]: expected a whole"),
]


@pytest.mark.parametrize(
    ("inputs", "field", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in COLUMNAR_REFUSED],
)
def test_predict_columnar_inputs_refused(
    shared: tuple[FlaskClient, Context], inputs: Any, field: str, pattern: str
) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    response = post_inputs(client, "mixed", inputs)
    details = assert_error(response, 422, "validation_error")
    assert details["field"] == field
    assert re.search(pattern, response.get_json()["error"]["message"]), response.get_json()
    assert stored_state(ctx) == before


def test_predict_instances_and_inputs_together_refused(shared: tuple[FlaskClient, Context]) -> None:
    client, _ctx = shared
    body = json.dumps({"instances": [good_row()], "inputs": columnar([good_row()])})
    details = assert_error(post_raw(client, "mixed", body), 422, "validation_error")
    assert details["field"] == "instances"


def test_predict_columnar_rows_over_limit_returns_413(limited_client: FlaskClient) -> None:
    assert post_inputs(limited_client, "mixed", columnar([good_row()] * 3)).status_code == 200
    response = post_inputs(limited_client, "mixed", columnar([good_row()] * 4))
    details = assert_error(response, 413, "payload_too_large")
    assert (details["field"], details["limit"]) == ("inputs", 3)


def test_null_for_a_feature_complete_in_training_is_imputed(
    client: FlaskClient, mixed_model: dict[str, Any], mixed_frame: pd.DataFrame
) -> None:
    rows = rows_of(mixed_frame.dropna(), 2)
    rows[1]["age"], rows[1]["sex"] = None, None
    by_row = post(client, "mixed", rows).get_json()
    assert by_row["warnings"] == [
        {"row": 1, "field": "age", "warning": "null_imputed"},
        {"row": 1, "field": "sex", "warning": "null_imputed"},
    ]
    by_column = post_inputs(client, "mixed", columnar(rows)).get_json()
    assert by_column["warnings"] == by_row["warnings"]
    assert by_column["predictions"] == by_row["predictions"]
