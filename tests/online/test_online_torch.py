"""Issue 16 acceptance: a ``torch_mlp`` version keeps learning from samples, guarded, once.

As tests/online/test_online_acceptance.py does for ``sgd_regressor``: sorted by longitude,
the west half of california_housing trains version 1 (default hyper-parameters:
``partial_fit_epochs`` 1 per pass over each update's mix of new and replayed rows; the
BatchNorm statistics of the first fit stay fixed), the east half arrives in a
seeded random order in batches of 500 posted to ``/samples``; updates run in the request.
SQLite pass only: the exactly-once and guard logic is the same code for every algorithm
and runs on PostgreSQL with the SGD acceptance test and tests/online/test_online.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import select

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.settings import Settings
from mlserve.store.orm import Sample
from tests.conftest import CALIFORNIA_TARGET, frame_csv, keyed_client, train, upload
from tests.online.test_online_acceptance import BATCH, WINDOW, _rmse, _rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once(reason="framework-heavy: the online logic is shared"),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    application = create_app(
        Settings(
            home=tmp_path / "home",
            jobs_immediate=True,
            log_level="WARNING",
            online_update_every_samples=BATCH,
            online_guard_window_samples=WINDOW,
            prediction_log_sample_rate=0.0,
        )
    )
    yield application
    context_of(application).db.dispose()


def test_streaming_the_east_half_improves_torch_mlp_applying_each_sample_once(
    app: Flask, california_frame: pd.DataFrame
) -> None:
    client = keyed_client(app)
    ordered = california_frame.sort_values("longitude", kind="mergesort").reset_index(drop=True)
    west, east = ordered.iloc[: len(ordered) // 2], ordered.iloc[len(ordered) // 2 :]
    dataset = upload(client, frame_csv(west), "west.csv").get_json()
    job = train(
        client,
        dataset["id"],
        target=CALIFORNIA_TARGET,
        algorithm="torch_mlp",
        model_name="housing",
        cv_folds=0,
    ).get_json()
    assert job["status"] == "succeeded", job

    arrivals = east.sample(frac=1.0, random_state=0)
    for start in range(0, len(arrivals), BATCH):
        batch = arrivals.iloc[start : start + BATCH]
        body = {"instances": _rows(batch), "targets": batch[CALIFORNIA_TARGET].tolist()}
        response = client.post("/api/v1/models/housing/samples", json=body)
        assert response.status_code == 201, response.get_json()

    versions = client.get("/api/v1/models/housing/versions").get_json()["versions"]
    online = sorted((v for v in versions if v["online"]), key=lambda v: v["version"])
    assert len(online) >= 15
    with context_of(app).db.session() as session:
        ids = list(session.scalars(select(Sample.id).order_by(Sample.id)))
    state = client.get("/api/v1/models/housing/online").get_json()
    applied: list[int] = []
    for parent, version in zip([1, *(v["version"] for v in online)], online, strict=False):
        lineage = version["online"]
        assert (lineage["parent_version"], lineage["root_version"]) == (parent, 1)
        span = [i for i in ids if lineage["first_sample_id"] <= i <= lineage["last_sample_id"]]
        assert len(span) == lineage["n_samples"]
        applied.extend(span)
        assert version["runtime"] == "onnx", version["serving"]["compile"]["reason"]
    assert applied == [i for i in ids if i <= state["cursor"]]  # each once, in order
    assert state["pending"] == len(ids) - len(applied) < BATCH + WINDOW
    passed = [v["version"] for v in online if v["online"]["guard"]["passed"]]
    model = client.get("/api/v1/models/housing").get_json()
    assert passed and model["aliases"]["production"] == passed[-1]

    last = online[-1]["version"]
    training = client.get(f"/api/v1/models/housing/versions/{last}/evaluation").get_json()
    # one partial_fit per pass over each update's mix of new and replayed rows
    assert training["training"]["online_updates"] == sum(v["online"]["passes"] for v in online)
    before, after = _rmse(client, east, 1), _rmse(client, east, last)
    print(f"torch_mlp RMSE on the east half: v1 {before:.0f}, v{last} {after:.0f}")
    assert after < before
