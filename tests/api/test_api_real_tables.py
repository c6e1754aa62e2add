"""A Titanic-style table trained as is: roles at upload, id-like columns left out,
decisions on the job and the version, explicit features always win."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import train, upload
from tests.titanic import FEATURES, titanic_csv, titanic_frame

CABIN = str(titanic_frame()["Cabin"].dropna().iloc[0])


@pytest.fixture
def titanic_id(client: FlaskClient) -> str:
    response = upload(client, titanic_csv(), "titanic.csv")
    assert response.status_code == 201, response.get_json()
    dataset_id: str = response.get_json()["id"]
    return dataset_id


def _train(client: FlaskClient, dataset_id: str, **spec: Any) -> dict[str, Any]:
    body = {"target": "Survived", "algorithm": "logistic_regression", "model_name": "t"}
    response = train(client, dataset_id, **(body | spec))
    assert response.status_code == 202, response.get_json()
    job: dict[str, Any] = response.get_json()
    assert job["status"] == "succeeded", job["error"]
    return job


def test_upload_reports_roles(client: FlaskClient, titanic_id: str) -> None:
    columns = client.get(f"/api/v1/datasets/{titanic_id}").get_json()["columns"]
    roles = {c["name"]: (c["role"], c["role_reason"]) for c in columns}
    assert roles["PassengerId"] == ("id", "monotone integer index (a row number or key)")
    assert roles["Name"] == ("id", "unique per row (800 distinct values in 800 rows)")
    assert roles["Cabin"][0] == "high_cardinality"
    assert roles["Sex"] == ("feature", "")


def test_trained_as_is_leaves_out_the_ids(client: FlaskClient, titanic_id: str) -> None:
    job = _train(client, titanic_id)
    left_out = {c["name"]: c["reason"] for c in job["report"]["columns"] if not c["used"]}
    assert left_out == {
        "PassengerId": "left out: id column, monotone integer index (a row number or key)",
        "Name": "left out: id column, unique per row (800 distinct values in 800 rows)",
    }
    version = client.get(f"/api/v1/models/t/versions/{job['model_version']}").get_json()
    assert version["report"]["columns"] == job["report"]["columns"]
    inputs = [f["name"] for f in version["signature"]["inputs"]]
    assert inputs == FEATURES
    assert job["spec"]["features"] is None  # the request as sent


def test_explicit_features_win(client: FlaskClient, titanic_id: str) -> None:
    job = _train(client, titanic_id, features=["PassengerId", "Sex", "Pclass"])
    version = client.get(f"/api/v1/models/t/versions/{job['model_version']}").get_json()
    assert [f["name"] for f in version["signature"]["inputs"]] == ["PassengerId", "Sex", "Pclass"]
    used = {c["name"] for c in job["report"]["columns"] if c["used"]}
    assert used == {"PassengerId", "Sex", "Pclass"}


def test_only_ids_left_is_a_422_naming_features(client: FlaskClient) -> None:
    data = b"id,code,y\n" + b"".join(b"%d,c%d,%d\n" % (i, i, i % 2) for i in range(40))
    dataset_id = upload(client, data, "ids.csv").get_json()["id"]
    response = train(
        client, dataset_id, target="y", algorithm="logistic_regression", model_name="x"
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["details"]["field"] == "features"
    assert "id-like and constant columns are left out" in body["error"]["message"]


# --------------------------------------------------------------------------- forgiving predict


@pytest.fixture
def titanic_model(client: FlaskClient, titanic_id: str) -> dict[str, Any]:
    return _train(client, titanic_id, cv_folds=0)


def _row(**changes: Any) -> dict[str, Any]:
    row = {"Pclass": 3, "Sex": "female", "Age": 30.0, "SibSp": 0, "Parch": 0,
           "Ticket": "STON/O2. 377267", "Fare": 7.25, "Cabin": None, "Embarked": "S"}  # fmt: skip
    return row | changes


def test_imputed_features_accept_null_with_warnings(
    client: FlaskClient, titanic_model: dict[str, Any]
) -> None:
    inputs = client.get("/api/v1/models/t/versions/1").get_json()["signature"]["inputs"]
    fare = next(f for f in inputs if f["name"] == "Fare")
    assert fare == {"name": "Fare", "type": "number", "nullable": False, "imputed": True}
    rows = [_row(Fare=None), _row(Sex="M", Embarked="Z"), _row()]
    response = client.post("/api/v1/models/t/predict", json={"instances": rows})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["warnings"] == [
        {"row": 0, "field": "Fare", "warning": "null_imputed"},
        {"row": 0, "field": "Cabin", "warning": "null_imputed"},
        {"row": 1, "field": "Sex", "warning": "unseen_category", "value": "M"},
        {"row": 1, "field": "Cabin", "warning": "null_imputed"},
        {"row": 1, "field": "Embarked", "warning": "unseen_category", "value": "Z"},
        {"row": 2, "field": "Cabin", "warning": "null_imputed"},
    ]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'mlserve_prediction_warnings_total{model="t",warning="null_imputed"} 4.0' in metrics
    assert 'mlserve_prediction_warnings_total{model="t",warning="unseen_category"} 2.0' in metrics


def test_no_warnings_key_when_nothing_is_guessed(
    client: FlaskClient, titanic_model: dict[str, Any]
) -> None:
    body = client.post("/api/v1/models/t/predict", json={"instances": [_row(Cabin=CABIN)]})
    assert "warnings" not in body.get_json()


@pytest.mark.parametrize(
    ("extra", "status"), [(None, 422), ("refuse", 422), ("ignore", 200), ("maybe", 422)]
)
def test_extra_keys_follow_the_request_option(
    client: FlaskClient, titanic_model: dict[str, Any], extra: str | None, status: int
) -> None:
    body: dict[str, Any] = {"instances": [_row(PassengerId=1, Name="Braund, Mr. Owen")]}
    if extra is not None:
        body["extra"] = extra
    response = client.post("/api/v1/models/t/predict", json=body)
    assert response.status_code == status, response.get_json()
    if status == 422:
        field = "extra" if extra == "maybe" else "Name"
        assert response.get_json()["error"]["details"]["field"] == field


def test_kserve_list_form_in_signature_order(
    client: FlaskClient, titanic_model: dict[str, Any]
) -> None:
    rows = [_row(), _row(Sex="male", Pclass=1)]
    by_name = client.post("/v1/models/t:predict", json={"instances": rows}).get_json()
    as_lists = [[row[name] for name in FEATURES] for row in rows]
    response = client.post("/v1/models/t:predict", json={"instances": as_lists})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["predictions"] == by_name["predictions"]
    short = client.post("/v1/models/t:predict", json={"instances": [as_lists[0][:-1]]})
    assert short.status_code == 422
    assert "needs 9 values, in signature order (Pclass, Sex" in short.get_json()["error"]["message"]


def test_kserve_model_status(client: FlaskClient, titanic_model: dict[str, Any]) -> None:
    assert client.get("/v1/models/t").get_json() == {
        "name": "t",
        "ready": True,
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ],
    }
    assert client.get("/v1/models/nope").status_code == 404
