"""HTTP contract of GET /api/v1/algorithms: the catalogue with hyper-parameters, by task."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlserve.training.catalogue import CATALOGUE, algorithm_names
from tests.api.test_api_datasets import assert_error
from tests.conftest import keyed_client

URL = "/api/v1/algorithms"
PARAM_KEYS = {
    "name",
    "default",
    "type",
    "items",
    "choices",
    "minimum",
    "maximum",
    "exclusive_minimum",
    "exclusive_maximum",
    "nullable",
    "accepts",
}


def _one(body: dict[str, Any], name: str, task: str) -> dict[str, Any]:
    found = [a for a in body["algorithms"] if a["name"] == name and a["task"] == task]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_algorithms_of_a_task_are_the_catalogue_sorted_by_name(
    client: FlaskClient, task: str
) -> None:
    response = client.get(URL, query_string={"task": task})
    assert response.status_code == 200
    algorithms = response.get_json()["algorithms"]
    assert [a["name"] for a in algorithms] == algorithm_names(task)
    assert {a["task"] for a in algorithms} == {task}
    for algorithm in algorithms:
        assert set(algorithm) == {
            "name",
            "task",
            "estimator",
            "incremental",
            "available",
            "install_hint",
            "params",
        }
        assert all(set(p) == PARAM_KEYS for p in algorithm["params"])


def test_algorithms_without_task_lists_both_tasks(client: FlaskClient) -> None:
    algorithms = client.get(URL).get_json()["algorithms"]
    assert len(algorithms) == len(CATALOGUE) == 27
    assert [(a["name"], a["task"]) for a in algorithms] == sorted((n, t) for t, n in CATALOGUE)
    incremental = {(a["task"], a["name"]) for a in algorithms if a["incremental"]}
    assert incremental == {
        ("regression", "sgd_regressor"),
        ("regression", "passive_aggressive_regressor"),
        ("regression", "mlp"),
        ("regression", "torch_mlp"),
        ("classification", "sgd_classifier"),
        ("classification", "passive_aggressive_classifier"),
        ("classification", "perceptron"),
        ("classification", "naive_bayes"),
        ("classification", "mlp"),
        ("classification", "torch_mlp"),
    }


def test_gradient_boosting_regressor_as_the_contract_shows(client: FlaskClient) -> None:
    body = client.get(URL, query_string={"task": "regression"}).get_json()
    boosting = _one(body, "gradient_boosting", "regression")
    assert boosting["estimator"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    params = {p["name"]: p for p in boosting["params"]}
    rate = params["learning_rate"]
    assert (rate["default"], rate["type"], rate["minimum"], rate["maximum"]) == (
        0.1,
        "number",
        0.0,
        None,
    )
    assert (rate["exclusive_minimum"], rate["exclusive_maximum"], rate["nullable"]) == (
        True,
        False,
        False,
    )
    assert params["max_iter"]["default"] == 100 and params["max_iter"]["type"] == "integer"
    assert params["max_bins"]["maximum"] == 255.0
    assert "squared_error" in params["loss"]["choices"]
    assert params["max_leaf_nodes"]["nullable"] is True
    assert not {"verbose", "warm_start", "monotonic_cst"} & set(params)


def test_viewer_key_may_list_algorithms(app: Flask) -> None:
    assert keyed_client(app, "viewer").get(URL).status_code == 200


@pytest.mark.parametrize(
    "query",
    [{"task": "bogus"}, {"task": ""}, {"task": "Regression"}],
    ids=["bogus", "empty", "capitalised"],
)
def test_unknown_task_returns_422_naming_task(client: FlaskClient, query: dict[str, str]) -> None:
    details = assert_error(client.get(URL, query_string=query), 422, "validation_error")
    assert details["field"] == "task"
