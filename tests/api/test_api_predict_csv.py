"""HTTP contract of POST /api/v1/models/{name}/predict/csv: batch prediction from a CSV file.

The answers are checked against the JSON route's for the same rows: the same numbers to
the last bit, the same model selection, the same validation (naming row and field).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_diabetes

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error, parquet_bytes, stored_state
from tests.api.test_api_predict import IRIS_CLASSES, make_mixed_frame
from tests.conftest import frame_csv, keyed_client, train, upload

CSV_URL = "/api/v1/models/{name}/predict/csv"
JSON_URL = "/api/v1/models/{name}/predict"
MAX_ROWS = 50


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlaskClient, Context]]:
    """``mixed`` v1 (production, ridge) and v2 (alpha 1000); ``boost`` (gradient boosting
    on diabetes); ``iris`` (logistic regression). At most 50 rows per prediction."""
    home = tmp_path_factory.mktemp("predict-csv") / "home"
    application: Flask = create_app(
        Settings(home=home, jobs_immediate=True, log_level="WARNING", max_batch_rows=MAX_ROWS)
    )
    client = keyed_client(application)
    mixed = upload(client, frame_csv(make_mixed_frame()), "mixed.csv").get_json()
    for alpha in (1.0, 1000.0):
        job = train(client, mixed["id"], target="target", algorithm="ridge", model_name="mixed",
                    cv_folds=0, params={"alpha": alpha}).get_json()  # fmt: skip
        assert job["status"] == "succeeded", job
    client.put("/api/v1/models/mixed/aliases/production", json={"version": 1})
    diabetes = upload(client, frame_csv(load_diabetes(as_frame=True).frame), "d.csv").get_json()
    job = train(client, diabetes["id"], target="target", algorithm="gradient_boosting",
                model_name="boost", cv_folds=0).get_json()  # fmt: skip
    assert job["status"] == "succeeded", job
    iris = upload(client, frame_csv(iris_frame()), "iris.csv").get_json()
    job = train(client, iris["id"], target="target", algorithm="logistic_regression",
                model_name="iris", cv_folds=0).get_json()  # fmt: skip
    assert job["status"] == "succeeded", job
    yield client, context_of(application)
    context_of(application).db.dispose()


def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame["target"] = bunch.target_names[bunch.target]
    return frame


def post_csv(client: FlaskClient, name: str, data: bytes, **query: Any) -> Any:
    return client.post(
        CSV_URL.format(name=name),
        data={"file": (io.BytesIO(data), "rows.csv")},
        content_type="multipart/form-data",
        query_string=query,
    )


def json_rows(data: bytes, features: list[str]) -> list[dict[str, Any]]:
    """The CSV's rows as the JSON route takes them (read as pandas reads an upload)."""
    frame = pd.read_csv(io.BytesIO(data))[features].astype(object)
    rows: list[dict[str, Any]] = frame.where(frame.notna(), None).to_dict("records")
    return rows


def post_json(client: FlaskClient, name: str, rows: list[dict[str, Any]], **query: Any) -> Any:
    body = json.dumps({"instances": rows})  # json, not orjson: exact float text either way
    return client.post(
        JSON_URL.format(name=name), data=body, content_type="application/json", query_string=query
    )


def read_answer(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def features_of(client: FlaskClient, name: str, version: int = 1) -> list[str]:
    version_body = client.get(f"/api/v1/models/{name}/versions/{version}").get_json()
    return [f["name"] for f in version_body["signature"]["inputs"]]


def mixed_csv(n_rows: int = 30) -> bytes:
    return frame_csv(make_mixed_frame().head(n_rows))


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("name", ["mixed", "boost"])
def test_csv_predictions_equal_the_json_routes_exactly(
    shared: tuple[FlaskClient, Context], name: str
) -> None:
    client, ctx = shared
    data = mixed_csv() if name == "mixed" else frame_csv(load_diabetes(as_frame=True).frame[:40])
    before = stored_state(ctx)
    answer = read_answer(post_csv(client, name, data))
    expected = post_json(client, name, json_rows(data, features_of(client, name))).get_json()
    assert [float(row["prediction"]) for row in answer] == expected["predictions"]
    assert stored_state(ctx) == before


def test_csv_answer_keeps_every_uploaded_cell_then_appends_prediction(
    shared: tuple[FlaskClient, Context],
) -> None:
    client, _ctx = shared
    data = mixed_csv(12)
    response = post_csv(client, "mixed", data)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="mixed-v1-predictions.csv"'
    )
    sent = list(csv.reader(io.StringIO(data.decode())))
    got = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert got[0] == [*sent[0], "prediction"]  # the target column is kept, and ignored
    assert len(got) == len(sent) == 13
    assert [row[:-1] for row in got] == sent
    assert sent[3][sent[0].index("bmi")] == ""  # a missing value stays an empty cell


