"""The SHAP summary a training job records: explained in chunks within its time budget."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mlserve.training.explain_record import SUMMARY_ROWS, training_record
from mlserve.training.pipeline import build_pipeline
from mlserve.training.signature import infer_signature, model_frame
from mlserve.training.spec import TrainSpec


def fitted(algorithm: str) -> tuple[Pipeline, pd.DataFrame, pd.DataFrame]:
    """A pipeline fitted on half of diabetes (221 test rows: more than ``SUMMARY_ROWS``)."""
    frame = load_diabetes(as_frame=True).frame
    spec = TrainSpec(dataset_id="d", target="target", algorithm=algorithm, model_name="m")
    X_raw, y = frame.drop(columns="target"), frame["target"]
    signature = infer_signature(X_raw, y, "regression", classes=None)
    X = model_frame(X_raw, signature)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.5, random_state=0)
    pipeline = build_pipeline(spec, "regression", signature, None).fit(X_train, y_train)
    return pipeline, X_train, X_test


@pytest.mark.parametrize(
    ("algorithm", "budget_s", "rows"),
    [
        ("ridge", 60.0, SUMMARY_ROWS),
        ("ridge", 0.0, 1),
        ("random_forest", 0.0, 1),
    ],
)
def test_summary_explains_fewer_rows_within_a_small_budget(
    algorithm: str, budget_s: float, rows: int
) -> None:
    pipeline, X_train, X_test = fitted(algorithm)
    record = training_record(
        pipeline, X_train, X_test, classes=None, random_state=0, budget_s=budget_s
    )
    summary: dict[str, Any] = record["shap_summary"]
    assert summary["rows"] == rows
    assert sorted(f["feature"] for f in summary["features"]) == sorted(X_test.columns)
