"""HTTP contract of /api/v1/models: list, describe, versions, aliases, and their refusals."""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sqlalchemy import inspect, select, update

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.registry import service as registry
from mlserve.serving.loader import load_pipeline
from mlserve.settings import Settings
from mlserve.store.orm import ModelVersion
from mlserve.training.signature import model_frame
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import frame_csv, keyed_client, train, upload

REGRESSION_METRICS = {"rmse", "mae", "r2", "n_samples"}
CLASSIFICATION_METRICS = {
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "confusion_matrix",
    "n_samples",
}
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def _artifact(ctx: Context, version: dict[str, Any]) -> bytes:
    return (Path(ctx.store.root) / "models" / f"{version['job_id']}.skops").read_bytes()


def _check_cv(cv: dict[str, Any], folds: int, keys: set[str]) -> None:
    assert cv["folds"] == folds
    assert set(cv) == {"folds", *keys}
    for key in keys:
        values = cv[key]["values"]
        assert len(values) == folds
        assert cv[key]["mean"] == pytest.approx(float(np.mean(values)), rel=1e-12)
        assert cv[key]["std"] == pytest.approx(float(np.std(values)), rel=1e-12, abs=1e-15)


@pytest.fixture
def diabetes_three(client: FlaskClient, diabetes_model: dict[str, Any]) -> dict[str, Any]:
    """Diabetes with versions 1 (alpha 1), 2 (alpha 10), 3 (alpha 100)."""
    for alpha in (10.0, 100.0):
        job = train(
            client,
            diabetes_model["dataset"]["id"],
            target="target",
            algorithm="ridge",
            model_name="diabetes",
            cv_folds=0,
            params={"alpha": alpha},
        ).get_json()
        assert job["status"] == "succeeded"
    return diabetes_model


# --------------------------------------------------------------------------- versions


def test_get_version_regression_describes_training(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any]
) -> None:
    response = client.get("/api/v1/models/diabetes/versions/1")
    assert response.status_code == 200
    version = response.get_json()
    assert (version["model_name"], version["version"]) == ("diabetes", 1)
    assert (version["task"], version["algorithm"]) == ("regression", "ridge")
    assert version["params"]["alpha"] == 1.0
    assert version["params"]["random_state"] == 0
    assert set(version["metrics"]) == REGRESSION_METRICS
    assert version["metrics"]["n_samples"] == math.ceil(442 * 0.2)
    _check_cv(version["cv_metrics"], 3, {"rmse", "mae", "r2"})
    features = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert version["signature"] == {
        "inputs": [
            {"name": f, "type": "number", "nullable": False, "imputed": True} for f in features
        ],
        "output": {"name": "target", "type": "number"},
    }
    assert version["dataset_id"] == diabetes_model["dataset"]["id"]
    assert version["job_id"] == diabetes_model["job"]["id"]
    assert version["training_seconds"] > 0
    assert version["runtime"] == "onnx"
    compiled = version["serving"]["compile"]
    assert compiled["runtime"] == "onnx" and compiled["reason"] is None
    assert compiled["rows_checked"] >= math.ceil(442 * 0.2)
    assert compiled["max_abs_error"] <= 1e-6
    assert version["serving"]["batching"]["runtime"] == "onnx"
    assert version["serving"]["batching"]["enabled"] is False
    assert len(version["onnx_sha256"]) == 64 and version["onnx_size_bytes"] > 0
    assert version["aliases"] == []
    data = _artifact(ctx, version)
    assert version["artifact_sha256"] == hashlib.sha256(data).hexdigest()
    assert version["artifact_size_bytes"] == len(data)


