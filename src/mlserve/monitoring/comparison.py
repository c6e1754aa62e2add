"""Comparing the versions of an alias's traffic policy, and the automatic promotion rule.

Per version of the policy (primary, candidates, shadows): requests, errors and latency
p50/p99 of this process (:mod:`mlserve.serving.traffic_stats`; ``/metrics`` has them per
process for a Prometheus server to sum), agreement with the primary on the version's
own logged requests since the policy was set (the primary re-predicts them: share of
equal labels, or mean absolute difference), and live metrics from feedback
(:func:`mlserve.monitoring.live.live_metrics`). :func:`apply_rules` runs on the job
worker's heartbeat: it promotes or rolls back a policy's one candidate once it has
``min_feedback`` rows with feedback, by the online guard's test
(:func:`mlserve.online.guard.no_worse`), and writes why in the audit log.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sqlalchemy import select

from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.monitoring.live import live_metrics
from mlserve.online.guard import no_worse
from mlserve.registry import service as registry
from mlserve.registry.traffic import policy_versions
from mlserve.security import audit
from mlserve.store.orm import ModelAlias, ModelVersion, PredictionLog, as_utc
from mlserve.training.metrics import PRIMARY_METRIC

log = logging.getLogger(__name__)
RULE_ROUTE = "auto-promotion rule"


def compare(ctx: Context, name: str, alias: str, window: int) -> dict[str, Any]:
    """The comparison of an alias's versions.

    Parameters
    ----------
    window : int
        Rows: of logged requests per version (agreement) and of feedback (live metrics).

    Returns
    -------
    dict
        ``model_name``, ``alias``, ``primary``, ``policy``, ``since`` (when the policy was
        set), ``window``, ``metric`` (the key live metric), and ``versions``: per version
        ``version``, ``role`` (primary, candidate, shadow), ``weight`` (share of live
        requests), ``requests``, ``errors``, ``dropped``, ``latency_p50_ms``,
        ``latency_p99_ms``, ``agreement`` ({``rows``, ``label_agreement`` or
        ``mean_abs_difference``}) and ``live`` (live metrics).

    Raises
    ------
    NotFound
        Unknown model or alias.
    """
    pointer = registry.get_alias(ctx, name, alias)
    policy = pointer.policy
    numbers = policy_versions(pointer.version, policy)
    rows = {n: registry.get_version(ctx, name, n) for n in numbers}
    primary = rows[pointer.version]
    counters = {(c["version"], c["role"]): c for c in ctx.traffic.snapshot(name)}
    versions = []
    for number in numbers:
        role, weight = _role(number, pointer)
        stats = counters.get((number, "shadow" if role == "shadow" else "live"), {})
        versions.append(
            {
                "version": number,
                "role": role,
                "weight": weight,
                "requests": stats.get("requests", 0),
                "errors": stats.get("errors", 0),
                "dropped": stats.get("dropped", 0),
                "latency_p50_ms": stats.get("latency_p50_ms"),
                "latency_p99_ms": stats.get("latency_p99_ms"),
                "agreement": agreement(ctx, primary, rows[number], pointer, window),
                "live": live_metrics(ctx, name, number, window),
            }
        )
    return {
        "model_name": name,
        "alias": alias,
        "primary": pointer.version,
        "policy": policy,
        "since": as_utc(pointer.updated_at),
        "window": window,
        "task": primary.task,
        "metric": PRIMARY_METRIC[primary.task],
        "versions": versions,
    }


def _role(number: int, pointer: ModelAlias) -> tuple[str, float]:
    policy = pointer.policy
    if policy is None or number == pointer.version:
        taken = sum(arm["weight"] for arm in policy["split"]) if policy else 0.0
        return "primary", max(0.0, 1.0 - taken)
    for arm in policy["split"]:
        if arm["version"] == number:
            return "candidate", arm["weight"]
    return "shadow", 0.0


def agreement(
    ctx: Context, primary: ModelVersion, row: ModelVersion, pointer: ModelAlias, window: int
) -> dict[str, Any]:
    """Agreement of ``row`` with ``primary`` on ``row``'s logged requests since the policy.

    Returns
    -------
    dict
        ``rows`` compared, and ``label_agreement`` (share of equal labels,
        classification) or ``mean_abs_difference`` (regression); ``None`` without rows.
    """
    key = "label_agreement" if primary.task == "classification" else "mean_abs_difference"
    if row.version == primary.version:
        return {"rows": 0, key: None}
    with ctx.db.session() as session:
        query = (
            select(PredictionLog.features, PredictionLog.predictions)
            .where(
                PredictionLog.model_name == row.model_name,
                PredictionLog.version == row.version,
                PredictionLog.at >= pointer.updated_at,
            )
            .order_by(PredictionLog.at.desc())
        )
        logged = []
        taken = 0
        for features, predictions in session.execute(query.execution_options(yield_per=200)):
            logged.append((features, predictions))
            taken += len(predictions)
            if taken >= window:
                break
    model = ctx.models.get(primary)
    theirs: list[Any] = []
    ours: list[Any] = []
    for features, predictions in logged:
        try:
            columns = model.validator.columns_from_inputs(features)
        except MlserveError:  # a request the primary's signature refuses: not comparable
            continue
        answered, _ = model.predict(columns, len(predictions))
        ours.extend(np.asarray(answered).tolist())
        theirs.extend(predictions)
    if not ours:
        return {"rows": 0, key: None}
    if primary.task == "classification":
        value = float(np.mean([str(a) == str(b) for a, b in zip(ours, theirs, strict=True)]))
    else:
        value = float(np.mean(np.abs(np.asarray(ours, float) - np.asarray(theirs, float))))
    return {"rows": len(ours), key: value}


def apply_rules(ctx: Context) -> int:
    """Promote or roll back every policy whose automatic rule can decide; return how many.

    A policy with ``auto`` and one candidate decides once the candidate has
    ``min_feedback`` rows with feedback: promoted when its key live metric (RMSE or
    accuracy on its most recent ``min_feedback`` rows with feedback) is no worse than
    the primary's on its own most recent rows by ``tolerance`` (relative, the online
    guard's :func:`~mlserve.online.guard.no_worse`), else the policy is removed. The
    decision and its figures are written to the audit log (route
    :data:`RULE_ROUTE`, no key).
    """
    with ctx.db.session() as session:
        pointers = [
            p for p in session.scalars(select(ModelAlias)) if p.policy and "auto" in p.policy
        ]
    decided = 0
    for pointer in pointers:
        try:
            decided += _apply_rule(ctx, pointer)
        except MlserveError as exc:
            log.warning("rule of %s/%s skipped: %s", pointer.model_name, pointer.alias, exc.message)
    return decided


def _apply_rule(ctx: Context, pointer: ModelAlias) -> int:
    policy = pointer.policy
    assert policy is not None and "auto" in policy
    rule = policy["auto"]
    candidate = policy_versions(pointer.version, policy)[1]
    name, window = pointer.model_name, rule["min_feedback"]
    theirs = live_metrics(ctx, name, candidate, window)
    if theirs["n_samples"] < window:
        return 0
    ours = live_metrics(ctx, name, pointer.version, window)
    task = registry.get_version(ctx, name, pointer.version).task
    metric = PRIMARY_METRIC[task]
    value = (theirs["metrics"] or {}).get(metric)
    base = (ours["metrics"] or {}).get(metric)
    if value is None:
        return 0
    passed = base is None or no_worse(metric, value, base, rule["tolerance"])
    if passed:
        registry.promote(ctx, name, pointer.alias, candidate)
        action = f"promoted v{candidate}"
    else:
        registry.set_alias(ctx, name, pointer.alias, pointer.version, None)
        action = f"rolled back v{candidate}"
    reason = (
        f"{name}/{pointer.alias}: {action}: {metric} {value:.6g} on {theirs['n_samples']} rows "
        f"vs primary v{pointer.version} {base if base is None else f'{base:.6g}'}"
        f" on {ours['n_samples']}, tolerance {rule['tolerance']}"
    )
    audit.record(
        ctx,
        key_prefix=None,
        remote_addr=None,
        method="AUTO",
        route=RULE_ROUTE,
        object_id=reason,
        status=200,
    )
    log.info("traffic rule: %s", reason)
    return 1
