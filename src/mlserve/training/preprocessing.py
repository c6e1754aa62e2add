"""Feature preprocessing: a ColumnTransformer built from the feature schema (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from mlserve.datasets.roles import HIGH_CARDINALITY_MIN_VALUES
from mlserve.errors import ValidationFailed
from mlserve.store.documents import ColumnSummary

NUMERIC_TYPES = frozenset({"integer", "number", "boolean"})
DESIGN_CELL_BYTES = 8  # float64: what the encoders below output (dense)
MIN_FREQUENCY = 0.005  # a value in under 0.5 % of the training rows joins "infrequent"
MAX_CATEGORIES = 30  # one-hot / ordinal codes per feature at most, "infrequent" included
TARGET_ENCODER_FOLDS = 5


def build_preprocessor(
    numeric: Sequence[str],
    categorical: Sequence[str],
    bounded: Sequence[str] = (),
    *,
    sparse: bool = False,
    native_categorical: bool = False,
) -> ColumnTransformer:
    """Return the preprocessing step of every mlserve pipeline.

    Numeric (and boolean) features: median imputation then standard scaling.
    Categorical features: most-frequent imputation then a capped one-hot encoding
    (values seen in under :data:`MIN_FREQUENCY` (0.5 %) of the training rows, and those past the
    :data:`MAX_CATEGORIES` most frequent, share one "infrequent" column; unseen values
    join it, or encode as all zeros when the feature has no infrequent value), sparse
    with ``sparse`` where the whole output is sparse enough (``sparse_threshold`` 0.3); with
    ``native_categorical`` an ordinal code instead (same cap, unseen values NaN), for an
    estimator that splits on categories itself (HistGradientBoosting). ``bounded``
    features (high-cardinality and free text): most-frequent imputation then target
    encoding, cross-fitted in :data:`TARGET_ENCODER_FOLDS` unshuffled folds (stratified
    for classification) (scikit-learn's
    ``TargetEncoder``; Micci-Barreca 2001), then standard scaling (encodings are in the
    target's unit): one column per feature (per class for a multiclass target), however
    many values.

    Parameters
    ----------
    numeric : sequence of str
        Names of numeric and boolean feature columns.
    categorical : sequence of str
        Names of text feature columns with few distinct values.
    bounded : sequence of str
        Names of text feature columns with many distinct values.
    sparse : bool
        The estimator accepts sparse input (its ``input_tags.sparse``).
    native_categorical : bool
        Ordinal codes for ``categorical`` (columns ``len(numeric)`` onwards).

    Returns
    -------
    ColumnTransformer
        Unfitted; maps a DataFrame of shape (n_samples, n_features) to an array (or
        sparse matrix) of shape (n_samples, n_numeric + n_encoded_columns), numeric
        columns first, then categorical, then bounded.
    """
    transformers = []
    if numeric:
        numeric_steps = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric_steps, list(numeric)))
    if categorical:
        encoder = (
            OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                min_frequency=MIN_FREQUENCY,
                max_categories=MAX_CATEGORIES,
            )
            if native_categorical
            else OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_FREQUENCY,
                max_categories=MAX_CATEGORIES,
                sparse_output=sparse,
            )
        )
        # Text features reach the pipeline as object columns with NaN for missing values
        # (mlserve.training.signature.model_frame), as pandas reads them.
        steps = [("impute", SimpleImputer(strategy="most_frequent")), ("one_hot", encoder)]
        transformers.append(("categorical", Pipeline(steps), list(categorical)))
    if bounded:
        target = TargetEncoder(cv=TARGET_ENCODER_FOLDS)
        steps = [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("target", target),
            ("scale", StandardScaler()),  # encodings are in the target's unit
        ]
        transformers.append(("bounded", Pipeline(steps), list(bounded)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def encoding_report(preprocess: ColumnTransformer) -> dict[str, str]:
    """Feature -> how the fitted ``preprocess`` encodes it, in words.

    Parameters
    ----------
    preprocess : ColumnTransformer
        Fitted, from :func:`build_preprocessor`.
    """
    report: dict[str, str] = {}
    for name, transformer, columns in preprocess.transformers_:
        if name == "numeric":
            report.update(dict.fromkeys(columns, "median imputation, standard scaling"))
        elif name == "categorical":
            encoder = transformer.named_steps["one_hot"]
            infrequent = encoder.infrequent_categories_
            for i, column in enumerate(columns):
                n_known = len(encoder.categories_[i])
                grouped = 0 if infrequent[i] is None else len(infrequent[i])
                kind = (
                    "ordinal code, native categorical splits"
                    if isinstance(encoder, OrdinalEncoder)
                    else f"one-hot, {n_known - grouped + (grouped > 0)} columns"
                )
                report[column] = f"{kind} ({n_known} values, {grouped} grouped as infrequent)"
        elif name == "bounded":
            encoder = transformer.named_steps["target"]
            for i, column in enumerate(columns):
                report[column] = (
                    f"target encoding, cross-fitted in {encoder.cv} folds "
                    f"({len(encoder.categories_[i])} values)"
                )
    return report


def unseen_categories(pipeline: Pipeline, X: pd.DataFrame) -> dict[str, int]:
    """Text feature -> count of values in ``X`` the fitted encoders do not know.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted, with the ``preprocess`` step of :func:`build_preprocessor`.
    X : DataFrame of shape (n_samples, n_features)

    Returns
    -------
    dict
        Each text feature's number of non-missing values outside the categories
        learned at fit time (they encode as the infrequent group, all zeros, NaN or the
        target mean: see :func:`build_preprocessor`).
    """
    preprocess = pipeline.named_steps["preprocess"]
    counts: dict[str, int] = {}
    for name, transformer, columns in preprocess.transformers_:
        if name not in ("categorical", "bounded"):
            continue
        encoder = transformer.steps[-1][1]
        for column, known in zip(columns, encoder.categories_, strict=True):
            values = X[column]
            present = values[values.notna()]
            counts[column] = int((~present.isin(set(known.tolist()))).sum())
    return counts


def encoded_width(column: ColumnSummary, target_classes: int = 1) -> int:
    """Columns :func:`build_preprocessor` makes of one dataset column.

    One for a numeric or boolean feature (imputed, scaled); for a text feature with
    at most :data:`~mlserve.datasets.roles.HIGH_CARDINALITY_MIN_VALUES` distinct values,
    one per value up to :data:`MAX_CATEGORIES` (capped one-hot or ordinal codes: an
    upper bound, as rare values share the "infrequent" column); beyond, target encoding:
    one column, or one per class for a multiclass target (``target_classes`` > 2). Keep
    this in step with the encoders above: the training-memory guard is computed from it.
    """
    if column["type"] in NUMERIC_TYPES:
        return 1
    unique = int(column["unique"])
    if unique > HIGH_CARDINALITY_MIN_VALUES:
        return target_classes if target_classes > 2 else 1
    return max(1, min(unique, MAX_CATEGORIES))


def check_design_matrix(
    n_rows: int,
    columns: Mapping[str, ColumnSummary],
    features: Sequence[str],
    limit_bytes: int,
    *,
    target_classes: int = 1,
) -> int:
    """Estimate the encoded training matrix; refuse it above ``limit_bytes``.

    Parameters
    ----------
    n_rows : int
        Rows of the dataset (every split is a part of them).
    columns : mapping of str to ColumnSummary
        The dataset's column summaries.
    features : sequence of str
        The features the job trains on.
    limit_bytes : int
        ``max_training_memory_bytes``.
    target_classes : int
        Classes of a classification target (1 for regression): a multiclass target
        encodes a high-cardinality column into one column per class.

    Returns
    -------
    int
        The estimate in bytes: rows x encoded width x 8.

    Raises
    ------
    ValidationFailed
        Above the limit, naming the widest column (``details.column``), the
        estimate and the limit.
    """
    widths = {name: encoded_width(columns[name], target_classes) for name in features}
    width = sum(widths.values())
    estimate = n_rows * width * DESIGN_CELL_BYTES
    if estimate > limit_bytes:
        widest = max(widths, key=lambda name: widths[name])
        raise ValidationFailed(
            f"the encoded training data would take about {estimate / 2**30:.2f} GiB "
            f"({n_rows} rows x {width} columns x {DESIGN_CELL_BYTES} bytes), over "
            f"max_training_memory_bytes={limit_bytes}; column {widest!r} encodes to "
            f"{widths[widest]} columns",
            {
                "field": "features",
                "column": widest,
                "estimate_bytes": estimate,
                "limit": limit_bytes,
            },
        )
    return estimate
