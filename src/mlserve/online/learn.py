"""``partial_fit`` of a fitted pipeline's estimator on new rows: passes and learning rate.

The preprocessing (imputers, scalers, one-hot encoders) and the target scaler of
``TransformedTargetRegressor`` stay as fitted at the first fit: only the estimator
learns. Each update makes ``passes`` passes over its rows (new samples + replayed ones,
:mod:`mlserve.online.replay`), each in a random order seeded by the lineage's seed and
the update's first sample id, so a retry repeats them exactly.

**Learning rate.** The estimator keeps its own schedule, and its step count continues
across updates, as ``partial_fit`` does: ``sgd_regressor`` with scikit-learn's default
``invscaling``, ``eta = eta0 / t ** power_t`` (0.01 / t^0.25), ``sgd_classifier`` with
``optimal``, ``eta = 1 / (alpha * (t + t0))``: both decay as the stream goes on, the
decreasing step sizes of stochastic approximation (Robbins & Monro 1951; L. Bottou,
"Stochastic gradient descent tricks", Neural Networks: Tricks of the Trade, 2012); ``mlp``
keeps its Adam moments (Kingma & Ba 2015) across updates. Measured on the
ordered California stream (docs/online-learning.md), a constant rate set at update time
did no better on average, ``adaptive`` equals ``constant`` under ``partial_fit`` (its
decay runs between epochs of one call), and averaging (``average=True``, Polyak &
Juditsky 1992) averages over every step since the first fit and barely moves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline


def partial_fit(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    passes: int = 1,
    seed: tuple[int, int] = (0, 0),
) -> None:
    """Update the estimator of a fitted pipeline in place.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted ``preprocess`` + ``estimator``; the preprocessing is only applied.
    X : DataFrame of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    passes : int
        Passes over the rows; with more than one, each pass is in a random order.
    seed : (int, int)
        Of the orders (``numpy.random.default_rng``): the lineage's seed and the
        update's first sample id.
    """
    with warnings.catch_warnings():  # unseen categories encode as all zeros
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        Xt = pipeline[:-1].transform(X)
    estimator = pipeline.steps[-1][1]
    if isinstance(estimator, TransformedTargetRegressor):
        y = estimator.transformer_.transform(np.asarray(y, np.float64).reshape(-1, 1)).ravel()
        estimator = estimator.regressor_
    # MLP's early stopping needs a validation split that partial_fit does not make:
    # it applied to the first fit only, and is restored so the parameters stay as trained.
    stopping = getattr(estimator, "early_stopping", False)
    if stopping:
        estimator.early_stopping = False
        if estimator.best_loss_ is None:  # tracked on validation scores instead when stopping
            estimator.best_loss_ = float(np.min(estimator.loss_curve_))
    rng = np.random.default_rng(list(seed))
    try:
        for _ in range(passes):
            order = rng.permutation(len(y)) if passes > 1 else np.arange(len(y))
            estimator.partial_fit(Xt[order], y[order])
    finally:
        if stopping:
            estimator.early_stopping = stopping
