"""Batch prediction from a CSV file: read it, predict as the JSON route does, write a CSV.

The uploaded file is read with pandas, every cell as text, empty cells and pandas'
missing-value markers (``NA``, ``NaN``, ``null``...) as missing, exactly as a
dataset upload is read. Each feature column of the model's signature is turned into
the JSON values the JSON route takes (numbers, ``true``/``false``, text, ``None``
for missing) and predicted by the same service function,
:func:`mlserve.serving.predict`, with the same validation; a cell that is not
valid is reported with its data row (0-based) and column. The answer is the
uploaded table, every column kept (those the model does not use too), with
``prediction`` and, for classifiers with probabilities, ``probability_<class>``
appended; missing cells are written empty; text cells and headers that a
spreadsheet would run as formulas get a leading ``'``
(:mod:`mlserve.serving.csvsafe`). Floats are written with the shortest text that
reads back to the same number (Python's ``repr``), so predictions round-trip
exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlserve.context import Context
from mlserve.datasets.upload import (
    CSV_SNIFF_BYTES,
    check_csv_shape,
    check_csv_text,
    detect_format,
)
from mlserve.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from mlserve.serving.csvsafe import neutralise_frame
from mlserve.serving.predict import PredictionResult, predict
from mlserve.store.documents import Signature

PREDICTION_COLUMN = "prediction"
BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True, kw_only=True)
class CsvPrediction:
    """A CSV of predictions and the version that made them.

    Attributes
    ----------
    content : bytes
        UTF-8 CSV with a header row.
    model_name : str
    model_version : int
    """

    content: bytes
    model_name: str
    model_version: int


def predict_csv(
    ctx: Context,
    name: str,
    *,
    filename: str,
    data: bytes,
    alias: str | None = None,
    version: int | None = None,
) -> CsvPrediction:
    """Predict every row of an uploaded CSV with the version ``alias``/``version`` select.

    Parameters
    ----------
    ctx : Context
    name : str
        Registered model name.
    filename : str
        Client-side file name (a format hint only).
    data : bytes
        The whole file: UTF-8 CSV with a header row, at most
        ``settings.max_batch_rows`` data rows.
    alias, version : str or int, optional
        As :func:`mlserve.serving.predict` (default: ``production``, else latest).

    Returns
    -------
    CsvPrediction

    Raises
    ------
    UnsupportedMediaType
        Not CSV (Parquet, or not UTF-8 text).
    PayloadTooLarge
        More data rows than ``max_batch_rows``.
    ValidationFailed
        Empty file, no data row, ragged rows, duplicate or missing columns, a
        column named like an output column, or a cell the signature refuses
        (``details`` holds ``row`` and ``field``).
    NotFound, Conflict
        As :func:`mlserve.serving.predict`.
    """
    frame = read_csv(filename, data, ctx.settings.max_batch_rows, ctx.settings.max_dataset_columns)
    row = ctx.resolver.resolve(name, alias=alias, version=version)
    _check_output_columns(frame, row.signature)
    inputs = feature_inputs(frame, row.signature)
    try:  # the version resolved above, whatever moves meanwhile
        result = predict(ctx, name, version=row.version, inputs=inputs)
    except ValidationFailed as exc:
        raise _cell_error(exc) from None
    return CsvPrediction(
        content=write_predictions(frame, result),
        model_name=result.model_name,
        model_version=result.model_version,
    )


def read_csv(filename: str, data: bytes, max_rows: int, max_columns: int) -> pd.DataFrame:
    """Read an uploaded CSV, every cell as text (missing as NaN).

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)

    Raises
    ------
    UnsupportedMediaType, PayloadTooLarge, ValidationFailed
        See :func:`predict_csv`.
    """
    if not data.strip():
        raise ValidationFailed("file is empty", {"field": "file"})
    if detect_format(filename, data[:CSV_SNIFF_BYTES]) != "csv":
        raise UnsupportedMediaType("send a CSV file with a header row", {"field": "file"})
    check_csv_text(data)
    check_csv_shape(data, max_columns)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, encoding="utf-8-sig", nrows=max_rows + 1)
    except (pd.errors.ParserError, ValueError) as exc:  # UnicodeDecodeError past the sniff
        raise ValidationFailed(f"CSV could not be parsed: {exc}", {"field": "file"}) from exc
    if frame.empty:
        raise ValidationFailed("file has a header but no data rows", {"field": "file"})
    if len(frame) > max_rows:
        raise PayloadTooLarge(
            f"the CSV has more than max_batch_rows={max_rows} rows",
            {"field": "file", "limit": max_rows},
        )
    return frame


def feature_inputs(frame: pd.DataFrame, signature: Signature) -> dict[str, list[Any]]:
    """The signature's features as columnar JSON values ``{feature: [value per row]}``.

    Numbers are parsed as pandas parses them, ``true``/``false`` (any case) are
    booleans; a cell that does not parse is passed on as its text, so that the
    validator names it. Other columns are ignored.

    Raises
    ------
    ValidationFailed
        A feature has no column.
    """
    inputs: dict[str, list[Any]] = {}
    for feature in signature["inputs"]:
        name = feature["name"]
        if name not in frame.columns:
            raise ValidationFailed(
                f"the CSV has no column {name!r} (a feature of the model)", {"field": name}
            )
        inputs[name] = _values(frame[name], feature["type"])
    return inputs


def _values(column: pd.Series, kind: str) -> list[Any]:
    missing = column.isna().tolist()
    texts = column.tolist()
    if kind == "string":
        return [None if gap else text for text, gap in zip(texts, missing, strict=True)]
    if kind == "boolean":
        return [
            None if gap else BOOLEANS.get(text.strip().lower(), text)
            for text, gap in zip(texts, missing, strict=True)
        ]
    numbers = pd.to_numeric(column, errors="coerce").tolist()
    return [
        None if gap else (number if number == number else text)  # NaN: not a number
        for text, number, gap in zip(texts, numbers, missing, strict=True)
    ]


def _check_output_columns(frame: pd.DataFrame, signature: Signature) -> None:
    classes = signature.get("output", {}).get("classes") or []
    for name in [PREDICTION_COLUMN, *(probability_column(c) for c in classes)]:
        if name in frame.columns:
            raise ValidationFailed(
                f"the CSV already has a column {name!r}, which the answer adds; "
                "rename or remove it",
                {"field": name},
            )


def probability_column(label: Any) -> str:
    """Name of the probability column of class ``label``."""
    return f"probability_{label}"


def _cell_error(exc: ValidationFailed) -> ValidationFailed:
    """The validator's error, worded for a CSV (``row 3, column 'x': ...``)."""
    row, field = exc.details.get("row"), exc.details.get("field")
    if row is None:
        return exc
    reason = exc.message.split(": ", 1)[-1]
    return ValidationFailed(f"row {row}, column {field!r}: {reason}", exc.details)


def write_predictions(frame: pd.DataFrame, result: PredictionResult) -> bytes:
    """``frame`` with ``prediction`` and ``probability_<class>`` columns, as UTF-8 CSV.

    Headers and text cells that a spreadsheet would run as formulas are
    neutralised (:func:`mlserve.serving.csvsafe.neutralise`); numbers are not.
    """
    out = frame.copy()
    out[PREDICTION_COLUMN] = result.predictions
    if result.probabilities is not None and result.classes is not None:
        for index, label in enumerate(result.classes):
            out[probability_column(label)] = result.probabilities[:, index]
    return neutralise_frame(out).to_csv(index=False).encode("utf-8")