def test_get_version_regression_metrics_match_recomputation(
    ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    version = diabetes_model["version"]
    pipeline = load_pipeline(_artifact(ctx, version))
    X = model_frame(diabetes_frame.drop(columns="target"), version["signature"])
    y = diabetes_frame["target"].astype("float64")
    _X_train, X_test, _y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    predicted = pipeline.predict(X_test)
    metrics = version["metrics"]
    assert metrics["rmse"] == pytest.approx(
        skm.root_mean_squared_error(y_test, predicted), rel=1e-9
    )
    assert metrics["mae"] == pytest.approx(skm.mean_absolute_error(y_test, predicted), rel=1e-9)
    assert metrics["r2"] == pytest.approx(skm.r2_score(y_test, predicted), rel=1e-9)


def test_get_version_classification_describes_training(
    ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    version = iris_model["version"]
    assert (version["task"], version["algorithm"]) == ("classification", "logistic_regression")
    assert version["params"]["max_iter"] == 1000
    metrics = version["metrics"]
    assert set(metrics) == CLASSIFICATION_METRICS
    assert metrics["n_samples"] == 30
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert metrics["confusion_matrix"]["labels"] == IRIS_CLASSES
    assert matrix.shape == (3, 3) and matrix.sum() == 30
    assert matrix.sum(axis=1).tolist() == [10, 10, 10]  # stratified split
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / 30)
    for key in ("precision_macro", "recall_macro", "f1_macro", "roc_auc"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["log_loss"] > 0
    _check_cv(version["cv_metrics"], 3, {"accuracy", "f1_macro"})
    inputs = version["signature"]["inputs"]
    assert [i["name"] for i in inputs] == list(iris_frame.columns[:4])
    assert all(i["type"] == "number" and i["nullable"] is False for i in inputs)
    assert version["signature"]["output"] == {
        "name": "target",
        "type": "string",
        "classes": IRIS_CLASSES,
    }
    assert version["dataset_id"] == iris_model["dataset"]["id"]
    assert version["job_id"] == iris_model["job"]["id"]
    assert version["artifact_sha256"] == hashlib.sha256(_artifact(ctx, version)).hexdigest()


def test_get_version_classification_accuracy_matches_recomputation(
    ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    version = iris_model["version"]
    pipeline = load_pipeline(_artifact(ctx, version))
    X = model_frame(iris_frame.drop(columns="target"), version["signature"])
    y = iris_frame["target"]
    _a, X_test, _b, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    predicted = pipeline.predict(X_test)
    metrics = version["metrics"]
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_test, predicted), rel=1e-12)
    assert metrics["log_loss"] == pytest.approx(
        skm.log_loss(y_test, pipeline.predict_proba(X_test), labels=IRIS_CLASSES), rel=1e-9
    )
    assert (
        metrics["confusion_matrix"]["matrix"]
        == skm.confusion_matrix(y_test, predicted, labels=IRIS_CLASSES).tolist()
    )


def test_get_version_signature_lists_categories_and_nullable(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    frame = diabetes_frame.head(80).copy()
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    frame.loc[[3, 7], "bmi"] = np.nan
    frame["smoker"] = frame.index % 3 == 0
    frame["visits"] = frame.index % 5
    buffer = io.BytesIO(frame.to_csv(index=False).encode())
    dataset = client.post(
        "/api/v1/datasets", data={"file": (buffer, "mixed.csv")}, content_type="multipart/form-data"
    ).get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="mixed", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    inputs = {
        i["name"]: i
        for i in client.get("/api/v1/models/mixed/versions/1").get_json()["signature"]["inputs"]
    }
    assert inputs["sex"] == {
        "name": "sex",
        "type": "string",
        "nullable": False,
        "imputed": True,
        "categories": ["female", "male"],
    }
    imputed = {"imputed": True}
    assert inputs["bmi"] == {"name": "bmi", "type": "number", "nullable": True} | imputed
    assert inputs["smoker"] == {"name": "smoker", "type": "boolean", "nullable": False} | imputed
    assert inputs["visits"] == {"name": "visits", "type": "integer", "nullable": False} | imputed


def test_list_versions_newest_first(client: FlaskClient, diabetes_three: dict[str, Any]) -> None:
    response = client.get("/api/v1/models/diabetes/versions")
    assert response.status_code == 200
    versions = response.get_json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["params"]["alpha"] for v in versions] == [100.0, 10.0, 1.0]


# --------------------------------------------------------------------------- models


def test_list_models_sorted_with_latest_and_aliases(
    client: FlaskClient, diabetes_three: dict[str, Any], iris_model: dict[str, Any]
) -> None:
    assert (
        client.put("/api/v1/models/iris/aliases/production", json={"version": 1}).status_code == 200
    )
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    models = response.get_json()["models"]
    assert [m["name"] for m in models] == ["diabetes", "iris"]
    assert [m["latest_version"] for m in models] == [3, 1]
    assert [m["aliases"] for m in models] == [{}, {"production": 1}]
    assert all("versions" not in m for m in models)


def test_get_model_versions_newest_first_with_aliases(
    client: FlaskClient, diabetes_three: dict[str, Any]
) -> None:
    client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1})
    client.put("/api/v1/models/diabetes/aliases/staging", json={"version": 3})
    client.put("/api/v1/models/diabetes/aliases/canary", json={"version": 3})
    response = client.get("/api/v1/models/diabetes")
    assert response.status_code == 200
    model = response.get_json()
    assert model["name"] == "diabetes"
    assert model["latest_version"] == 3
    assert model["aliases"] == {"production": 1, "staging": 3, "canary": 3}
    assert [v["version"] for v in model["versions"]] == [3, 2, 1]
    assert [v["aliases"] for v in model["versions"]] == [["canary", "staging"], [], ["production"]]
    assert client.get("/api/v1/models/diabetes/versions/3").get_json()["aliases"] == [
        "canary",
        "staging",
    ]


