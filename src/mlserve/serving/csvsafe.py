"""CSV cells that a spreadsheet will not run: the OWASP "CSV Injection" rule.

A spreadsheet opening a CSV treats a cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula (``=HYPERLINK(...)``,
``=cmd|' /C calc'!A0``, DDE). Every text cell and header mlserve writes to a CSV
goes through :func:`neutralise`, which puts a single quote ``'`` in front of such
a cell, as OWASP recommends (https://owasp.org/www-community/attacks/CSV_Injection);
the quote shows in the spreadsheet and tells a reader the cell was changed. A
cell that is a plain decimal number (``-3.5``, ``+2``, ``-1e-3``) is left as it is,
so numbers stay numbers. Quoting of commas, quotes and line breaks is the CSV
writer's (RFC 4180).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(cell: Any) -> Any:
    """``cell`` with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Parameters
    ----------
    cell : Any
        A cell value; only ``str`` values are changed.

    Returns
    -------
    Any
        ``"'" + cell`` for text starting with ``= + - @``, tab or CR that is not
        a decimal number; ``cell`` otherwise.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with its headers and text cells neutralised.

    Returns
    -------
    DataFrame of the same shape; numeric and boolean columns unchanged.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            out[name] = column.map(neutralise, na_action="ignore")
    out.columns = [neutralise(str(name)) for name in out.columns]
    return out
