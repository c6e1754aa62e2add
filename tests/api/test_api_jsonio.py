"""JSON bodies: content type enforced on every JSON endpoint, orjson responses."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/training-jobs", '{"dataset_id": "x"}'),
        ("put", "/api/v1/models/diabetes/aliases/production", '{"version": 1}'),
        ("post", "/api/v1/models/diabetes/predict", '{"instances": [{}]}'),
        ("post", "/v1/models/diabetes:predict", '{"instances": [{}]}'),
    ],
)
def test_json_endpoints_refuse_other_content_types(
    client: FlaskClient, method: str, path: str, body: str, content_type: str
) -> None:
    response = getattr(client, method)(path, data=body, content_type=content_type)
    assert response.status_code == 415
    error: dict[str, Any] = response.get_json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["details"] == {"content_type": content_type}


def test_json_endpoint_accepts_a_body_without_content_type(
    client: FlaskClient, diabetes_model: dict[str, Any]
) -> None:
    response = client.put("/api/v1/models/diabetes/aliases/production", data='{"version": 1}')
    assert response.status_code == 200


def test_responses_are_json_with_utc_timestamps(
    client: FlaskClient, diabetes_model: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/training-jobs/{diabetes_model['job']['id']}")
    assert response.mimetype == "application/json"
    assert response.get_json()["created_at"].endswith("+00:00")
