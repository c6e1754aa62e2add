"""Serving: load model versions safely, validate inputs against signatures, predict."""

from mlserve.serving.predict import PredictionResult, predict

__all__ = ["PredictionResult", "predict"]
