"""Validation of prediction instances against a model signature.

An :class:`InstanceValidator` is compiled once per loaded model version and turns
``[{feature: value, ...}, ...]`` into the DataFrame the pipeline expects, or
raises :class:`~mlserve.errors.ValidationFailed` naming the row and the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlserve.errors import ValidationFailed

Check = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


CHECKS: dict[str, tuple[Check, str]] = {
    "number": (_is_number, "a finite number"),
    "integer": (_is_integer, "a whole number"),
    "boolean": (_is_boolean, "true or false"),
    "string": (_is_string, "a string"),
}


def _fail(row: int, field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"instances[{row}].{field}: {message}", {"field": field, "row": row})


class InstanceValidator:
    """Checks and converts prediction instances for one signature.

    Parameters
    ----------
    signature : dict
        ``{"inputs": [{"name", "type", "nullable"}, ...], ...}``.
    """

    def __init__(self, signature: dict[str, Any]) -> None:
        self.features: list[str] = [f["name"] for f in signature["inputs"]]
        self._specs = [
            (f["name"], *CHECKS[f["type"]], bool(f["nullable"]), f["type"])
            for f in signature["inputs"]
        ]
        self._names = frozenset(self.features)

    def validate(self, instances: Any) -> pd.DataFrame:
        """Validate ``instances`` and return them as a model input frame.

        Parameters
        ----------
        instances : list of dict
            One mapping of feature name to value per row.

        Returns
        -------
        DataFrame of shape (n_instances, n_features)
            Numeric and boolean features as ``float64`` (missing as NaN), text
            features as ``object`` (missing as NaN), in signature order, exactly
            as :func:`mlserve.signature.model_frame` prepares training data.

        Raises
        ------
        ValidationFailed
            ``instances`` is not a non-empty list of objects; a feature is
            missing, unknown, of the wrong type, non-finite, or null where the
            signature does not allow it. ``details`` holds ``row`` and ``field``.
        """
        if not isinstance(instances, list) or not instances:
            raise ValidationFailed(
                "instances must be a non-empty list of objects", {"field": "instances"}
            )
        columns: dict[str, list[Any]] = {name: [] for name in self.features}
        for index, row in enumerate(instances):
            self._check_row(index, row, columns)
        return self._frame(columns, len(instances))

    def _check_row(self, index: int, row: Any, columns: dict[str, list[Any]]) -> None:
        if not isinstance(row, dict):
            raise ValidationFailed(
                f"instances[{index}] must be an object", {"field": "instances", "row": index}
            )
        if len(row) != len(self._names) or not self._names.issuperset(row):
            extra = sorted(set(row) - self._names)
            if extra:
                raise _fail(index, str(extra[0]), "unknown feature")
        for name, check, expected, nullable, _kind in self._specs:
            if name not in row:
                raise _fail(index, name, "missing feature")
            value = row[name]
            if value is None:
                if not nullable:
                    raise _fail(index, name, "null is not allowed for this feature")
            elif not check(value):
                raise _fail(index, name, f"expected {expected}, got {value!r}"[:200])
            columns[name].append(value)

    def _frame(self, columns: dict[str, list[Any]], n_rows: int) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for name, _check, _expected, _nullable, kind in self._specs:
            values = columns[name]
            if kind == "string":
                # An object Series, as in training; a bare array of strings would
                # become pandas' str dtype.
                data[name] = pd.Series([np.nan if v is None else v for v in values], dtype=object)
            else:
                data[name] = np.array(
                    [np.nan if v is None else float(v) for v in values], dtype=np.float64
                )
        return pd.DataFrame(data, index=pd.RangeIndex(n_rows))