# --------------------------------------------------------------------------- aliases


def test_put_alias_returns_200_and_moves(
    client: FlaskClient, diabetes_three: dict[str, Any]
) -> None:
    first = client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1})
    assert first.status_code == 200
    assert first.get_json() == {
        "model_name": "diabetes", "alias": "production", "version": 1, "policy": None
    }  # fmt: skip
    moved = client.put("/api/v1/models/diabetes/aliases/production", json={"version": 2})
    assert moved.status_code == 200
    assert moved.get_json()["version"] == 2
    assert client.get("/api/v1/models/diabetes").get_json()["aliases"] == {"production": 2}
    assert client.get("/api/v1/models/diabetes/versions/1").get_json()["aliases"] == []
    assert client.get("/api/v1/models/diabetes/versions/2").get_json()["aliases"] == ["production"]


def test_delete_alias_returns_204_and_removes(
    client: FlaskClient, diabetes_model: dict[str, Any]
) -> None:
    client.put("/api/v1/models/diabetes/aliases/staging", json={"version": 1})
    response = client.delete("/api/v1/models/diabetes/aliases/staging")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get("/api/v1/models/diabetes").get_json()["aliases"] == {}
    assert_error(client.delete("/api/v1/models/diabetes/aliases/staging"), 404, "not_found")


# --------------------------------------------------------------------------- refusals

