"""Issue 6 acceptance on california_housing.csv: a model that keeps learning, guarded.

Sorted by longitude, the first half (west) trains ``sgd_regressor``; the second half
(east, a different region) is streamed in batches of 500: each batch is predicted
(logged for drift), then posted to ``/samples``. Online updates run in the request
(jobs_immediate) whenever the policy says so.

Within the second half the samples arrive in a seeded random order: the shift under
test is the change of region. Streamed in longitude order, each batch is a narrow band:
tests/online/test_ordered_streams.py is that scenario (docs/online-learning.md has the
figures of both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.context import Context
from mlserve.settings import Settings
from mlserve.store.orm import Sample
from tests.conftest import CALIFORNIA_TARGET, frame_csv, keyed_client, train, upload

pytestmark = pytest.mark.slow
BATCH = 500
WINDOW = 500


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    application = create_app(
        Settings(
            home=tmp_path / "home",
            jobs_immediate=True,
            log_level="WARNING",
            online_update_every_samples=BATCH,
            online_guard_window_samples=WINDOW,
            online_guard_tolerance=0.02,
            prediction_log_sample_rate=1.0,
        )
    )
    yield application
    context_of(application).db.dispose()


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame.drop(columns=[CALIFORNIA_TARGET])
    rows: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict(orient="records")
    )
    return rows


def _predict(client: FlaskClient, frame: pd.DataFrame, version: int | None = None) -> np.ndarray:
    out = []
    for start in range(0, len(frame), 5000):
        url = "/api/v1/models/housing/predict" + (f"?version={version}" if version else "")
        response = client.post(url, json={"instances": _rows(frame.iloc[start : start + 5000])})
        assert response.status_code == 200, response.get_json()
        out.extend(response.get_json()["predictions"])
    return np.asarray(out)


def _rmse(client: FlaskClient, frame: pd.DataFrame, version: int) -> float:
    predicted = _predict(client, frame, version)
    return float(np.sqrt(np.mean((predicted - frame[CALIFORNIA_TARGET].to_numpy()) ** 2)))


def test_streaming_the_second_half_learns_guarded_and_exactly_once(
    app: Flask, california_frame: pd.DataFrame
) -> None:
    client = keyed_client(app)
    ctx: Context = context_of(app)
    ordered = california_frame.sort_values("longitude", kind="mergesort").reset_index(drop=True)
    half = len(ordered) // 2
    first, second = ordered.iloc[:half], ordered.iloc[half:]
    assert first["longitude"].max() <= second["longitude"].min()
    arrivals = second.sample(frac=1.0, random_state=0)
    dataset = upload(client, frame_csv(first), "west.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target=CALIFORNIA_TARGET,
        algorithm="sgd_regressor",
        model_name="housing",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job

    for start in range(0, len(arrivals), BATCH):
        batch = arrivals.iloc[start : start + BATCH]
        _predict(client, batch)
        response = client.post(
            "/api/v1/models/housing/samples",
            json={"instances": _rows(batch), "targets": batch[CALIFORNIA_TARGET].tolist()},
        )
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["received"] == len(batch)
    assert ctx.prediction_log.flush()

    # Drift while streaming the east: longitude (and latitude) flagged against v1's reference.
    streaming = client.get(f"/api/v1/models/housing/versions/1/drift?window={len(second)}")
    assert streaming.status_code == 200, streaming.get_json()
    report = streaming.get_json()
    assert report["window"]["rows"] == len(second)
    assert "longitude" in report["drifted"]
    longitude = report["features"]["longitude"]
    assert longitude["psi"] >= 0.25 and longitude["ks_pvalue"] < 0.01
    assert "Siddiqi" in report["thresholds"]["psi"]["source"]

    versions = client.get("/api/v1/models/housing/versions").get_json()["versions"]
    online = sorted((v for v in versions if v["online"]), key=lambda v: v["version"])
    assert len(online) >= 15
    # Exactly once: contiguous, disjoint ranges along one lineage, covering every applied id.
    with ctx.db.session() as session:
        ids = list(session.scalars(select(Sample.id).order_by(Sample.id)))
    assert len(ids) == len(second)
    state = client.get("/api/v1/models/housing/online").get_json()
    applied_ids: list[int] = []
    parent = 1
    for version in online:
        lineage = version["online"]
        assert lineage["parent_version"] == parent and lineage["root_version"] == 1
        span = [i for i in ids if lineage["first_sample_id"] <= i <= lineage["last_sample_id"]]
        assert len(span) == lineage["n_samples"] > lineage["n_held_out"]
        applied_ids.extend(span)
        parent = version["version"]
    assert applied_ids == [i for i in ids if i <= state["cursor"]]  # each once, in order
    assert state["head_version"] == online[-1]["version"]
    assert state["pending"] == len(ids) - len(applied_ids) < BATCH + WINDOW
    # Production moved exactly to the versions whose guard passed, never to a candidate.
    passed = [v["version"] for v in online if v["online"]["guard"]["passed"]]
    for version in online:
        status = "production" if version["version"] in passed else "candidate"
        assert version["online"]["status"] == status
        assert version["online"]["reason"]
    model = client.get("/api/v1/models/housing").get_json()
    assert passed and model["aliases"]["production"] == passed[-1]

    rmse_first = _rmse(client, second, 1)
    rmse_final = _rmse(client, second, passed[-1])
    print(
        f"RMSE on the second half: v1 {rmse_first:.0f}, production v{passed[-1]} {rmse_final:.0f}"
    )
    assert rmse_final < rmse_first

    # Replaying the (training) first half: no drift on longitude.
    _predict(client, first)
    assert ctx.prediction_log.flush()
    replay = client.get(f"/api/v1/models/housing/versions/1/drift?window={len(first)}").get_json()
    assert replay["window"]["rows"] == len(first)
    assert "longitude" not in replay["drifted"]
    assert replay["features"]["longitude"]["psi"] < 0.1
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == len(second)
