"""Prediction ids, the asynchronous prediction log, feedback, live metrics, drift, /metrics."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.metrics import root_mean_squared_error
from sqlalchemy import func, select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.monitoring.prediction_log import PredictionLogger
from mlserve.store.orm import PredictionLog
from tests.conftest import just_before_an_update, keyed_client


@pytest.fixture
def settings(settings: Any) -> Any:
    """Every prediction logged."""
    return settings.model_copy(update={"prediction_log_sample_rate": 1.0})


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.drop(columns=["target"]).to_dict(orient="records")
    return records


def predict(client: FlaskClient, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/api/v1/models/diabetes/predict", json={"instances": rows})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_feedback_gives_live_metrics_per_version(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    frames = [diabetes_frame.iloc[i : i + 10] for i in range(0, 60, 10)]
    answers = [predict(client, rows_of(f)) for f in frames]
    assert len({a["prediction_id"] for a in answers}) == len(frames)
    assert ctx.prediction_log.flush()
    for frame, answer in zip(frames, answers, strict=True):
        response = client.post(
            f"/api/v1/predictions/{answer['prediction_id']}/feedback",
            json={"targets": frame["target"].tolist()},
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["n_rows"] == 10
    live = client.get("/api/v1/models/diabetes/versions/1/live-metrics?window=30").get_json()
    assert live["n_samples"] == 30
    # The most recent feedback first: the last three requests.
    truth = np.concatenate([f["target"].to_numpy() for f in frames[3:]])
    predicted = np.concatenate([a["predictions"] for a in answers[3:]])
    assert live["metrics"]["rmse"] == pytest.approx(root_mean_squared_error(truth, predicted))
    again = client.post(
        f"/api/v1/predictions/{answers[0]['prediction_id']}/feedback", json={"targets": [1] * 10}
    )
    assert again.status_code == 409


def test_two_feedbacks_sent_at_once_keep_the_first_and_refuse_the_second(
    client: FlaskClient, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    """The other feedback is written just before this one's write reaches the database."""
    answer = predict(client, rows_of(diabetes_frame.iloc[:2]))
    assert ctx.prediction_log.flush()
    url = f"/api/v1/predictions/{answer['prediction_id']}/feedback"
    with just_before_an_update(
        ctx, "prediction_log", lambda: client.post(url, json={"targets": [1.0, 2.0]}).status_code
    ) as first:
        second = client.post(url, json={"targets": [3.0, 4.0]})
    assert first == [200]
    assert second.status_code == 409, second.get_json()
    with ctx.db.session() as session:
        assert session.get(PredictionLog, answer["prediction_id"]).feedback == [1.0, 2.0]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"targets": [1.0, 2.0]}, 422, "targets"),
        ({"targets": ["a"] * 10}, 422, "targets"),
        ({"target": 1.0}, 422, "targets"),  # ten rows were predicted
        ({}, 422, "targets"),
        ({"targets": [1.0] * 10, "x": 1}, 422, "x"),
    ],
)
def test_bad_feedback_is_422(
    client: FlaskClient,
    ctx: Context,
    diabetes_model: dict[str, Any],
    diabetes_frame: pd.DataFrame,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    answer = predict(client, rows_of(diabetes_frame.iloc[:10]))
    assert ctx.prediction_log.flush()
    response = client.post(f"/api/v1/predictions/{answer['prediction_id']}/feedback", json=body)
    assert response.status_code == status
    assert response.get_json()["error"]["details"]["field"] == field


def test_unlogged_prediction_feedback_is_404(
    tmp_path: Any, diabetes_frame: pd.DataFrame, diabetes_model: dict[str, Any]
) -> None:
    app = create_app(home=tmp_path / "other", jobs_immediate=True, prediction_log_sample_rate=0.0)
    try:
        ctx: Context = context_of(app)
        client = keyed_client(app)
        from tests.conftest import frame_csv, train, upload

        dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()
        train(client, dataset["id"], target="target", algorithm="ridge", model_name="diabetes")
        answer = predict(client, rows_of(diabetes_frame.iloc[:1]))
        assert len(answer["prediction_id"]) == 32
        assert ctx.prediction_log.flush()
        response = client.post(
            f"/api/v1/predictions/{answer['prediction_id']}/feedback", json={"target": 1.0}
        )
        assert response.status_code == 404
        assert "not sampled" in response.get_json()["error"]["message"]
        with ctx.db.session() as session:
            assert session.scalar(select(func.count()).select_from(PredictionLog)) == 0
    finally:
        context_of(app).db.dispose()


def test_full_queue_drops_and_counts_without_blocking(ctx: Context) -> None:
    logger = PredictionLogger(db=ctx.db, sample_rate=1.0, queue_size=1)
    release = threading.Event()
    entered = threading.Event()

    def stuck(entries: list[Any]) -> None:
        entered.set()
        release.wait(10)

    logger.write = stuck  # type: ignore[method-assign]
    values = np.array([1.0])
    assert logger.submit("a" * 32, "m", 1, instances=[{"x": 1}], inputs=None, predictions=values)
    assert entered.wait(5)  # the writer holds the first entry
    assert logger.submit(
        "b" * 32, "m", 1, instances=[{"x": 1}], inputs=None, predictions=values
    )  # fills the queue
    assert not logger.submit(
        "c" * 32, "m", 1, instances=[{"x": 1}], inputs=None, predictions=values
    )
    assert logger.dropped == 1
    release.set()
    assert logger.flush()


@pytest.mark.parametrize(
    ("instances", "inputs", "predictions", "features", "stored"),
    [
        (  # records: text, nulls, ints and floats as sent
            [{"x": 1.5, "c": "a", "n": None}, {"x": 2, "c": 'é,"q"', "n": 3}],
            None,
            np.array([0.25, 1e300]),
            {"x": [1.5, 2], "c": ["a", 'é,"q"'], "n": [None, 3]},
            [0.25, 1e300],
        ),
        (  # columnar inputs of numpy values (V2 tensors), class labels, a NaN output
            None,
            {"x": np.array([1.0, 2.0]), "k": np.array([3, 4], dtype=np.int64)},
            np.array([np.nan, 2.0]),
            {"x": [1.0, 2.0], "k": [3, 4]},
            [None, 2.0],  # not finite: null, valid JSON on every database
        ),
        (
            None,
            {"b": [True, False]},
            np.array(["yes", "no"], dtype=object),
            {"b": [True, False]},
            ["yes", "no"],
        ),
    ],
)
def test_logged_requests_read_back_as_json_values(
    ctx: Context,
    instances: Any,
    inputs: Any,
    predictions: np.ndarray,
    features: dict[str, Any],
    stored: list[Any],
) -> None:
    logger = PredictionLogger(db=ctx.db, sample_rate=1.0, queue_size=10)
    assert logger.submit(
        "d" * 32, "m", 3, instances=instances, inputs=inputs, predictions=predictions
    )
    assert logger.flush() and logger.written == 1 and logger.failed == 0
    with ctx.db.session() as session:
        row = session.scalars(select(PredictionLog).where(PredictionLog.id == "d" * 32)).one()
        assert row.features == features  # JSON objects, not JSON text in a JSON column
        assert row.predictions == stored
        assert (row.model_name, row.version, row.n_rows) == ("m", 3, 2)
        assert row.feedback is None and row.shadow_of is None


def test_prometheus_metrics_need_read_and_show_live_metrics_and_drift(
    app: Flask, ctx: Context, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    client = keyed_client(app)
    answer = predict(client, rows_of(diabetes_frame.iloc[:150]))
    assert ctx.prediction_log.flush()
    client.post(
        f"/api/v1/predictions/{answer['prediction_id']}/feedback",
        json={"targets": diabetes_frame["target"].iloc[:150].tolist()},
    )
    assert app.test_client().get("/metrics").status_code == 401
    assert keyed_client(app, "predictor").get("/metrics").status_code == 403
    response = keyed_client(app, "viewer").get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'mlserve_live_metric{metric="rmse",model="diabetes",version="1"}' in text
    assert 'mlserve_drift_psi{feature="bmi",model="diabetes",version="1"}' in text
    assert 'mlserve_drift_ks_statistic{feature="age",model="diabetes",version="1"}' in text
    assert "mlserve_prediction_log_written_total 1.0" in text


def test_drift_endpoint_validates_its_query(
    client: FlaskClient, diabetes_model: dict[str, Any]
) -> None:
    for query, field in (("window=0", "window"), ("window=x", "window"), ("source=y", "source")):
        response = client.get(f"/api/v1/models/diabetes/versions/1/drift?{query}")
        assert response.status_code == 422
        assert response.get_json()["error"]["details"]["field"] == field
    empty = client.get("/api/v1/models/diabetes/versions/1/drift").get_json()
    assert empty["window"]["rows"] == 0 and empty["drifted"] == []
    assert client.get("/api/v1/models/diabetes/versions/9/drift").status_code == 404
