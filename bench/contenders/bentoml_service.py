"""BentoML service for the serving benchmark (``bentoml serve bentoml_service:Regressor``).

Loads every ``<model>.joblib`` pipeline in ``BENCH_MODEL_DIR`` in each of its 2
workers. ``POST /predict`` takes ``{"model": name, "records": [{feature: value}, ...]}``
and answers the list of predictions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd

MODEL_DIR = Path(os.environ["BENCH_MODEL_DIR"])


@bentoml.service(workers=2)
class Regressor:
    """The benchmark's scikit-learn pipelines behind one BentoML API."""

    def __init__(self) -> None:
        self.features = json.loads((MODEL_DIR / "features.json").read_text())
        self.models = {path.stem: joblib.load(path) for path in sorted(MODEL_DIR.glob("*.joblib"))}

    @bentoml.api
    def predict(self, model: str, records: list[dict[str, Any]]) -> list[float]:
        """Predict with pipeline ``model`` on a DataFrame built from ``records``."""
        frame = pd.DataFrame.from_records(records, columns=self.features["columns"])
        numeric = self.features["numeric"]
        frame[numeric] = frame[numeric].astype("float64")  # null -> NaN, as in training
        return self.models[model].predict(frame).tolist()
