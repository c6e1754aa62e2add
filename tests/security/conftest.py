"""Fixtures of the access tests: a clock the key cache reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlserve.security import keys as auth


class Clock:
    """A ``time.monotonic`` the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=fake))
    return fake
