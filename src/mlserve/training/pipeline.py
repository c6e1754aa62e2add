"""The unfitted pipeline of a spec: mlserve's preprocessing, then the catalogue estimator.

How each feature is encoded follows its type and cardinality
(:func:`mlserve.training.preprocessing.build_preprocessor`): text with more than
:data:`mlserve.datasets.roles.HIGH_CARDINALITY_MIN_VALUES` distinct values gets a bounded
(target) encoding; other text a capped one-hot, sparse when the estimator accepts sparse
input, or ordinal codes for HistGradientBoosting's native categorical splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from mlserve.datasets.roles import HIGH_CARDINALITY_MIN_VALUES
from mlserve.store.documents import Signature
from mlserve.training.catalogue import build_estimator, get_algorithm, inner_estimator
from mlserve.training.preprocessing import build_preprocessor
from mlserve.training.spec import TrainSpec

NATIVE_CATEGORICAL = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def build_pipeline(
    spec: TrainSpec, task: str, signature: Signature, server_params: Mapping[str, Any] | None
) -> Pipeline:
    """The spec's unfitted pipeline for the signature's inputs.

    Parameters
    ----------
    spec : TrainSpec
    task : {"regression", "classification"}
    signature : dict
        Inputs with ``categories`` (the text values seen, at most 1,000 listed).
    server_params : mapping or None
        See :func:`mlserve.training.catalogue.build_estimator`.

    Returns
    -------
    Pipeline
        ``preprocess`` (:func:`~mlserve.training.preprocessing.build_preprocessor`) then
        ``estimator``; a HistGradientBoosting estimator whose client left
        ``categorical_features`` at its default is given the ordinal-coded columns.
    """
    inputs = signature["inputs"]
    numeric = [f["name"] for f in inputs if f["type"] != "string"]
    text = [f for f in inputs if f["type"] == "string"]
    bounded = [
        f["name"] for f in text if len(f.get("categories", [])) > HIGH_CARDINALITY_MIN_VALUES
    ]
    categorical = [f["name"] for f in text if f["name"] not in bounded]
    algorithm = get_algorithm(spec.algorithm, task)
    estimator = build_estimator(algorithm, spec.params, spec.random_state, server_params)
    inner = inner_estimator(estimator)
    native = (
        isinstance(inner, NATIVE_CATEGORICAL)
        and bool(categorical)
        and "categorical_features" not in spec.params
    )
    if native:
        start = len(numeric)
        inner.set_params(categorical_features=list(range(start, start + len(categorical))))
    preprocess = build_preprocessor(
        numeric,
        categorical,
        bounded,
        sparse=bool(get_tags(inner).input_tags.sparse),
        native_categorical=native,
    )
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])
