"""A hand-written FastAPI + uvicorn app: the baseline every ML team can write in an hour.

``bench/serve.py`` starts it as ``uvicorn fastapi_app:app --workers 2`` with
``BENCH_MODEL_DIR`` pointing at a folder of ``<model>.joblib`` pipelines and
``features.json`` (feature names in training order, and which are numeric).
``POST /predict/<model>`` takes ``{"instances": [{feature: value}, ...]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_DIR = Path(os.environ["BENCH_MODEL_DIR"])
FEATURES = json.loads((MODEL_DIR / "features.json").read_text())
MODELS = {path.stem: joblib.load(path) for path in sorted(MODEL_DIR.glob("*.joblib"))}

app = FastAPI(title="bench FastAPI baseline")


class PredictRequest(BaseModel):
    """One ``{feature: value}`` object per row."""

    instances: list[dict[str, Any]]


class PredictResponse(BaseModel):
    """One prediction per row."""

    predictions: list[float]


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/predict/{name}")
def predict(name: str, request: PredictRequest) -> PredictResponse:
    """Predict with the pipeline ``name`` on a DataFrame built from the records."""
    model = MODELS.get(name)
    if model is None:
        raise HTTPException(status_code=404, detail=f"unknown model {name!r}")
    frame = pd.DataFrame.from_records(request.instances, columns=FEATURES["columns"])
    numeric = FEATURES["numeric"]
    frame[numeric] = frame[numeric].astype("float64")  # null -> NaN, as in training
    return PredictResponse(predictions=model.predict(frame).tolist())