def test_csv_classifier_appends_one_probability_column_per_class(
    shared: tuple[FlaskClient, Context],
) -> None:
    client, _ctx = shared
    data = frame_csv(iris_frame().iloc[[0, 1, 60, 61, 120, 121]])
    answer = read_answer(post_csv(client, "iris", data))
    expected = post_json(client, "iris", json_rows(data, features_of(client, "iris"))).get_json()
    columns = [f"probability_{label}" for label in IRIS_CLASSES]
    assert list(answer[0])[-4:] == ["prediction", *columns]
    assert [row["prediction"] for row in answer] == expected["predictions"]
    assert [row["target"] for row in answer] == [row["prediction"] for row in answer]
    probabilities = [[float(row[c]) for c in columns] for row in answer]
    assert probabilities == expected["probabilities"]
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("query", "version"),
    [({}, 1), ({"version": 2}, 2), ({"alias": "latest"}, 2), ({"alias": "production"}, 1)],
    ids=["default-production", "version", "latest", "alias"],
)
def test_csv_selects_the_version_as_the_json_route(
    shared: tuple[FlaskClient, Context], query: dict[str, Any], version: int
) -> None:
    client, _ctx = shared
    data = mixed_csv(5)
    response = post_csv(client, "mixed", data, **query)
    answer = read_answer(response)
    assert f'filename="mixed-v{version}-predictions.csv"' in response.headers["Content-Disposition"]
    expected = post_json(client, "mixed", json_rows(data, features_of(client, "mixed")), **query)
    assert expected.get_json()["model_version"] == version
    assert [float(row["prediction"]) for row in answer] == expected.get_json()["predictions"]


def test_csv_booleans_in_any_case_and_nullable_gaps_are_accepted(
    shared: tuple[FlaskClient, Context],
) -> None:
    client, _ctx = shared
    frame = make_mixed_frame().head(4).drop(columns="target")
    frame["bmi"] = frame["bmi"].astype(object)
    frame.loc[0, "bmi"] = None
    text = frame.to_csv(index=False).replace("True", "TRUE").replace("False", "false")
    answer = read_answer(post_csv(client, "mixed", text.encode()))
    rows = json_rows(frame.to_csv(index=False).encode(), features_of(client, "mixed"))
    assert rows[0]["bmi"] is None and isinstance(rows[0]["smoker"], bool)
    expected = post_json(client, "mixed", rows).get_json()["predictions"]
    assert [float(row["prediction"]) for row in answer] == expected


# --------------------------------------------------------------------------- refused cells

BAD_CELLS = [
    # (case id, column, data row, cell text, reason in the message). Empty cells are no
    # longer refused: every feature is imputed (signature "imputed": true).
    ("text-in-number", "bmi", 3, "abc", "expected a finite number, got 'abc'"),
    ("bad-boolean", "smoker", 5, "yes", "expected true or false, got 'yes'"),
    ("fraction-in-integer", "visits", 2, "2.5", "expected a whole number, got 2.5"),
    ("infinity", "s1", 4, "inf", "expected a finite number, got inf"),
]


@pytest.mark.parametrize(
    ("column", "row", "cell", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CELLS],
)
def test_csv_bad_cell_returns_422_naming_row_and_field(
    shared: tuple[FlaskClient, Context], column: str, row: int, cell: str, reason: str
) -> None:
    client, ctx = shared
    frame = make_mixed_frame().head(10).astype(object)
    frame.loc[row, column] = cell
    before = stored_state(ctx)
    response = post_csv(client, "mixed", frame.to_csv(index=False).encode())
    details = assert_error(response, 422, "validation_error")
    assert (details["row"], details["field"]) == (row, column)
    assert details["message"] == f"row {row}, column '{column}': {reason}"
    assert stored_state(ctx) == before


# --------------------------------------------------------------------------- refused files

BAD_FILES = [
    # (case id, bytes, status, code, expected details subset)
    ("empty", b"", 422, "validation_error", {"field": "file"}),
    ("header-only", b"age,sex\n", 422, "validation_error", {"field": "file"}),
    ("ragged", b"a,b\n1,2\n3\n", 422, "validation_error", {"field": "file", "line": 3}),
    ("duplicate-columns", b"a,a\n1,2\n", 422, "validation_error", {"field": "file"}),
    ("missing-feature", b"age,sex\n0.1,male\n", 422, "validation_error", {"field": "bmi"}),
    ("not-utf8", b"a,b\n\xff\xfe\x00\x01,2\n" * 4, 415, "unsupported_media_type", {}),
    ("parquet", parquet_bytes(pa.table({"age": [0.1]})), 415, "unsupported_media_type", {}),
]


