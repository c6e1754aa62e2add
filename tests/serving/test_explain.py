"""Explanations over HTTP: additivity, output spaces, agreement with permutation importance,
limits, background samples, and the version a policy selects."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer
from sqlalchemy import select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.serving.explain_cache import ExplainerCache
from mlserve.settings import Settings
from mlserve.store.orm import Dataset, ModelVersion
from mlserve.training import fit as fit_module
from tests.api.test_api_datasets import assert_error
from tests.conftest import CALIFORNIA_CSV, CALIFORNIA_TARGET, frame_csv, keyed_client, train, upload

# model name -> (dataset, algorithm, method, output space)
MODELS = {
    "cal_linear": ("california", "ridge", "linear", "raw"),
    # native categorical splits (ocean_proximity): TreeSHAP on the expanded trees (hgb_trees)
    "cal_tree": ("california", "gradient_boosting", "tree", "raw"),
    "cal_knn": ("california", "knn", "permutation", "raw"),
    "bc_linear": ("cancer", "logistic_regression", "linear", "log-odds"),
    "bc_tree": ("cancer", "gradient_boosting", "tree", "log-odds"),
    "bc_forest": ("cancer", "random_forest", "tree", "probability"),
}
EXACT = [name for name, spec in MODELS.items() if spec[2] != "permutation"]
# Compared with permutation importance: the california models first, then breast cancer's
# exact ones.
AGREEMENT = ["cal_linear", "cal_tree", *(name for name in EXACT if name.startswith("bc_"))]


def _frames() -> dict[str, pd.DataFrame]:
    if not CALIFORNIA_CSV.is_file():
        pytest.skip(f"{CALIFORNIA_CSV} is missing (it lives in ../shared/datasets)")
    california = pd.read_csv(CALIFORNIA_CSV).sample(3000, random_state=0)
    cancer = load_breast_cancer(as_frame=True).frame
    cancer["target"] = np.where(cancer["target"] == 1, "benign", "malignant")
    return {"california": california, "cancer": cancer}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return _frames()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, frames: dict[str, pd.DataFrame]
) -> Iterator[Flask]:
    """One app: the models of :data:`MODELS`, trained once (every test here only reads,
    but for the ones that say otherwise on their own models)."""
    home = tmp_path_factory.mktemp("explain") / "home"
    app = create_app(
        Settings(home=home, jobs_immediate=True, log_level="WARNING", model_refresh_interval_ms=0)
    )
    client = keyed_client(app)
    ids = {
        key: upload(client, frame_csv(f), f"{key}.csv").get_json()["id"]
        for key, f in frames.items()
    }
    # The importance the agreement test compares with is the seeded full plan, not one
    # sized by how fast this machine is at the moment (a loaded one cut it to 2 repeats).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_module, "extras_budget_s", lambda fit_seconds: math.inf)
        for name, (data, algorithm, _, _) in MODELS.items():
            target = CALIFORNIA_TARGET if data == "california" else "target"
            job = train(
                client, ids[data], target=target, algorithm=algorithm, model_name=name, cv_folds=0
            ).get_json()
            assert job["status"] == "succeeded", job
    yield app
    context_of(app).db.dispose()


@pytest.fixture
def client(served: Flask) -> FlaskClient:
    return keyed_client(served)


def instances(frames: dict[str, pd.DataFrame], name: str, n: int, start: int = 0) -> list[Any]:
    data = MODELS[name][0]
    frame = frames[data].drop(columns=CALIFORNIA_TARGET if data == "california" else "target")
    rows = frame.iloc[start : start + n].astype(object).where(frame.iloc[start : start + n].notna())
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]


@pytest.mark.parametrize("name", list(MODELS))
def test_contributions_add_up_to_the_models_own_output(
    client: FlaskClient, frames: dict[str, pd.DataFrame], name: str
) -> None:
    _, _, method, space = MODELS[name]
    rows = instances(frames, name, 5)
    answer = client.post(f"/api/v1/models/{name}/explain", json={"instances": rows})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["method"], body["output_space"], body["model_version"]) == (method, space, 1)
    assert body["features"] == list(rows[0])  # original features, not one-hot columns
    predicted = client.post(f"/api/v1/models/{name}/predict", json={"instances": rows}).get_json()
    for i, row in enumerate(body["explanations"]):
        total = row["base_value"] + sum(row["contributions"].values())
        assert total == pytest.approx(row["output"], abs=1e-6)
        if space == "raw":  # ONNX Runtime serves predictions: equal within rounding
            assert row["prediction"] == pytest.approx(predicted["predictions"][i], rel=1e-9)
            assert row["output"] == pytest.approx(predicted["predictions"][i], rel=1e-9)
            continue
        assert row["prediction"] == predicted["predictions"][i]
        probability = predicted["probabilities"][i][predicted["classes"].index(row["class"])]
        shown = expit(row["output"]) if space == "log-odds" else row["output"]
        assert shown == pytest.approx(probability, abs=1e-6)
        assert row["class"] == "malignant"  # the positive class of a binary model


def test_top_features_agree_with_permutation_importance_on_average(
    client: FlaskClient, frames: dict[str, pd.DataFrame]
) -> None:
    """Mean |contribution| on 100 rows against the permutation importance recorded at
    training: Spearman's rank correlation over the features, and how many of our top 3
    are in its top 5. California agrees closely; breast cancer's 30 features are strongly
    correlated, and permuting one of a correlated group barely moves the score, so its
    permutation importance spreads thin (measured: Spearman 0.49, 0.22 and -0.07 for the
    logistic, boosted and forest models, one of our top 3 in its top 5)."""
    correlations, overlaps = [], []
    for name in AGREEMENT:
        body = client.post(
            f"/api/v1/models/{name}/explain", json={"instances": instances(frames, name, 100, 100)}
        ).get_json()
        ours = pd.DataFrame([r["contributions"] for r in body["explanations"]]).abs().mean()
        evaluation = client.get(f"/api/v1/models/{name}/versions/1/evaluation").get_json()
        theirs = pd.Series({r["feature"]: r["mean"] for r in evaluation["permutation_importance"]})
        correlations.append(spearmanr(ours, theirs[ours.index]).statistic)
        top = set(ours.sort_values(ascending=False).index[:3])
        overlaps.append(len(top & set(theirs.sort_values(ascending=False).index[:5])) / 3)
    found = (correlations, overlaps)
    assert min(correlations[:2]) >= 0.8 and overlaps[:2] == [1.0, 1.0], found  # california
    assert np.mean(correlations) >= 0.4 and np.mean(overlaps) >= 0.5, found


@pytest.mark.parametrize("name", list(MODELS))
def test_training_records_a_summary_on_the_test_split(client: FlaskClient, name: str) -> None:
    evaluation = client.get(f"/api/v1/models/{name}/versions/1/evaluation").get_json()
    summary = evaluation["shap_summary"]
    assert (summary["method"], summary["output_space"]) == MODELS[name][2:]
    means = [f["mean_abs"] for f in summary["features"]]
    assert means == sorted(means, reverse=True) and means[0] > 0
    assert "explain_background" not in evaluation  # training rows are not served


def test_row_cap_is_413_and_bad_rows_422(client: FlaskClient, frames: dict[str, Any]) -> None:
    url = "/api/v1/models/cal_tree/explain"
    rows = instances(frames, "cal_tree", 101)
    assert (
        assert_error(client.post(url, json={"instances": rows}), 413, "payload_too_large")["limit"]
        == 100
    )
    bad = [{**rows[0], "median_income": "lots"}]
    details = assert_error(client.post(url, json={"instances": bad}), 422, "validation_error")
    assert details["field"] == "median_income"


def test_time_budget_refuses_a_slow_explanation(
    served: Flask, client: FlaskClient, frames: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_of(served).settings, "explain_budget_s", 1e-9)
    answer = client.post(
        "/api/v1/models/cal_knn/explain", json={"instances": instances(frames, "cal_knn", 3)}
    )
    assert "explain_budget_s" in assert_error(answer, 422, "validation_error")["message"]


def test_old_version_uses_its_dataset_else_is_refused(
    served: Flask, client: FlaskClient, frames: dict[str, Any]
) -> None:
    ctx = context_of(served)
    url = "/api/v1/models/cal_linear/explain"
    rows = instances(frames, "cal_linear", 2)
    before = client.post(url, json={"instances": rows}).get_json()
    with ctx.db.session() as session:  # as if trained before explanations existed
        row = session.scalars(
            select(ModelVersion).where(ModelVersion.model_name == "cal_linear")
        ).one()
        saved = dict(row.evaluation or {})
        row.evaluation = {k: v for k, v in saved.items() if k != "explain_background"}
        dataset = session.get(Dataset, row.dataset_id)
        assert dataset is not None
        path = Path(ctx.store.root) / dataset.artifact_key
    try:
        ctx.explainers = ExplainerCache(4)
        from_dataset = client.post(url, json={"instances": rows}).get_json()
        assert from_dataset["method"] == "linear"
        first = from_dataset["explanations"][0]
        assert first["output"] == pytest.approx(before["explanations"][0]["output"], rel=1e-12)
        assert first["base_value"] + sum(first["contributions"].values()) == pytest.approx(
            first["output"], abs=1e-6
        )
        moved = path.with_name(path.name + ".away")
        path.rename(moved)
        ctx.explainers = ExplainerCache(4)
        refused = assert_error(client.post(url, json={"instances": rows}), 422, "validation_error")
        assert "no background sample" in refused["message"]
        moved.rename(path)
    finally:
        with ctx.db.session() as session:
            stored = session.scalars(
                select(ModelVersion).where(ModelVersion.model_name == "cal_linear")
            ).one()
            stored.evaluation = saved
        ctx.explainers = ExplainerCache(4)


def test_explanation_follows_the_alias_policy(tmp_path: Path, diabetes_frame: pd.DataFrame) -> None:
    app = create_app(Settings(home=tmp_path / "h", jobs_immediate=True, log_level="WARNING"))
    client = keyed_client(app)
    dataset = upload(client, frame_csv(diabetes_frame)).get_json()
    for algorithm in ("ridge", "decision_tree"):
        train(client, dataset["id"], target="target", algorithm=algorithm, model_name="d")
    policy = {"version": 1, "canary": {"version": 2, "weight": 0.5}}
    client.put("/api/v1/models/d/aliases/production", json=policy)
    rows = diabetes_frame.drop(columns="target").head(1).to_dict("records")
    answered = {}
    for key in ("a", "b", "c", "d", "e", "f"):
        body = {"instances": rows, "routing_key": key}
        explained = client.post("/api/v1/models/d/explain", json=body).get_json()
        predicted = client.post("/api/v1/models/d/predict", json=body).get_json()
        assert explained["model_version"] == predicted["model_version"]
        answered[explained["model_version"]] = explained["method"]
    assert answered == {1: "linear", 2: "tree"}
    context_of(app).db.dispose()
