"""Fixtures of the online learning tests: a small policy and a model learning from samples."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from tests.conftest import frame_csv, train, upload


@pytest.fixture
def settings(settings: Any) -> Any:
    """Small policy numbers: an update every 40 samples beyond a guard window of 20; the
    guard judges older samples and the test split from 10 rows."""
    return settings.model_copy(
        update={
            "online_update_every_samples": 40,
            "online_guard_window_samples": 20,
            "online_guard_min_rows": 10,
        }
    )


def samples_of(frame: pd.DataFrame, target: str = "target") -> dict[str, Any]:
    features = frame.drop(columns=[target])
    return {
        "instances": features.to_dict(orient="records"),
        "targets": frame[target].tolist(),
    }


def post_samples(client: FlaskClient, name: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/models/{name}/samples", json=body)


@pytest.fixture
def sgd(client: FlaskClient, diabetes_frame: pd.DataFrame) -> dict[str, Any]:
    """``stream``: sgd_regressor on the first 300 diabetes rows."""
    dataset = upload(client, frame_csv(diabetes_frame.iloc[:300]), "d.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target="target",
        algorithm="sgd_regressor",
        model_name="stream",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job
    return {"dataset": dataset, "rest": diabetes_frame.iloc[300:].reset_index(drop=True)}
