"""Parsing of command-line input for the user commands: ``--param`` values, feature
lists, and prediction rows from CSV or JSON files."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any, cast

import click
import orjson

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")
# The spellings pandas.read_csv reads as booleans.
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
             "false": False}  # fmt: skip


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_param_value(raw: str) -> Any:
    """Parse ``raw`` as JSON when possible (``5``, ``0.1``, ``true``, ``null``,
    ``[1, 2]``, ``"x"``), otherwise keep it as a string (``gini``).

    ``NaN`` and ``Infinity`` stay strings: they are not valid JSON.
    """
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return raw


def parse_params(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Parse ``key=value`` pairs into a hyper-parameter dict.

    Parameters
    ----------
    pairs : sequence of str
        Each ``key=value``; the value is parsed with :func:`parse_param_value`.

    Returns
    -------
    dict
        Key to parsed value.

    Raises
    ------
    click.BadParameter
        A pair without ``=``, with an empty key, or a key given twice.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--param")
        if key in params:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="--param")
        params[key] = parse_param_value(raw)
    return params


def parse_features(raw: str | None) -> list[str] | None:
    """Split ``a,b,c`` into feature names (``None`` stays ``None``).

    Raises
    ------
    click.BadParameter
        No name at all, or a name listed twice.
    """
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("expected comma-separated column names", param_hint="--features")
    if len(set(names)) != len(names):
        raise click.BadParameter("a feature is listed twice", param_hint="--features")
    return names


def convert_cell(cell: str | None) -> Any:
    """Convert one CSV cell to a JSON value.

    Empty (or blank) cells become ``None``, integers ``int``, decimals and
    exponents ``float`` (unless they overflow to infinity), ``true`` and
    ``false`` (as pandas spells them) ``bool``; anything else stays the
    original string, whitespace included.
    """
    if cell is None:
        return None
    text = cell.strip()
    if not text:
        return None
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else cell
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    return cell


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise click.ClickException(f"{path} is empty")
        names = [name.strip() for name in header]
        if any(not name for name in names):
            raise click.ClickException(f"{path}: the header has an empty column name")
        if len(set(names)) != len(names):
            raise click.ClickException(f"{path}: the header names a column twice")
        rows: list[dict[str, Any]] = []
        for line_no, cells in enumerate(reader, start=2):
            if not cells:
                continue  # blank line
            if len(cells) > len(names):
                raise click.ClickException(
                    f"{path}, line {line_no}: {len(cells)} cells for {len(names)} columns"
                )
            padded: list[str | None] = [*cells, *([None] * (len(names) - len(cells)))]
            rows.append(
                {name: convert_cell(cell) for name, cell in zip(names, padded, strict=True)}
            )
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        if "instances" not in data:
            raise click.ClickException(
                f'{path}: expected a list of objects or {{"instances": [...]}}'
            )
        data = data["instances"]
    if not isinstance(data, list):
        raise click.ClickException(f"{path}: instances must be a list of objects")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise click.ClickException(
                f"{path}: instance {index} is a {type(row).__name__}, expected an object"
            )
    return cast(list[dict[str, Any]], data)


def read_instances(path: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """Read prediction rows from a CSV or JSON file.

    Parameters
    ----------
    path : Path
        ``.csv`` (header row, cells converted by :func:`convert_cell`) or
        ``.json`` (a list of objects, or ``{"instances": [...]}``).
    fmt : {"csv", "json"}, optional
        Format, overriding the file extension.

    Returns
    -------
    list of dict
        One mapping of column to value per row.

    Raises
    ------
    click.ClickException
        Unknown format, unreadable or malformed file, or no rows.
    """
    kind = (fmt or path.suffix.lstrip(".")).lower()
    if kind not in ("csv", "json"):
        raise click.ClickException(
            f"cannot tell the format of {path}: use a .csv or .json file, or --format"
        )
    try:
        rows = _read_csv(path) if kind == "csv" else _read_json(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise click.ClickException(f"{path} holds no rows")
    return rows
