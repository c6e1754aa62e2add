"""Traffic policies on an alias: canary and A/B splits, shadow versions, promotion.

An alias points at one version (its *primary*) and may carry a policy
(:class:`mlserve.store.documents.TrafficPolicy`): candidates answering a share of the
live requests (a canary is a split of one candidate), and shadow versions receiving a
copy of every request off the request path. Requests resolve to a :class:`Route`
(cached per process by :class:`mlserve.serving.resolver.Resolver`, refreshed with the
registry generation like any alias move), and :meth:`Route.choose` picks who answers:
by a hash of the request's routing key when it has one (sticky), else at random.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mlserve.errors import NotFound, ValidationFailed
from mlserve.registry import lookup
from mlserve.store.database import Database
from mlserve.store.documents import PromotionRule, TrafficArm, TrafficPolicy
from mlserve.store.orm import ModelAlias, ModelVersion

MAX_CANDIDATES = 8
POLICY_FIELDS = frozenset({"version", "canary", "split", "shadow", "auto"})


@dataclass(frozen=True, kw_only=True)
class Route:
    """Who may answer a request for one name (+ alias or version).

    Attributes
    ----------
    primary : ModelVersion
        The version the alias points at (answers what no candidate takes).
    candidates : tuple of (ModelVersion, float)
        Candidate versions and their share of live requests, in [0, 1], summing to <= 1.
    shadows : tuple of ModelVersion
        Versions that get a copy of every request (answers never returned).
    alias : str or None
        The alias the route came from (``None``: a version was named).
    """

    primary: ModelVersion
    candidates: tuple[tuple[ModelVersion, float], ...] = ()
    shadows: tuple[ModelVersion, ...] = ()
    alias: str | None = None
    _bounds: tuple[float, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        total, bounds = 0.0, []
        for _, weight in self.candidates:
            total += weight
            bounds.append(total)
        object.__setattr__(self, "_bounds", tuple(bounds))

    @property
    def versions(self) -> list[ModelVersion]:
        """Every version of the route: primary, candidates, shadows."""
        return [self.primary, *(row for row, _ in self.candidates), *self.shadows]

    def choose(self, routing_key: str | None = None) -> ModelVersion:
        """The version that answers a request.

        Parameters
        ----------
        routing_key : str, optional
            The request's routing key: the same key always lands on the same version
            while the policy stands (a uniform draw from its BLAKE2b hash with the model
            name); ``None``: a fresh uniform draw.
        """
        if not self.candidates:
            return self.primary
        draw = random.random() if routing_key is None else sticky_draw(self.primary, routing_key)
        for (row, _), bound in zip(self.candidates, self._bounds, strict=True):
            if draw < bound:
                return row
        return self.primary


def sticky_draw(primary: ModelVersion, routing_key: str) -> float:
    """A number in [0, 1) fixed by the model name and ``routing_key``."""
    digest = hashlib.blake2b(
        f"{primary.model_name}\x00{routing_key}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


def parse_policy(body: dict[str, Any]) -> tuple[int, TrafficPolicy | None]:
    """The primary version and the policy of an alias body.

    Parameters
    ----------
    body : dict
        ``{"version": 4}`` (plain), ``{"version": 4, "canary": {"version": 5, "weight": 0.1}}``,
        ``{"version": 4, "split": [{"version": 5, "weight": 0.3}, ...]}``,
        ``{"version": 4, "shadow": [5, 6]}``, combinable (no canary with a split), and
        optionally ``"auto": {"min_feedback": 200, "tolerance": 0.02}`` (one candidate).

    Returns
    -------
    tuple of (int, TrafficPolicy or None)
        ``None`` for a plain alias.

    Raises
    ------
    ValidationFailed
        Naming the field: unknown field, bad version or weight, weights summing over 1,
        a version named twice, a rule without exactly one candidate.
    """
    extra = sorted(set(body) - POLICY_FIELDS)
    if extra:
        raise ValidationFailed(f"unknown field {extra[0]!r}", {"field": extra[0]})
    primary = _version(body.get("version"), "version")
    if "canary" in body and "split" in body:
        raise ValidationFailed("give canary or split, not both", {"field": "split"})
    if "canary" in body:
        split = [_arm(body["canary"], "canary")]
    else:
        raw = body.get("split", [])
        if not isinstance(raw, list) or len(raw) > MAX_CANDIDATES:
            raise ValidationFailed(
                f"split must be a list of at most {MAX_CANDIDATES} arms", {"field": "split"}
            )
        split = [_arm(arm, f"split[{i}]") for i, arm in enumerate(raw)]
    shadow_raw = body.get("shadow", [])
    if not isinstance(shadow_raw, list) or len(shadow_raw) > MAX_CANDIDATES:
        raise ValidationFailed(
            f"shadow must be a list of at most {MAX_CANDIDATES} versions", {"field": "shadow"}
        )
    shadow = [_version(v, f"shadow[{i}]") for i, v in enumerate(shadow_raw)]
    _check_distinct(primary, split, shadow)
    if sum(arm["weight"] for arm in split) > 1.0 + 1e-9:
        raise ValidationFailed("split weights sum over 1", {"field": "split"})
    if not split and not shadow:
        if "auto" in body:
            raise ValidationFailed("a rule needs a candidate", {"field": "auto"})
        return primary, None
    policy = TrafficPolicy(split=split, shadow=shadow)
    if "auto" in body:
        policy["auto"] = _rule(body["auto"], split, shadow)
    return primary, policy


def _version(value: Any, name: str) -> int:
    if type(value) is not int or not 1 <= value <= lookup.MAX_VERSION:
        raise ValidationFailed(f"{name} must be a version number (integer >= 1)", {"field": name})
    return value


def _arm(value: Any, name: str) -> TrafficArm:
    if not isinstance(value, dict) or set(value) != {"version", "weight"}:
        raise ValidationFailed(
            f'{name} must be {{"version": int, "weight": number}}', {"field": name}
        )
    weight = value["weight"]
    if type(weight) not in (int, float) or not 0 < weight <= 1:
        raise ValidationFailed(f"{name}.weight must be in (0, 1]", {"field": f"{name}.weight"})
    return TrafficArm(version=_version(value["version"], f"{name}.version"), weight=float(weight))


def _rule(value: Any, split: list[TrafficArm], shadow: list[int]) -> PromotionRule:
    if len(split) + len(shadow) != 1:
        raise ValidationFailed("an automatic rule needs exactly one candidate", {"field": "auto"})
    if not isinstance(value, dict) or set(value) - {"min_feedback", "tolerance"}:
        raise ValidationFailed(
            'auto must be {"min_feedback": int, "tolerance": number}', {"field": "auto"}
        )
    minimum, tolerance = value.get("min_feedback", 200), value.get("tolerance", 0.02)
    if type(minimum) is not int or not 1 <= minimum <= 1_000_000:
        raise ValidationFailed(
            "min_feedback must be 1 to 1,000,000", {"field": "auto.min_feedback"}
        )
    if type(tolerance) not in (int, float) or not 0 <= tolerance <= 1:
        raise ValidationFailed("tolerance must be in [0, 1]", {"field": "auto.tolerance"})
    return PromotionRule(min_feedback=minimum, tolerance=float(tolerance))


def _check_distinct(primary: int, split: list[TrafficArm], shadow: list[int]) -> None:
    seen = {primary}
    for i, number in enumerate([*(arm["version"] for arm in split), *shadow]):
        if number in seen:
            name = f"split[{i}]" if i < len(split) else f"shadow[{i - len(split)}]"
            raise ValidationFailed(
                f"version {number} is named twice in the policy", {"field": name}
            )
        seen.add(number)


def policy_versions(primary: int, policy: TrafficPolicy | None) -> list[int]:
    """Every version number an alias uses: primary, candidates, shadows."""
    if policy is None:
        return [primary]
    return [primary, *(arm["version"] for arm in policy["split"]), *policy["shadow"]]


def resolve_route(
    db: Database, name: str, alias: str | None = None, version: int | None = None
) -> Route:
    """The route of a request (see :func:`mlserve.registry.lookup.resolve` for the selection).

    A plain alias or a named version costs what :func:`~mlserve.registry.lookup.resolve`
    costs; a policy adds one query for its versions.

    Raises
    ------
    ValidationFailed, NotFound
        As :func:`mlserve.registry.lookup.resolve`.
    """
    if version is not None or alias == "latest":
        return Route(primary=lookup.resolve(db, name, alias=alias, version=version), alias=alias)
    with db.session() as session:
        pointer = session.get(ModelAlias, (name, alias or lookup.DEFAULT_ALIAS))
        policy = pointer.policy if pointer is not None else None
        if policy is None:
            row = None
        else:
            numbers = policy_versions(pointer.version, policy)  # type: ignore[union-attr]
            rows = {
                r.version: r
                for r in session.scalars(
                    select(ModelVersion).where(
                        ModelVersion.model_name == name, ModelVersion.version.in_(numbers)
                    )
                )
            }
            row = rows.get(numbers[0])
    if policy is None or row is None:
        return Route(primary=lookup.resolve(db, name, alias=alias), alias=alias)
    missing = [n for n in policy_versions(row.version, policy) if n not in rows]
    if missing:  # checked when the policy was set; a stored-data fault otherwise
        raise NotFound(
            f"model {name!r} has no version {missing[0]}",
            {"resource": "model_version", "model": name, "version": missing[0]},
        )
    return Route(
        primary=row,
        candidates=tuple((rows[arm["version"]], arm["weight"]) for arm in policy["split"]),
        shadows=tuple(rows[n] for n in policy["shadow"]),
        alias=alias or lookup.DEFAULT_ALIAS,
    )
