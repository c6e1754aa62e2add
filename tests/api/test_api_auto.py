"""``algorithm: "auto"`` over HTTP: the leaderboard on the job and the version, the
version trained is rank 1, a spent budget still registers a version, bad bodies are
422 naming the field, and on california the choice reaches gradient boosting's RMSE."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, train, upload

LEADERBOARD_KEYS = {"rank", "algorithm", "params", "metric", "cv_mean", "cv_std", "fit_seconds"}


def _dataset(client: FlaskClient, frame: pd.DataFrame, name: str) -> str:
    dataset_id: str = upload(client, frame_csv(frame), name).get_json()["id"]
    return dataset_id


def _auto(client: FlaskClient, dataset_id: str, **spec: Any) -> dict[str, Any]:
    response = train(
        client, dataset_id, target="target", algorithm="auto", model_name="auto", **spec
    )
    assert response.status_code == 202, response.get_json()
    job: dict[str, Any] = response.get_json()
    assert job["status"] == "succeeded", job
    return job


def _check_ranks(board: list[dict[str, Any]], higher_is_better: bool) -> None:
    assert [e["rank"] for e in board] == list(range(1, len(board) + 1))
    for entry in board:
        assert LEADERBOARD_KEYS <= set(entry) <= LEADERBOARD_KEYS | {"tuned", "skipped"}
        assert entry["fit_seconds"] >= 0
    scored = [e["cv_mean"] for e in board if "skipped" not in e]
    assert scored and all(math.isfinite(m) for m in scored)
    assert scored == sorted(scored, reverse=higher_is_better)
    first_skipped = next((i for i, e in enumerate(board) if "skipped" in e), len(board))
    assert all("skipped" in e for e in board[first_skipped:])  # skipped rank last


def test_auto_regression_registers_rank_one_with_leaderboard(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    job = _auto(client, _dataset(client, diabetes_frame, "diabetes.csv"), cv_folds=3)
    assert job["spec"]["algorithm"] == "auto"  # the request as sent
    board = job["report"]["leaderboard"]
    _check_ranks(board, higher_is_better=False)
    assert {e["metric"] for e in board} == {"rmse"}
    assert {"ridge", "gradient_boosting", "random_forest"} <= {e["algorithm"] for e in board}
    version = client.get("/api/v1/models/auto/versions/1").get_json()
    assert version["algorithm"] == board[0]["algorithm"] != "auto"
    assert version["report"]["leaderboard"] == board
    # the version's CV is rank 1's, computed once on the training split
    assert version["cv_metrics"]["rmse"]["mean"] == pytest.approx(board[0]["cv_mean"])
    for name, value in board[0]["params"].items():
        assert version["params"][name] == value


def test_auto_classification_ranks_by_macro_f1(
    client: FlaskClient, iris_frame: pd.DataFrame
) -> None:
    job = _auto(client, _dataset(client, iris_frame, "iris.csv"), cv_folds=3)
    board = job["report"]["leaderboard"]
    _check_ranks(board, higher_is_better=True)
    assert {e["metric"] for e in board} == {"f1_macro"}
    assert {"logistic_regression", "gradient_boosting", "random_forest"} <= {
        e["algorithm"] for e in board
    }
    version = client.get("/api/v1/models/auto/versions/1").get_json()
    assert version["algorithm"] == board[0]["algorithm"]
    assert version["task"] == "classification"


def test_auto_spent_budget_skips_candidates_and_still_registers(
    client: FlaskClient, diabetes_frame: pd.DataFrame
) -> None:
    job = _auto(
        client, _dataset(client, diabetes_frame, "diabetes.csv"), cv_folds=3, time_budget_s=0.001
    )
    board = job["report"]["leaderboard"]
    assert board[0]["algorithm"] == "ridge" and "skipped" not in board[0]
    skipped = {e["algorithm"]: e["skipped"] for e in board[1:]}
    assert {"gradient_boosting", "random_forest"} <= set(skipped)
    assert all("time budget" in reason for reason in skipped.values())
    assert all(e["cv_mean"] is None and e["cv_std"] is None for e in board[1:])
    version = client.get("/api/v1/models/auto/versions/1").get_json()
    assert version["algorithm"] == "ridge"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"time_budget_s": 0}, "time_budget_s", id="budget-zero"),
        pytest.param({"time_budget_s": -5}, "time_budget_s", id="budget-negative"),
        pytest.param({"time_budget_s": 10**6}, "time_budget_s", id="budget-too-long"),
        pytest.param({"time_budget_s": "60"}, "time_budget_s", id="budget-string"),
        pytest.param({"time_budget_s": True}, "time_budget_s", id="budget-boolean"),
        pytest.param({"params": {"alpha": 1.0}}, "params", id="auto-with-params"),
        pytest.param({"cv_folds": 0}, "cv_folds", id="auto-without-cv"),
        pytest.param(
            {"algorithm": "ridge", "time_budget_s": 60}, "time_budget_s", id="budget-not-auto"
        ),
    ],
)
def test_auto_bad_body_is_422_naming_the_field(
    client: FlaskClient, diabetes_frame: pd.DataFrame, overrides: dict[str, Any], field: str
) -> None:
    spec = {
        "dataset_id": _dataset(client, diabetes_frame, "diabetes.csv"),
        "target": "target",
        "algorithm": "auto",
        "model_name": "auto",
        **overrides,
    }
    details = assert_error(client.post("/api/v1/training-jobs", json=spec), 422, "validation_error")
    assert details["field"] == field, details
    assert client.get("/api/v1/training-jobs").get_json()["jobs"] == []


@pytest.mark.slow
@pytest.mark.once(reason="framework-heavy: about 20 california fits, no database matter")
def test_auto_on_california_reaches_gradient_boosting_rmse_within_five_minutes(
    client: FlaskClient, california_frame: pd.DataFrame
) -> None:
    dataset_id = _dataset(client, california_frame, "california_housing.csv")
    started = time.perf_counter()
    response = train(
        client,
        dataset_id,
        target="median_house_value",
        algorithm="auto",
        model_name="housing",
        time_budget_s=240,
    )
    wall = time.perf_counter() - started
    job = response.get_json()
    assert job["status"] == "succeeded", job
    version = client.get("/api/v1/models/housing/versions/1").get_json()
    board = job["report"]["leaderboard"]
    print(f"\ncalifornia auto: test RMSE {version['metrics']['rmse']:.0f}, job {wall:.0f} s")
    for entry in board:
        note = f" skipped: {entry['skipped']}" if "skipped" in entry else ""
        print(
            f"  {entry['rank']}. {entry['algorithm']} {entry['params']} "
            f"cv rmse {entry['cv_mean']} ± {entry['cv_std']} "
            f"({entry['fit_seconds']:.1f} s){note}"
        )
    assert version["algorithm"] == board[0]["algorithm"]
    assert version["metrics"]["rmse"] < 50_000
    assert wall < 300
