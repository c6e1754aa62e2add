"""A JSON boolean is not a number in any body (schemathesis found ``{"version": true}``
accepted on the alias route; issue 13 checked every other body)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, train, upload

REFUSED = {
    "cv_folds": ({"cv_folds": True}, "cv_folds"),
    "test_size": ({"test_size": True}, "test_size"),
    "random_state": ({"random_state": False}, "random_state"),
    "params.alpha": ({"params": {"alpha": True}}, "params.alpha"),
    "params.max_iter": ({"params": {"max_iter": True}}, "params.max_iter"),
}


@pytest.mark.parametrize(("extra", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_training_body_refuses_booleans_for_numbers(
    client: FlaskClient, diabetes_frame: pd.DataFrame, extra: dict[str, Any], field: str
) -> None:
    dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()
    spec = {"target": "target", "algorithm": "ridge", "model_name": "m", "cv_folds": 0, **extra}
    details = assert_error(train(client, dataset["id"], **spec), 422, "validation_error")
    assert details["field"] == field


def test_boolean_hyper_parameter_still_takes_a_boolean(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()
    job = train(client, dataset["id"], target="target", algorithm="ridge", model_name="m",
                cv_folds=0, params={"fit_intercept": False})  # fmt: skip
    assert job.status_code == 202 and job.get_json()["status"] == "succeeded"


def test_predict_bodies_refuse_booleans_for_numbers(
    client: FlaskClient, diabetes_model: dict[str, Any], diabetes_frame: pd.DataFrame
) -> None:
    row = diabetes_frame.drop(columns="target").iloc[0].to_dict()
    bodies = [
        ("/api/v1/models/diabetes/predict", {"instances": [{**row, "age": True}]}),
        (
            "/api/v1/models/diabetes/predict",
            {"inputs": {**{k: [v] for k, v in row.items()}, "age": [False]}},
        ),
        ("/v1/models/diabetes:predict", {"instances": [{**row, "age": True}]}),
    ]
    for url, body in bodies:
        details = assert_error(client.post(url, json=body), 422, "validation_error")
        assert details["field"] == "age"
    assert_error(
        client.post("/api/v1/models/diabetes/predict?version=true", json={"instances": [row]}),
        422,
        "validation_error",
    )
    assert_error(client.post("/api/v1/keys", json={"role": "viewer", "expires_in_days": True}),
                 422, "validation_error")  # fmt: skip