BAD_REQUESTS = [
    # (case id, method, path, json body, status, code, expected details subset)
    (
        "unknown-model",
        "GET",
        "/api/v1/models/nope",
        None,
        404,
        "not_found",
        {"resource": "model", "key": "nope"},
    ),
    (
        "unknown-model-versions",
        "GET",
        "/api/v1/models/nope/versions",
        None,
        404,
        "not_found",
        {"resource": "model"},
    ),
    (
        "unknown-version",
        "GET",
        "/api/v1/models/diabetes/versions/9",
        None,
        404,
        "not_found",
        {"resource": "model_version", "version": 9},
    ),
    (
        "version-of-unknown-model",
        "GET",
        "/api/v1/models/nope/versions/1",
        None,
        404,
        "not_found",
        {"resource": "model"},
    ),
    (
        "version-not-a-number",
        "GET",
        "/api/v1/models/diabetes/versions/one",
        None,
        404,
        "not_found",
        {},
    ),
    (
        "alias-to-missing-version",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {"version": 9},
        404,
        "not_found",
        {"resource": "model_version", "version": 9},
    ),
    (
        "alias-on-unknown-model",
        "PUT",
        "/api/v1/models/nope/aliases/production",
        {"version": 1},
        404,
        "not_found",
        {"resource": "model"},
    ),
    (
        "alias-invalid-name",
        "PUT",
        "/api/v1/models/diabetes/aliases/Prod!",
        {"version": 1},
        422,
        "validation_error",
        {"field": "alias", "value": "Prod!"},
    ),
    (
        "alias-uppercase",
        "PUT",
        "/api/v1/models/diabetes/aliases/Production",
        {"version": 1},
        422,
        "validation_error",
        {"field": "alias"},
    ),
    (
        "alias-leading-digit",
        "PUT",
        "/api/v1/models/diabetes/aliases/1st",
        {"version": 1},
        422,
        "validation_error",
        {"field": "alias"},
    ),
    (
        "alias-reserved-latest",
        "PUT",
        "/api/v1/models/diabetes/aliases/latest",
        {"version": 1},
        422,
        "validation_error",
        {"field": "alias", "value": "latest"},
    ),
    (
        "alias-too-long",
        "PUT",
        "/api/v1/models/diabetes/aliases/" + "a" * 65,
        {"version": 1},
        422,
        "validation_error",
        {"field": "alias"},
    ),
    (
        "alias-version-zero",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {"version": 0},
        422,
        "validation_error",
        {"field": "version"},
    ),
    (
        "alias-version-boolean",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {"version": True},
        422,
        "validation_error",
        {"field": "version"},
    ),
    (
        "alias-version-float",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {"version": 1.0},
        422,
        "validation_error",
        {"field": "version"},
    ),
    (
        "alias-version-missing",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {},
        422,
        "validation_error",
        {"field": "version"},
    ),
    (
        "alias-version-text",
        "PUT",
        "/api/v1/models/diabetes/aliases/production",
        {"version": "one"},
        422,
        "validation_error",
        {"field": "version"},
    ),
    (
        "delete-unknown-alias",
        "DELETE",
        "/api/v1/models/diabetes/aliases/staging",
        None,
        404,
        "not_found",
        {"resource": "alias", "alias": "staging"},
    ),
    (
        "evaluation-unknown-version",
        "GET",
        "/api/v1/models/diabetes/versions/9/evaluation",
        None,
        404,
        "not_found",
        {"resource": "model_version", "version": 9},
    ),
    (
        "evaluation-unknown-model",
        "GET",
        "/api/v1/models/nope/versions/1/evaluation",
        None,
        404,
        "not_found",
        {"resource": "model", "key": "nope"},
    ),
    (
        "evaluation-version-zero",
        "GET",
        "/api/v1/models/diabetes/versions/0/evaluation",
        None,
        404,
        "not_found",
        {"resource": "model_version", "version": 0},
    ),
    (
        "delete-alias-unknown-model",
        "DELETE",
        "/api/v1/models/nope/aliases/staging",
        None,
        404,
        "not_found",
        {"resource": "alias"},
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlaskClient, Context]]:
    """One app for the module's refusal matrix: ``diabetes`` v1 as production.

    Each test still proves with :func:`stored_state` that it changed nothing.
    """
    home = tmp_path_factory.mktemp("models") / "home"
    application: Flask = create_app(Settings(home=home, jobs_immediate=True, log_level="WARNING"))
    client = keyed_client(application)
    frame = load_diabetes(as_frame=True).frame
    dataset = upload(client, frame_csv(frame), "diabetes.csv").get_json()
    job = train(
        client, dataset["id"], target="target", algorithm="ridge", model_name="diabetes", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    assert (
        client.put("/api/v1/models/diabetes/aliases/production", json={"version": 1}).status_code
        == 200
    )
    yield client, context_of(application)
    context_of(application).db.dispose()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_models_bad_request_is_refused_without_change(
    shared: tuple[FlaskClient, Context],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
    expected: dict[str, Any],
) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    response = client.open(path, method=method, json=body)
    details = assert_error(response, status, code)
    assert {k: details.get(k) for k in expected} == expected
    assert stored_state(ctx) == before


def test_put_alias_malformed_json_returns_400(shared: tuple[FlaskClient, Context]) -> None:
    client, ctx = shared
    before = stored_state(ctx)
    response = client.put(
        "/api/v1/models/diabetes/aliases/production",
        data=b'{"version": ',
        content_type="application/json",
    )
    # The code is "bad_request" here (webargs parses this body), "malformed_json" on
    # predict and training-jobs; the status and the envelope are the same.
    assert response.status_code == 400
    assert set(response.get_json()["error"]) == {"code", "message", "details"}
    assert stored_state(ctx) == before


# --------------------------------------------------------------------------- evaluation


def evaluation_of(client: FlaskClient, name: str, version: int = 1) -> dict[str, Any]:
    response = client.get(f"/api/v1/models/{name}/versions/{version}/evaluation")
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_evaluation_regression_points_are_the_models_test_predictions(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    version = diabetes_model["version"]
    body = evaluation_of(client, "diabetes")
    assert set(body) == {
        "model_name",
        "version",
        "task",
        "rows",
        "n_test",
        "predicted_vs_actual",
        "residuals",
        "permutation_importance",
        "permutation_importance_sample",
        "shap_summary",
        "cv",
    }  # the background sample stored beside them is not served
    assert (body["model_name"], body["version"], body["task"]) == ("diabetes", 1, "regression")
    assert body["rows"] == "test split" and version["has_evaluation"] is True
    assert body["n_test"] == version["metrics"]["n_samples"] == 89
    assert body["cv"] == version["cv_metrics"]
    pipeline = load_pipeline(_artifact(ctx, version))
    X = model_frame(diabetes_frame.drop(columns="target"), version["signature"])
    y = diabetes_frame["target"].astype("float64")
    _X_train, X_test, _y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    points = body["predicted_vs_actual"]
    assert points["n_total"] == 89
    assert points["actual"] == y_test.tolist()
    assert points["predicted"] == pipeline.predict(X_test).tolist()
    residuals = y_test.to_numpy() - pipeline.predict(X_test)
    assert sum(body["residuals"]["counts"]) == 89
    counts, _ = np.histogram(residuals, bins=body["residuals"]["edges"])
    assert body["residuals"]["counts"] == counts.tolist()
    features = [row["feature"] for row in body["permutation_importance"]]
    assert sorted(features) == sorted(X.columns)
    means = [row["mean"] for row in body["permutation_importance"]]
    assert means == sorted(means, reverse=True)


def test_evaluation_classification_matches_sklearn_on_the_test_split(
    client: FlaskClient, ctx: Context, iris_model: dict[str, Any], iris_frame: pd.DataFrame
) -> None:
    version = iris_model["version"]
    body = evaluation_of(client, "iris")
    assert body["task"] == "classification" and body["n_test"] == 30
    assert "predicted_vs_actual" not in body and "residuals" not in body
    assert body["confusion_matrix"] == version["metrics"]["confusion_matrix"]
    assert sum(map(sum, body["confusion_matrix"]["matrix"])) == 30
    pipeline = load_pipeline(_artifact(ctx, version))
    X = model_frame(iris_frame.drop(columns="target"), version["signature"])
    y = iris_frame["target"]
    _a, X_test, _b, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    proba = pipeline.predict_proba(X_test)
    assert [curve["label"] for curve in body["roc"]] == IRIS_CLASSES
    for index, (roc, pr) in enumerate(zip(body["roc"], body["precision_recall"], strict=True)):
        positive = (y_test == IRIS_CLASSES[index]).to_numpy()
        assert roc["auc"] == pytest.approx(skm.roc_auc_score(positive, proba[:, index]), rel=1e-12)
        assert (roc["fpr"][0], roc["tpr"][-1]) == (0.0, 1.0)
        assert pr["label"] == IRIS_CLASSES[index]
        assert pr["average_precision"] == pytest.approx(
            skm.average_precision_score(positive, proba[:, index]), rel=1e-12
        )
    macro = np.mean([roc["auc"] for roc in body["roc"]])
    assert macro == pytest.approx(version["metrics"]["roc_auc"], rel=1e-12)


def test_evaluation_not_recorded_returns_404(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any]
) -> None:
    with ctx.db.session() as session:  # a version registered before evaluations existed
        session.execute(update(ModelVersion).values(evaluation=None))
    # The version says so, for clients (the version page) not to ask for it.
    assert client.get("/api/v1/models/diabetes/versions/1").get_json()["has_evaluation"] is False
    [listed] = client.get("/api/v1/models/diabetes").get_json()["versions"]
    assert listed["has_evaluation"] is False
    response = client.get("/api/v1/models/diabetes/versions/1/evaluation")
    details = assert_error(response, 404, "not_found")
    assert (details["resource"], details["model"], details["version"]) == (
        "evaluation",
        "diabetes",
        1,
    )
    assert client.get("/api/v1/models/diabetes/versions/1").status_code == 200


def test_version_listing_does_not_load_the_evaluation(
    ctx: Context, diabetes_model: dict[str, Any]
) -> None:
    [row] = registry.list_versions(ctx, "diabetes")
    assert "evaluation" in inspect(row).unloaded
    assert {"has_evaluation", "has_own_reference"}.isdisjoint(inspect(row).unloaded)
    assert row.has_evaluation is True and row.has_own_reference is True


def test_migration_0006_turns_json_null_into_sql_null(tmp_path: Path) -> None:
    """Versions of online updates before 0006 stored JSON null, which IS NOT NULL, in
    ``evaluation`` and ``reference``; after it, ``has_evaluation`` reads false for them."""
    from alembic import command
    from sqlalchemy import text

    from mlserve.store.database import Database, alembic_config

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.engine.begin() as connection:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    base = {"model_name": "m", "task": "regression", "algorithm": "ridge", "params": "{}"}
    base |= {"metrics": "{}", "cv_metrics": "{}", "signature": "{}", "serving": "{}"}
    base |= {"training_seconds": 1.0, "artifact_key": "k", "artifact_sha256": "s"}
    base |= {"artifact_size_bytes": 1, "runtime": "sklearn", "created_at": "2026-01-01"}
    stored = [(1, '{"task": "regression"}', "{}"), (2, "null", "null"), (3, None, None)]
    rows = [base | {"version": v, "evaluation": e, "reference": r} for v, e, r in stored]
    names = ", ".join(rows[0])
    values = ", ".join(f":{name}" for name in rows[0])
    with db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO registered_model VALUES ('m', '2026-01-01', '2026-01-01')")
        )
        connection.execute(text(f"INSERT INTO model_version ({names}) VALUES ({values})"), rows)
    db.upgrade()
    with db.session() as session:
        found = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        flags = [(r.version, r.has_evaluation, r.has_own_reference) for r in found]
    db.dispose()
    assert flags == [(1, True, True), (2, False, False), (3, False, False)]
