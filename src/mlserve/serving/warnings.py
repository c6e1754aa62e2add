"""Prediction warnings: what a model guessed rather than knew, row by row.

A prediction still answers when a feature the pipeline imputes is ``null`` or a text
value was never seen in training; the answer lists each such value in ``warnings``
(and ``mlserve_prediction_warnings_total`` counts them) so that the client can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

NULL_IMPUTED = "null_imputed"
UNSEEN_CATEGORY = "unseen_category"
MAX_VALUE_CHARS = 100


def prediction_warnings(
    columns: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    known: Mapping[str, frozenset[str]],
    missing_text: Any,
) -> list[dict[str, Any]]:
    """Warnings of validated request columns, by row then feature order.

    Parameters
    ----------
    columns : mapping of str to ndarray of shape (n_rows,)
        Validated columns (:meth:`mlserve.serving.validation.InstanceValidator.columns`):
        numbers as float64 with NaN for null, text as objects with ``missing_text``.
    kinds : mapping of str to str
        Feature -> logical type, in signature order.
    known : mapping of str to frozenset
        Text feature -> the values seen in training (features absent: not checked).
    missing_text : object
        What stands for a null text value in ``columns``.

    Returns
    -------
    list of dict
        ``{"row", "field", "warning": "null_imputed"}`` and ``{"row", "field",
        "warning": "unseen_category", "value"}`` (the value cut at 100 characters).
    """
    found: list[tuple[int, int, dict[str, Any]]] = []
    for order, (name, kind) in enumerate(kinds.items()):
        values = columns[name]
        if kind != "string":
            missing = np.isnan(values)
            if missing.any():
                for row in np.flatnonzero(missing).tolist():
                    found.append((row, order, _entry(row, name, NULL_IMPUTED)))
            continue
        seen = known.get(name)
        texts = values.tolist()
        distinct = set(texts)
        if (seen is None or distinct <= seen) and not any(
            value is missing_text or value != value for value in distinct
        ):
            continue  # no null and nothing unseen: no need to look row by row
        for row, value in enumerate(texts):
            if value is missing_text or value != value:
                found.append((row, order, _entry(row, name, NULL_IMPUTED)))
            elif seen is not None and value not in seen:
                entry = _entry(row, name, UNSEEN_CATEGORY)
                entry["value"] = str(value)[:MAX_VALUE_CHARS]
                found.append((row, order, entry))
    return [entry for _row, _order, entry in sorted(found, key=lambda t: t[:2])]


def _entry(row: int, field: str, warning: str) -> dict[str, Any]:
    return {"row": row, "field": field, "warning": warning}
