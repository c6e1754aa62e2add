"""Issue 13 item 8: the encoded training matrix is estimated at submit time and refused
above ``max_training_memory_bytes`` (422 naming the column and the estimate), with no job
recorded. The estimate follows the planned encoders' output width
(:func:`mlserve.training.preprocessing.encoded_width`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from mlserve.context import Context
from mlserve.settings import Settings
from mlserve.training.preprocessing import MAX_CATEGORIES, check_design_matrix, encoded_width
from tests.api.test_api_datasets import assert_error, stored_state
from tests.conftest import frame_csv, make_settings, train, upload

LIMIT = 256 * 1024
ROWS = 2_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_training_memory_bytes=LIMIT)


def _frame(distinct: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=ROWS),
            "city": [f"c{i % distinct}" for i in range(ROWS)],
            "y": rng.normal(size=ROWS),
        }
    )


def test_wide_one_hot_is_refused_at_submit_naming_the_column(
    client: FlaskClient, ctx: Context
) -> None:
    # 40 values of 50 rows each: a feature (not an id, not high-cardinality), one-hot
    # capped at MAX_CATEGORIES columns: 2,000 x 31 x 8 bytes = 496,000 > 262,144.
    dataset = upload(client, frame_csv(_frame(40)), "wide.csv").get_json()
    before = stored_state(ctx)
    response = train(client, dataset["id"], target="y", algorithm="ridge", model_name="m",
                     cv_folds=0)  # fmt: skip
    details = assert_error(response, 422, "validation_error")
    assert details["column"] == "city"
    assert details["estimate_bytes"] == ROWS * (1 + MAX_CATEGORIES) * 8
    assert details["limit"] == LIMIT
    assert "max_training_memory_bytes" in details["message"]
    assert stored_state(ctx) == before  # no job row


def test_narrow_one_hot_within_the_limit_trains(client: FlaskClient) -> None:
    dataset = upload(client, frame_csv(_frame(5)), "narrow.csv").get_json()
    job = train(client, dataset["id"], target="y", algorithm="ridge", model_name="m",
                cv_folds=0)  # fmt: skip
    assert job.get_json()["status"] == "succeeded"


def test_dropping_the_wide_feature_makes_it_fit(client: FlaskClient) -> None:
    dataset = upload(client, frame_csv(_frame(40)), "wide.csv").get_json()
    job = train(client, dataset["id"], target="y", algorithm="ridge", model_name="m",
                cv_folds=0, features=["x"])  # fmt: skip
    assert job.get_json()["status"] == "succeeded"


def test_estimate_is_rows_times_encoded_width() -> None:
    columns = {
        "n": {"name": "n", "type": "number", "dtype": "float64", "missing": 0, "unique": 900},
        "t": {"name": "t", "type": "string", "dtype": "object", "missing": 3, "unique": 20},
        "c": {"name": "c", "type": "string", "dtype": "object", "missing": 0, "unique": 45},
        "h": {"name": "h", "type": "string", "dtype": "object", "missing": 0, "unique": 900},
    }
    widths = [encoded_width(c) for c in columns.values()]  # type: ignore[arg-type]
    assert widths == [1, 20, MAX_CATEGORIES, 1]  # h: target encoding
    assert encoded_width(columns["h"], target_classes=5) == 5  # type: ignore[arg-type]
    total = check_design_matrix(100, columns, ["n", "t", "c", "h"], 10**9)  # type: ignore[arg-type]
    assert total == 100 * (1 + 20 + MAX_CATEGORIES + 1) * 8