@pytest.mark.parametrize(
    ("data", "status", "code", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_csv_bad_file_is_refused(
    shared: tuple[FlaskClient, Context],
    data: bytes,
    status: int,
    code: str,
    expected: dict[str, Any],
) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    details = assert_error(post_csv(client, "mixed", data), status, code)
    assert {k: details.get(k) for k in expected} == expected
    assert stored_state(ctx) == before


def test_csv_column_named_like_an_output_column_returns_422(
    shared: tuple[FlaskClient, Context],
) -> None:
    client, _ctx = shared
    frame = iris_frame().head(3)
    clash = frame.assign(probability_setosa=0.5)
    details = assert_error(post_csv(client, "iris", frame_csv(clash)), 422, "validation_error")
    assert details["field"] == "probability_setosa"
    answer = read_answer(post_csv(client, "iris", frame_csv(frame)))
    resent = frame_csv(pd.DataFrame(answer))  # an answer sent back: it has a prediction
    details = assert_error(post_csv(client, "iris", resent), 422, "validation_error")
    assert details["field"] == "prediction"


def test_csv_without_file_field_returns_422(shared: tuple[FlaskClient, Context]) -> None:
    client, _ctx = shared
    response = client.post(
        CSV_URL.format(name="mixed"),
        data={"upload": (io.BytesIO(mixed_csv(2)), "rows.csv")},
        content_type="multipart/form-data",
    )
    assert assert_error(response, 422, "validation_error")["field"] == "file"


def test_csv_over_max_batch_rows_returns_413(shared: tuple[FlaskClient, Context]) -> None:
    client, _ctx = shared
    frame = make_mixed_frame()
    details = assert_error(
        post_csv(client, "mixed", frame_csv(frame.head(MAX_ROWS + 1))), 413, "payload_too_large"
    )
    assert (details["field"], details["limit"]) == ("file", MAX_ROWS)
    assert len(read_answer(post_csv(client, "mixed", frame_csv(frame.head(MAX_ROWS))))) == 50


@pytest.mark.parametrize(
    ("name", "query", "status", "code", "expected"),
    [
        ("nope", {}, 404, "not_found", {"resource": "model"}),
        ("mixed", {"alias": "staging"}, 404, "not_found", {"resource": "alias"}),
        ("mixed", {"version": 9}, 404, "not_found", {"resource": "model_version"}),
        ("mixed", {"version": "abc"}, 422, "validation_error", {"field": "version"}),
        ("mixed", {"version": 1, "alias": "prod"}, 422, "validation_error", {"field": "alias"}),
        ("mixed", {"alias": "a" * 65}, 422, "validation_error", {"field": "alias"}),
    ],
    ids=["unknown-model", "unknown-alias", "unknown-version", "bad-version", "both", "long-alias"],
)  # fmt: skip
def test_csv_bad_selection_is_refused_as_the_json_route(
    shared: tuple[FlaskClient, Context],
    name: str,
    query: dict[str, Any],
    status: int,
    code: str,
    expected: dict[str, Any],
) -> None:
    client, _ctx = shared
    details = assert_error(post_csv(client, name, mixed_csv(3), **query), status, code)
    assert {k: details.get(k) for k in expected} == expected
    rows = json_rows(mixed_csv(3), features_of(client, "mixed"))
    same = assert_error(post_json(client, name, rows, **query), status, code)
    assert {k: same.get(k) for k in expected} == expected


def test_csv_is_not_answered_by_the_fast_lane(shared: tuple[FlaskClient, Context]) -> None:
    client, _ctx = shared
    lane = client.application.wsgi_app
    answered = lane.answered  # type: ignore[attr-defined]
    read_answer(post_csv(client, "mixed", mixed_csv(3)))
    assert lane.answered == answered  # type: ignore[attr-defined]


def test_csv_over_max_content_length_returns_413(tmp_path: Path) -> None:
    application = create_app(
        Settings(home=tmp_path / "home", jobs_immediate=True, max_content_length_bytes=4096)
    )
    client = keyed_client(application)
    big = frame_csv(make_mixed_frame())
    assert len(big) > 4096
    details = assert_error(post_csv(client, "mixed", big), 413, "payload_too_large")
    assert details["limit"] == 4096
    context_of(application).db.dispose()


def test_csv_download_neutralises_formulas_but_not_numbers(
    shared: tuple[FlaskClient, Context],
) -> None:
    """OWASP CSV injection: a cell or header starting = + - @ tab CR gets a leading quote."""
    client, _ctx = shared
    frame = make_mixed_frame().head(6).copy()
    frame['=HYPERLINK("http://x")'] = ["=1+1", "@SUM(A1)", "+cmd", "-3.5", "\tx", "-2e3"]
    response = post_csv(client, "mixed", frame_csv(frame))
    assert response.status_code == 200, response.get_data(as_text=True)
    got = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert got[0][-2] == '\'=HYPERLINK("http://x")'
    assert [row[-2] for row in got[1:]] == ["'=1+1", "'@SUM(A1)", "'+cmd", "-3.5", "'\tx", "-2e3"]
    predictions = [float(row[-1]) for row in got[1:]]  # predictions stay numbers
    assert len(predictions) == 6
