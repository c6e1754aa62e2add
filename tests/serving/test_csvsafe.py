"""The OWASP CSV-injection rule: formula-looking text gets a leading quote, numbers do not."""

from __future__ import annotations

import pandas as pd
import pytest

from mlserve.serving.csvsafe import neutralise, neutralise_frame

CELLS = [
    ("=1+1", "'=1+1"),
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+x", "'+x"),
    ("-x", "'-x"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-3+2", "'-3+2"),
    ("-1_000", "'-1_000"),
    ("-3.5", "-3.5"),
    ("+2", "+2"),
    ("-1e-3", "-1e-3"),
    ("-.5", "-.5"),
    ("plain", "plain"),
    ("a=b", "a=b"),
    ("", ""),
    (-3.5, -3.5),
    (None, None),
]


@pytest.mark.parametrize(("cell", "expected"), CELLS)
def test_neutralise_follows_the_owasp_rule(cell: object, expected: object) -> None:
    assert neutralise(cell) == expected


def test_neutralise_frame_changes_headers_and_text_not_numbers() -> None:
    frame = pd.DataFrame({"=h": ["=1", None], "x": [-3.5, 2.0], "-y": ["-4", "@a"]})
    out = neutralise_frame(frame)
    assert list(out.columns) == ["'=h", "x", "'-y"]
    assert out["'=h"].tolist()[0] == "'=1" and out["'=h"].isna().tolist() == [False, True]
    assert out["x"].tolist() == [-3.5, 2.0]
    assert out["'-y"].tolist() == ["-4", "'@a"]
    assert list(frame.columns) == ["=h", "x", "-y"]  # the input is not changed
