"""The guard of online updates: is the new version no worse than production?

Both are scored on the guard window, the most recent samples neither has learned
from (see :mod:`mlserve.online_update` and docs/online-learning.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Guard:
    """The guard's decision on a new version.

    ``passed`` when the candidate's metric on the window is no worse than
    production's by more than ``tolerance`` times production's metric.
    """

    metric: str
    candidate: float
    production: float
    production_version: int
    tolerance: float
    window: dict[str, int]

    @property
    def passed(self) -> bool:
        slack = self.tolerance * abs(self.production)
        if self.metric == "rmse":
            return self.candidate <= self.production + slack
        return self.candidate >= self.production - slack

    def view(self) -> dict[str, Any]:
        """JSON-ready record of the decision."""
        return {
            "metric": self.metric,
            "candidate": self.candidate,
            "production": self.production,
            "production_version": self.production_version,
            "tolerance": self.tolerance,
            "window": self.window,
            "passed": self.passed,
        }


def reason(guard: dict[str, Any]) -> str:
    """The decision of a guard (its :meth:`Guard.view`) in one sentence."""
    verdict = "no worse than" if guard["passed"] else "worse than"
    return (
        f"{guard['metric']} {guard['candidate']:.6g} on the guard window is {verdict} "
        f"production (version {guard['production_version']}: {guard['production']:.6g}) "
        f"within tolerance {guard['tolerance']:g}"
    )
