"""Validation of prediction instances against a model signature.

An :class:`InstanceValidator` is compiled once per loaded model version and turns
``[{feature: value, ...}, ...]`` into one numpy array per feature (what a compiled
ONNX model takes, and what a DataFrame is built from for scikit-learn), or raises
:class:`~mlserve.errors.ValidationFailed` naming the row and the field.

Two paths give the same result. The fast path checks whole columns at once
(:mod:`mlserve.serving.json_columns`: C loops over a column, then numpy for
finiteness); it declines at the first doubt, and the row-by-row path then finds the
first offending row and field and names them in the error.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from mlserve.errors import ValidationFailed
from mlserve.lazy import lazy_module
from mlserve.serving.json_columns import Decline as _Decline
from mlserve.serving.json_columns import column_array, json_column
from mlserve.serving.tensor_columns import NUL, array_column
from mlserve.serving.warnings import prediction_warnings
from mlserve.store.documents import Signature
from mlserve.training.signature import MAX_CATEGORIES_LISTED

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

Check = Callable[[Any], bool]
Columns = dict[str, np.ndarray]


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


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60
_REPR.maxlist = _REPR.maxdict = 5


def _short_repr(value: Any) -> str:
    """A bounded ``repr`` of a client value (depth, length), safe on deep nesting."""
    return _REPR.repr(value)[:150]


def _fail(row: int, field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"instances[{row}].{field}: {message}", {"field": field, "row": row})


_ABSENT = object()


_NO_ROWS = np.empty(0, dtype=np.float64)


class _Screened(dict[str, np.ndarray]):
    """Columns whose check noted where a warning can be: ``suspects`` names the features
    that had a null or a text value outside the known ones, and
    :meth:`InstanceValidator.warnings` looks at those alone (looking at every column
    would cost a batch a tenth of its check, and a row more than its check).

    ``numeric_row`` (one row only): the values of the signature's non-text features
    (numeric and boolean) as one float64 array of shape (1, n_numeric), in signature
    order; the row's columns of those features are views of it, and a graph packing the
    same columns in that order takes it as its numeric input as it is
    (:meth:`mlserve.serving.onnx_model.OnnxModel.graph_feed`)."""

    suspects: frozenset[str] = frozenset()
    numeric_row: np.ndarray | None = None


class InstanceValidator:
    """Checks and converts prediction instances for one signature.

    Parameters
    ----------
    signature : dict
        ``{"inputs": [{"name", "type", "nullable"}, ...], ...}``.
    missing_text : object
        Value that stands for a missing text feature in the arrays returned
        by :meth:`columns`: NaN for scikit-learn (what ``SimpleImputer`` treats
        as missing) or the ONNX runtime's marker.
    """

    def __init__(self, signature: Signature, missing_text: Any = np.nan) -> None:
        self.features: list[str] = [f["name"] for f in signature["inputs"]]
        # A feature the pipeline imputes accepts null whether or not training had any.
        self._specs = [
            (f["name"], *CHECKS[f["type"]], bool(f["nullable"] or f.get("imputed")), f["type"])
            for f in signature["inputs"]
        ]
        self._names = frozenset(self.features)
        self._numeric = tuple(name for name, *_rest, kind in self._specs if kind != "string")
        self._kinds = {name: kind for name, *_rest, kind in self._specs}
        self._missing_text = missing_text
        # Known text values, where the signature lists them all (under 1,000).
        self._known = {
            f["name"]: frozenset(f["categories"])
            for f in signature["inputs"]
            if "categories" in f and len(f["categories"]) < MAX_CATEGORIES_LISTED
        }

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
            features as ``object`` (missing as ``missing_text``), in signature
            order, as :func:`mlserve.training.signature.model_frame` prepares training data.

        Raises
        ------
        ValidationFailed
            See :meth:`columns`.
        """
        return self.frame(self.columns(instances))

    def frame(self, columns: Columns) -> pd.DataFrame:
        """The DataFrame of shape (n_rows, n_features) holding ``columns``."""
        data = {
            name: pd.Series(columns[name], dtype=object) if kind == "string" else columns[name]
            for name, *_rest, kind in self._specs
        }
        n_rows = len(next(iter(columns.values()))) if columns else 0
        return pd.DataFrame(data, index=pd.RangeIndex(n_rows))

    def columns(
        self, instances: Any, extra: str = "refuse", *, json_values: bool = False
    ) -> Columns:
        """Validate ``instances`` and return one array per feature.

        Parameters
        ----------
        instances : list of dict or list of list
            One ``{feature: value}`` object per row, or one list of values per row in
            signature order (KServe V1's list form).
        extra : {"refuse", "ignore"}
            What to do with keys that are not features: a 422 naming the first, or
            nothing.
        json_values : bool
            Every value is of a type a JSON parser gives (``dict``, ``list``, ``str``,
            ``int``, ``float``, ``bool``, ``None``), as in a parsed request body: a
            column of numbers is then checked and converted in one pass. Other types
            (numpy scalars, ``Decimal``) must not be passed with it (they would be
            taken for numbers where the general check refuses them).

        Returns
        -------
        dict of str to ndarray of shape (n_instances,)
            In signature order: ``float64`` for numeric and boolean features
            (booleans as 0/1, missing as NaN), ``object`` arrays of ``str`` for
            text features (missing as ``missing_text``).

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
        if type(instances[0]) is list:
            instances = self.rows_from_lists(instances)
        try:
            return self._fast(instances, json_values)
        except _Decline:
            return self._checked(instances, extra == "ignore")

    def rows_from_lists(self, instances: list[Any]) -> list[Any]:
        """KServe V1's list form (each row a list of values in signature order) as
        ``{feature: value}`` rows.

        Raises
        ------
        ValidationFailed
            A row is not a list of as many values as the signature has features.
        """
        width = len(self.features)
        for index, row in enumerate(instances):
            if type(row) is not list or len(row) != width:
                found = len(row) if type(row) is list else "not a list"
                raise ValidationFailed(
                    f"instances[{index}]: a row given as a list needs {width} values, in "
                    f"signature order ({', '.join(self.features)}); found {found}",
                    {"field": "instances", "row": index, "expected": width},
                )
        return [dict(zip(self.features, row, strict=True)) for row in instances]

    def _checked(self, instances: list[Any], ignore_extra: bool = False) -> Columns:
        """The row-by-row path: names the first bad row and field."""
        collected: dict[str, list[Any]] = {name: [] for name in self.features}
        for index, row in enumerate(instances):
            self._check_row(index, row, collected, ignore_extra)
        return {
            name: column_array(kind, collected[name], None in collected[name], self._missing_text)
            for name, *_rest, kind in self._specs
        }

    def columns_from_frame(self, frame: pd.DataFrame) -> Columns:
        """``frame``'s feature columns as :meth:`columns` returns them (no checks).

        Parameters
        ----------
        frame : DataFrame of shape (n_rows, n_features)
            Already in model input dtypes (:func:`mlserve.training.signature.model_frame`).
        """
        out: Columns = {}
        for name, *_rest, kind in self._specs:
            if kind == "string":
                values = frame[name].to_numpy(dtype=object)
                out[name] = np.where(pd.isna(values), self._missing_text, values).astype(object)
            else:
                out[name] = frame[name].to_numpy(dtype=np.float64)
        return out

    def _fast(self, instances: list[Any], json_values: bool) -> Columns:
        width = len(self._names)
        if len(instances) == 1:
            return self._one(instances[0], width)
        for row in instances:
            if type(row) is not dict or len(row) != width:
                raise _Decline
        try:
            lists = {name: list(map(itemgetter(name), instances)) for name in self.features}
        except KeyError:
            raise _Decline from None
        return self._fast_columns(lists, json_values)

    def _fast_columns(self, lists: dict[str, list[Any]], json_values: bool) -> Columns:
        """Every feature's values checked a whole column at a time; the result is
        :class:`_Screened`: the features with a null or an unknown text value noted."""
        out = _Screened()
        suspects = []
        known = self._known
        for name, _check, _expected, nullable, kind in self._specs:
            values = lists[name]
            out[name], has_null = json_column(
                kind, nullable, values, self._missing_text, json_values=json_values
            )
            if has_null or (name in known and not known[name].issuperset(values)):
                suspects.append(name)
        if suspects:
            out.suspects = frozenset(suspects)
        return out

    def warnings(self, columns: Columns) -> list[dict[str, Any]]:
        """What the model will guess rather than know, per row: nulls it imputes and text
        values unseen in training (they encode as the infrequent group, zeros or the target
        mean, see :func:`mlserve.training.preprocessing.build_preprocessor`).

        Parameters
        ----------
        columns : dict of str to ndarray of shape (n_rows,)
            As :meth:`columns` returns them.

        Returns
        -------
        list of dict
            ``{"row", "field", "warning": "null_imputed"}`` and ``{"row", "field",
            "warning": "unseen_category", "value"}``, by row then signature order.
        """
        kinds = self._kinds
        if type(columns) is _Screened:
            if not columns.suspects:
                return []
            kinds = {name: kind for name, kind in kinds.items() if name in columns.suspects}
        return prediction_warnings(columns, kinds, self._known, self._missing_text)

    def columns_from_inputs(
        self, inputs: Any, extra: str = "refuse", *, json_values: bool = False
    ) -> Columns:
        """Validate columnar input ``{feature: [value, ...]}`` and return one array per feature.

        The columnar request format of TensorFlow Serving's REST API (``"inputs"``):
        cheaper to parse and check than one object per row for large batches.

        Parameters
        ----------
        inputs : dict of str to list
            Every feature of the signature, each with one value per row, all of
            the same length.
        extra : {"refuse", "ignore"}
            As :meth:`columns`.
        json_values : bool
            As :meth:`columns`.

        Returns
        -------
        dict of str to ndarray of shape (n_rows,)
            As :meth:`columns`.

        Raises
        ------
        ValidationFailed
            ``inputs`` is not an object of equally long non-empty lists; a
            feature is missing or unknown; a value is invalid (``details`` holds
            ``field`` and ``row``, the message reads ``inputs.<field>[<row>]``).
        """
        if not isinstance(inputs, dict) or not inputs:
            raise ValidationFailed(
                "inputs must be a non-empty object of {feature: [values]}", {"field": "inputs"}
            )
        for name in sorted(set(inputs) - self._names):
            if extra == "ignore":
                inputs = {k: v for k, v in inputs.items() if k in self._names}
                break
            raise ValidationFailed(
                f'inputs.{name}: unknown feature (send extra: "ignore" to leave it out)',
                {"field": name},
            )
        for name in self.features:
            if name not in inputs:
                raise ValidationFailed(f"inputs.{name}: missing feature", {"field": name})
        lengths = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
        if len(lengths) != 1 or min(lengths) < 1:
            raise ValidationFailed(
                "inputs: every feature needs a non-empty list of values, all of the same length",
                {"field": "inputs", "lengths": {k: len(v) if isinstance(v, list) else None
                                                for k, v in inputs.items()}},
            )  # fmt: skip
        try:
            return self._fast_columns(inputs, json_values)
        except _Decline:
            pass
        rows = [dict(zip(self.features, values, strict=True)) for values in
                zip(*(inputs[name] for name in self.features), strict=True)]  # fmt: skip
        try:
            return self._checked(rows)
        except ValidationFailed as exc:  # name the value as the client sent it
            field, row = exc.details.get("field"), exc.details.get("row")
            reason = exc.message.split(": ", 1)[-1]
            raise ValidationFailed(f"inputs.{field}[{row}]: {reason}", exc.details) from None

    def columns_from_arrays(self, arrays: dict[str, np.ndarray]) -> Columns | None:
        """Validated columns from decoded tensors, one 1-D array per feature, or ``None``.

        ``None`` (decline) unless every feature and nothing else is there, the arrays
        are 1-D of one non-zero length, and each passes
        :func:`mlserve.serving.tensor_columns.array_column`; the caller then checks the
        values as JSON lists, which names the first bad one.
        """
        if arrays.keys() != self._names:
            return None
        lengths = {a.shape[0] if a.ndim == 1 else -1 for a in arrays.values()}
        if len(lengths) != 1 or min(lengths) < 1:
            return None
        out: Columns = {}
        for name, _check, _expected, nullable, kind in self._specs:
            column = array_column(kind, nullable, arrays[name])
            if column is None:
                return None
            out[name] = column
        return out

    def _one(self, row: Any, width: int) -> Columns:
        """One row, value by value: cheaper than numpy on whole columns. The numeric
        values become one (1, n_numeric) array (``numeric_row``), the columns views of it."""
        if type(row) is not dict or len(row) != width:
            raise _Decline
        out = _Screened()
        suspects: list[str] = []  # a null, or a text value outside the known ones
        numbers: list[Any] = []
        known = self._known
        for name, check, _expected, nullable, kind in self._specs:
            value = row.get(name, _ABSENT)
            if value is None and nullable:
                value = self._missing_text if kind == "string" else np.nan
                suspects.append(name)
            elif not check(value) or (kind == "string" and NUL in value):
                raise _Decline
            elif kind == "string" and name in known and value not in known[name]:
                suspects.append(name)
            if kind == "string":
                column = np.empty(1, dtype=object)
                column[0] = value
                out[name] = column
            else:
                numbers.append(value)
                out[name] = _NO_ROWS  # keeps signature order; a view of the block below
        if numbers:
            block = np.array([numbers], dtype=np.float64)
            for index, name in enumerate(self._numeric):
                out[name] = block[0, index : index + 1]
            out.numeric_row = block
        if suspects:
            out.suspects = frozenset(suspects)
        return out

    def _check_row(
        self, index: int, row: Any, columns: dict[str, list[Any]], ignore_extra: bool
    ) -> None:
        if not isinstance(row, dict):
            raise ValidationFailed(
                f"instances[{index}] must be an object", {"field": "instances", "row": index}
            )
        if not ignore_extra and (len(row) != len(self._names) or not self._names.issuperset(row)):
            extra = sorted(set(row) - self._names)
            if extra:
                raise _fail(
                    index, str(extra[0]), 'unknown feature (send extra: "ignore" to leave it out)'
                )
        for name, check, expected, nullable, kind in self._specs:
            if name not in row:
                raise _fail(index, name, "missing feature")
            value = row[name]
            if value is None:
                if not nullable:
                    raise _fail(index, name, "null is not allowed for this feature")
            elif not check(value):
                raise _fail(index, name, f"expected {expected}, got {_short_repr(value)}")
            elif kind == "string" and NUL in value:
                # NUL never appears in text read from CSV or Parquet training data;
                # refusing it keeps the ONNX runtime's missing-text marker free.
                raise _fail(index, name, "NUL characters are not allowed in text")
            columns[name].append(value)
