"""Feature columns straight from decoded tensors (V2 binary or nested JSON data).

A V2 request whose tensors arrive as arrays (``binary_data_size``, or data that is not
a flat JSON list) used to be turned into Python lists and checked value by value as
JSON values are. :func:`array_column` takes the array as it is when the list path
would accept every value of it, with the same result; anything else is declined
(``None``) and goes through the list path, which names the first bad value.
"""

from __future__ import annotations

import numpy as np

NUL = "\x00"
_TEXT = {str}


def array_column(kind: str, nullable: bool, array: np.ndarray) -> np.ndarray | None:
    """The validated column of one feature, or ``None`` to decline.

    Parameters
    ----------
    kind : {"number", "integer", "boolean", "string"}
        The feature's type in the signature.
    nullable : bool
        Whether a missing value is allowed (NaN in a floating tensor is one).
    array : ndarray of shape (n_rows,)
        The decoded tensor (``BYTES`` elements cannot be missing).

    Returns
    -------
    ndarray of shape (n_rows,) or None
        float64 for numbers, integers and booleans (NaN for missing), object holding
        ``str`` for text; ``None`` where the list path must judge (a value it would
        refuse, or a dtype it reads differently).
    """
    if kind == "string":
        if array.dtype.kind != "O":
            return None
        values = array.tolist()
        if set(map(type, values)) != _TEXT or NUL in "".join(values):
            return None
        return array
    if kind == "boolean":
        return array.astype(np.float64) if array.dtype.kind == "b" else None
    if array.dtype.kind not in "fiu":
        return None
    return checked_numbers(array.astype(np.float64), kind, None if nullable else 0)


def checked_numbers(values: np.ndarray, kind: str, missing: int | None) -> np.ndarray | None:
    """``values`` if they suit a number or integer feature, else ``None``.

    The one numeric check of both paths (:meth:`InstanceValidator.columns`'s fast lane and
    :func:`array_column`): no infinity; NaN only for missing values; whole numbers for
    ``integer``.

    Parameters
    ----------
    values : ndarray of shape (n_rows,), float64
    kind : {"number", "integer"}
    missing : int or None
        How many NaN stand for missing values (the nulls sent); ``None``: any number.
    """
    finite = np.isfinite(values)
    if not finite.all():
        if np.isinf(values).any():
            return None
        if missing is not None and int((~finite).sum()) != missing:
            return None
    if kind == "integer" and not np.array_equal(values[finite], np.floor(values[finite])):
        return None
    return values
