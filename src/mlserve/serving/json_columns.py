"""Whole columns of JSON values checked and converted at once: the validator's fast path.

:class:`mlserve.serving.validation.InstanceValidator` checks a batch a feature at a time
here, with C loops over the column (the set of its Python types, ``"".join`` for text,
``array.array`` for numbers), and converts it to the array a model takes. Whatever is
in doubt raises :class:`Decline`; the validator's row-by-row path then decides and names
the first bad row and field, so both paths give the same result.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np

from mlserve.serving.tensor_columns import NUL, checked_numbers

NUMBER_TYPES = frozenset({int, float})
FAST_TYPES: dict[str, frozenset[type]] = {
    "number": NUMBER_TYPES,
    "integer": NUMBER_TYPES,
    "boolean": frozenset({bool}),
    "string": frozenset({str}),
}


class Decline(Exception):
    """The fast path is unsure; the row-by-row path decides."""


def json_column(
    kind: str, nullable: bool, values: list[Any], missing_text: Any, *, json_values: bool
) -> tuple[np.ndarray, bool]:
    """One feature's values as the array a model takes, and whether any was null.

    Parameters
    ----------
    kind : {"number", "integer", "boolean", "string"}
        The feature's type in the signature.
    nullable : bool
        Whether ``null`` is allowed (the signature's ``nullable`` or ``imputed``).
    values : list of shape (n_rows,)
        The feature's value in each row.
    missing_text : object
        What stands for a null text value in the array.
    json_values : bool
        Every value is of a type a JSON parser gives (``dict``, ``list``, ``str``,
        ``int``, ``float``, ``bool``, ``None``): numbers are then checked in one pass.

    Returns
    -------
    tuple of (ndarray of shape (n_rows,), bool)
        ``float64`` for numbers, integers and booleans (NaN for null), ``object`` holding
        ``str`` for text (``missing_text`` for null); whether a value was null.

    Raises
    ------
    Decline
        A value of another type, a null where none is allowed, a non-finite number, a
        fraction for an integer feature, or text holding NUL.
    """
    if kind == "string":
        try:  # all text, no null (the usual column): its join checks the types in C
            return column_array(kind, values, False, missing_text), False
        except TypeError:
            pass
    elif kind != "boolean" and json_values:
        numbers = _numbers(values)
        if numbers is not None:  # no null among them, so no NaN is allowed
            checked = checked_numbers(numbers, kind, 0)
            if checked is None:
                raise Decline
            return checked, False
    types = set(map(type, values))
    has_null = type(None) in types
    if has_null:
        if not nullable:
            raise Decline
        types.discard(type(None))
    if not types <= FAST_TYPES[kind]:
        raise Decline
    return column_array(kind, values, has_null, missing_text), has_null


def column_array(kind: str, values: list[Any], has_null: bool, missing_text: Any) -> np.ndarray:
    """``values``, each already of ``kind``'s Python type or ``None``, as an array.

    Raises
    ------
    Decline
        Text holding NUL, a number beyond a double's range, a non-finite number or a
        fraction for an integer feature.
    TypeError
        A text value that is not ``str`` (from the join).
    """
    if kind == "string":
        if NUL in "".join([v for v in values if v is not None] if has_null else values):
            raise Decline
        if has_null:
            values = [missing_text if v is None else v for v in values]
        return object_array(values)
    try:
        numbers = np.array(values, dtype=np.float64)  # None becomes NaN
    except OverflowError:
        raise Decline from None
    if kind == "boolean":
        return numbers
    # Only NaN from a null is allowed: as many NaN as nulls, and no infinity.
    checked = checked_numbers(numbers, kind, values.count(None) if has_null else 0)
    if checked is None:
        raise Decline
    return checked


def _numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as ``float64`` if every one is an ``int`` or a ``float``, else ``None``.

    One pass in C: ``array.array("d")`` refuses text and null (``TypeError``) and integers
    beyond a double's range (``OverflowError``), but takes ``true`` and ``false`` as 1 and
    0, so the types are looked at only where a 0 or a 1 landed (everywhere when those
    are many: a binary feature). Against the set of a column's types (the general check)
    this halves the cost of a column of numbers. Only for JSON values: it takes any
    object with ``__float__`` (a numpy integer, a ``Decimal``) for a number.
    """
    try:
        packed = array.array("d", values)
    except (TypeError, OverflowError):
        return None
    numbers = np.frombuffer(packed, dtype=np.float64)
    at = np.flatnonzero((numbers == 0.0) | (numbers == 1.0))
    if 8 * len(at) > len(values):
        types = set(map(type, values))
    else:
        types = set(map(type, map(values.__getitem__, at.tolist())))
    return numbers if types <= NUMBER_TYPES else None


def object_array(values: list[Any]) -> np.ndarray:
    """``values`` as a 1-D object array (``np.array`` would make a string array)."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column
