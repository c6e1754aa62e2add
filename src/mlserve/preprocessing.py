"""Feature preprocessing: a ColumnTransformer built from the feature schema (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC_TYPES = frozenset({"integer", "number", "boolean"})


def build_preprocessor(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    """Return the preprocessing step of every mlserve pipeline.

    Numeric (and boolean) features: median imputation then standard scaling.
    Categorical features: most-frequent imputation then one-hot encoding;
    categories unseen at fit time encode as all zeros at prediction time.

    Parameters
    ----------
    numeric : sequence of str
        Names of numeric and boolean feature columns.
    categorical : sequence of str
        Names of text feature columns.

    Returns
    -------
    ColumnTransformer
        Unfitted; maps a DataFrame of shape (n_samples, n_features) to an array
        of shape (n_samples, n_numeric + n_one_hot_columns).
    """
    transformers = []
    if numeric:
        numeric_steps = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric_steps, list(numeric)))
    if categorical:
        categorical_steps = Pipeline(
            [
                # Text features reach the pipeline as object columns with NaN for
                # missing values (mlserve.signature.model_frame), as pandas reads them.
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical_steps, list(categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def unseen_categories(pipeline: Pipeline, X: pd.DataFrame) -> dict[str, int]:
    """Text feature -> count of values in ``X`` the fitted one-hot encoder does not know.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted, with the ``preprocess`` step of :func:`build_preprocessor`.
    X : DataFrame of shape (n_samples, n_features)

    Returns
    -------
    dict
        Each text feature's number of non-missing values outside the categories
        learned at fit time (they encode as all zeros).
    """
    preprocess = pipeline.named_steps["preprocess"]
    counts: dict[str, int] = {}
    for name, transformer, columns in preprocess.transformers_:
        if name != "categorical":
            continue
        encoder = transformer.named_steps["one_hot"]
        for column, known in zip(columns, encoder.categories_, strict=True):
            values = X[column]
            present = values[values.notna()]
            counts[column] = int((~present.isin(set(known.tolist()))).sum())
    return counts
