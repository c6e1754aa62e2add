"""Demo models: trained on bundled real data, registered once, served under production."""

from __future__ import annotations

from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.jobs.demo import ensure_demo_models


def test_ensure_demo_models_registers_each_once(ctx: Context, client: FlaskClient) -> None:
    assert ensure_demo_models(ctx) == ["diabetes", "breast_cancer"]
    assert ensure_demo_models(ctx) == []
    models = {m["name"]: m for m in client.get("/api/v1/models").get_json()["models"]}
    assert models["diabetes"]["aliases"] == {"production": 1}
    assert models["breast_cancer"]["latest_version"] == 1


def test_demo_models_have_real_metrics_and_lineage(ctx: Context, client: FlaskClient) -> None:
    ensure_demo_models(ctx)
    diabetes = client.get("/api/v1/models/diabetes/versions/1").get_json()
    cancer = client.get("/api/v1/models/breast_cancer/versions/1").get_json()
    assert diabetes["task"] == "regression" and diabetes["algorithm"] == "ridge"
    assert diabetes["metrics"]["r2"] > 0.3
    assert cancer["task"] == "classification"
    assert cancer["metrics"]["accuracy"] > 0.95
    assert cancer["signature"]["output"]["classes"] == ["benign", "malignant"]
    job = client.get(f"/api/v1/training-jobs/{cancer['job_id']}").get_json()
    assert job["status"] == "succeeded" and job["dataset_id"] == cancer["dataset_id"]


def test_demo_classifier_predicts_labels_with_probabilities(
    ctx: Context, client: FlaskClient
) -> None:
    from sklearn.datasets import load_breast_cancer

    ensure_demo_models(ctx)
    bunch = load_breast_cancer(as_frame=True)
    rows = bunch.data.head(5).to_dict(orient="records")
    body = client.post("/api/v1/models/breast_cancer/predict", json={"instances": rows}).get_json()
    expected = bunch.target_names[bunch.target.head(5)].tolist()
    assert body["predictions"] == expected
    assert body["classes"] == ["benign", "malignant"]
    assert all(abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])
