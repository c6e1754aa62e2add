"""Traffic policies without a database: parsing, and who answers a request."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mlserve.errors import ValidationFailed
from mlserve.registry.traffic import Route, parse_policy, sticky_draw
from mlserve.store.orm import ModelVersion


def _row(version: int) -> ModelVersion:
    return ModelVersion(model_name="m", version=version)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"version": 4}, (4, None)),
        (
            {"version": 4, "canary": {"version": 5, "weight": 0.1}},
            (4, {"split": [{"version": 5, "weight": 0.1}], "shadow": []}),
        ),
        ({"version": 4, "shadow": [5, 6]}, (4, {"split": [], "shadow": [5, 6]})),
        (
            {"version": 1, "split": [{"version": 2, "weight": 0.5}, {"version": 3, "weight": 0.5}]},
            (
                1,
                {
                    "split": [{"version": 2, "weight": 0.5}, {"version": 3, "weight": 0.5}],
                    "shadow": [],
                },
            ),
        ),
        (
            {"version": 1, "shadow": [2], "auto": {"min_feedback": 50, "tolerance": 0.1}},
            (1, {"split": [], "shadow": [2], "auto": {"min_feedback": 50, "tolerance": 0.1}}),
        ),
    ],
)
def test_parse_policy_normalises_canary_split_and_shadow(
    body: dict[str, Any], expected: tuple[int, Any]
) -> None:
    assert parse_policy(body) == expected


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"version": 1, "colour": 1}, "colour", "unknown field"),
        ({"version": 0}, "version", "version number"),
        ({"version": True}, "version", "version number"),
        ({"version": 1, "canary": {"version": 2, "weight": 0}}, "canary.weight", r"\(0, 1\]"),
        ({"version": 1, "canary": {"version": 2}}, "canary", "weight"),
        ({"version": 1, "canary": {"version": 1, "weight": 0.5}}, "split[0]", "named twice"),
        ({"version": 1, "shadow": [2, 2]}, "shadow[1]", "named twice"),
        (
            {"version": 1, "split": [{"version": 2, "weight": 0.7}, {"version": 3, "weight": 0.4}]},
            "split",
            "sum over 1",
        ),
        (
            {
                "version": 1,
                "canary": {"version": 2, "weight": 0.1},
                "split": [{"version": 3, "weight": 0.1}],
            },
            "split",
            "not both",
        ),
        ({"version": 1, "shadow": [2, 3], "auto": {}}, "auto", "exactly one candidate"),
        ({"version": 1, "auto": {}}, "auto", "needs a candidate"),
    ],
)
def test_parse_policy_refuses_naming_the_field(
    body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        parse_policy(body)
    assert caught.value.details["field"] == field


def test_plain_route_always_answers_with_the_primary() -> None:
    route = Route(primary=_row(1))
    assert {route.choose(None).version for _ in range(50)} == {1}
    assert route.choose("someone").version == 1


def test_split_shares_follow_the_weights_with_random_draws() -> None:
    random.seed(7)
    route = Route(primary=_row(1), candidates=((_row(2), 0.2), (_row(3), 0.3)))
    answered = [route.choose(None).version for _ in range(20_000)]
    shares = {v: answered.count(v) / len(answered) for v in (1, 2, 3)}
    assert shares == pytest.approx({1: 0.5, 2: 0.2, 3: 0.3}, abs=0.015)


def test_routing_key_is_sticky_and_spreads_keys_by_weight() -> None:
    route = Route(primary=_row(1), candidates=((_row(2), 0.1),))
    keys = [f"user-{i}" for i in range(20_000)]
    first = [route.choose(key).version for key in keys]
    assert [route.choose(key).version for key in keys] == first  # the same key, the same version
    assert first.count(2) / len(keys) == pytest.approx(0.1, abs=0.01)
    draws = [sticky_draw(_row(1), key) for key in keys]
    assert min(draws) >= 0 and max(draws) < 1
