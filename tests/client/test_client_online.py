"""The Python client's online learning methods against the real app (in-process WSGI)."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import pytest
from flask import Flask

from mlserve.client import ApiError, Client
from mlserve.context import Context
from tests.conftest import frame_csv, keyed_client, train, upload


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(
        update={
            "online_update_every_samples": 40,
            "online_guard_window_samples": 20,
            "prediction_log_sample_rate": 1.0,
        }
    )


def test_client_streams_samples_gives_feedback_and_reads_drift(
    app: Flask, ctx: Context, diabetes_frame: pd.DataFrame
) -> None:
    admin = keyed_client(app)
    dataset = upload(admin, frame_csv(diabetes_frame.iloc[:300]), "d.csv").get_json()
    job = train(
        admin, dataset["id"], target="target", algorithm="sgd_regressor", model_name="s", cv_folds=0
    ).get_json()
    assert job["status"] == "succeeded", job
    key = app.extensions["test_keys"]["admin"]
    rest = diabetes_frame.iloc[300:]
    rows = rest.drop(columns="target").to_dict("records")
    with Client("http://mlserve", api_key=key, transport=httpx.WSGITransport(app=app)) as client:
        stored = client.post_samples("s", rows[:60], rest["target"].iloc[:60].tolist())
        assert stored["received"] == 60 and stored["update_queued"] is True
        assert client.online_state("s")["head_version"] == 2
        assert client.online_update("s")["pending"] == 20
        predicted = client.predict("s", rows[:120])
        assert ctx.prediction_log.flush()
        done = client.feedback(predicted["prediction_id"], rest["target"].iloc[:120].tolist())
        assert done["n_rows"] == 120
        live = client.live_metrics("s", predicted["model_version"], window=50)
        assert live["n_samples"] == 50 and live["metrics"]["rmse"] > 0
        drift = client.drift("s", 1, window=100, source="samples")
        assert drift["window"] == {"source": "samples", "requested": 100, "rows": 60}
        retrained = client.retrain("s")
        assert retrained["status"] == "succeeded" and retrained["spec"]["include_samples"]
        with pytest.raises(ApiError) as info:
            client.feedback("0" * 32, [1.0])
        assert info.value.status_code == 404
