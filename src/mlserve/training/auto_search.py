"""The hyper-parameter search of ``algorithm: "auto"``: successive halving.

Successive halving (Jamieson and Talwalkar, "Non-stochastic best arm identification and
hyperparameter optimization", AISTATS 2016) scores many settings on few rows and keeps
the best third for three times the rows, until one setting remains on every training
row; scikit-learn's ``HalvingRandomSearchCV`` runs it with the job's folds and seed.
:mod:`mlserve.training.auto` runs it on the best candidate when the budget covers it and
scores its winner again with the job's own cross-validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import)
from sklearn.model_selection import HalvingRandomSearchCV

from mlserve.training.pipeline import build_pipeline
from mlserve.training.spec import TrainSpec
from mlserve.training.split import Split, cv_splitter

# Hyper-parameters the search draws from, around scikit-learn's defaults (for
# gradient boosting, the ranges of Probst et al., "Tunability: importance of
# hyperparameters of machine learning algorithms", JMLR 20, 2019).
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "ridge": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "gradient_boosting": {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": [10, 20, 50],
        "l2_regularization": [0.0, 1.0],
        "max_iter": [100, 300],
    },
    "random_forest": {"max_features": [0.33, 0.5, 1.0], "min_samples_leaf": [1, 2, 5]},
}
SEARCH_CANDIDATES = 9  # settings drawn; with factor 3: 9 on 1/9 of the rows, 3 on 1/3, 1 on all
SEARCH_FACTOR = 3
# The scikit-learn scorer of each task's ranking metric (auto.RANKING_METRIC).
SCORERS = {"regression": "neg_root_mean_squared_error", "classification": "f1_macro"}


def search(
    data: Split,
    spec: TrainSpec,
    task: str,
    *,
    algorithm: str,
    space: dict[str, list[Any]],
    server_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The best of :data:`SEARCH_CANDIDATES` settings drawn from ``space`` by successive
    halving on the training rows (resource: rows; folds and seed of the spec).

    Returns
    -------
    dict
        Hyper-parameter name -> value (JSON values).
    """
    pipeline = build_pipeline(
        spec.model_copy(update={"algorithm": algorithm, "params": {}}),
        task,
        data.signature,
        server_params,
    )
    halving = HalvingRandomSearchCV(
        pipeline,
        {f"estimator__{name}": values for name, values in space.items()},
        n_candidates=min(SEARCH_CANDIDATES, math.prod(len(v) for v in space.values())),
        factor=SEARCH_FACTOR,
        resource="n_samples",
        min_resources="exhaust",
        cv=cv_splitter(spec, task, data.y_train),
        scoring=SCORERS[task],
        refit=False,
        random_state=spec.random_state,
        error_score=math.nan,
    )
    halving.fit(data.X_train, data.y_train)
    return {
        key.removeprefix("estimator__"): _plain(value)
        for key, value in halving.best_params_.items()
    }


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON stores."""
    return value.item() if hasattr(value, "item") else value
