"""Prequential (test-then-train) error of the sample stream, without waiting for feedback.

A sample arrives labelled: before any update learns it, the version that was live when it
arrived (``sample.live_version``, the one its sender was served) predicts it, and the
error is counted. The update that consumes the samples does it (:func:`score`) and stores
the sums with its version (``online.prequential``); :func:`summary` adds them up per
scoring version and per update (the window of the stream it consumed, with its arrival
times), and cumulatively. This is the standard evaluation of stream learners: A. P.
Dawid, "Present position and potential developments: some personal views. Statistical
theory: the prequential approach", JRSS A 147(2), 1984; J. Gama, R. Sebastião, P. P.
Rodrigues, "On evaluating stream learning algorithms", Machine Learning 90:317-346,
2013; River's ``evaluate.progressive_val_score``.

RMSE for regression (sums of squared errors), accuracy for classification (counts of
correct predictions).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from mlserve.online.frames import samples_frame, samples_target
from mlserve.store.documents import Prequential, PrequentialScore
from mlserve.store.orm import ModelVersion, Sample, as_utc

Loader = Callable[[int], tuple[ModelVersion, Pipeline]]


def _value(metric: str, total: float, n_samples: int) -> float | None:
    if n_samples == 0:
        return None
    return math.sqrt(total / n_samples) if metric == "rmse" else total / n_samples


def score(rows: list[Sample], parent: ModelVersion, load: Loader) -> Prequential:
    """Test-then-train error of ``rows``, each predicted by its ``live_version``.

    Parameters
    ----------
    rows : list of Sample
        The samples an update consumes, in id order (none learned yet).
    parent : ModelVersion
        The update's parent: it scores samples without a recorded live version, or
        whose live version is of another task.
    load : callable
        Version number -> (its row, its pipeline).
    """
    task = parent.task
    metric = "rmse" if task == "regression" else "accuracy"
    groups: dict[int, list[Sample]] = {}
    for row in rows:
        groups.setdefault(row.live_version or parent.version, []).append(row)
    by_version: list[PrequentialScore] = []
    for number in sorted(groups):
        version, pipeline = load(number)
        if version.task != task:
            version, pipeline = load(parent.version)
        members = groups[number]
        with warnings.catch_warnings():  # unseen categories encode as all zeros
            warnings.filterwarnings("ignore", message=".*unknown categories.*")
            predicted = pipeline.predict(samples_frame(members, version.signature))
        truth = samples_target(members, task)
        if task == "regression":
            total = float(np.sum((np.asarray(predicted, np.float64) - truth) ** 2))
        else:
            total = float(np.sum(np.asarray(predicted, dtype=object) == truth))
        by_version.append(_entry(metric, number, total, len(members)))
    total = sum(e["total"] for e in by_version)
    return {
        "metric": metric,
        "n_samples": len(rows),
        "total": total,
        "value": _value(metric, total, len(rows)),
        "received_from": as_utc(rows[0].received_at).isoformat(),
        "received_to": as_utc(rows[-1].received_at).isoformat(),
        "by_version": by_version,
    }


def _entry(metric: str, version: int, total: float, n_samples: int) -> PrequentialScore:
    return {
        "version": version,
        "n_samples": n_samples,
        "total": total,
        "value": _value(metric, total, n_samples),
    }


def summary(versions: list[ModelVersion]) -> dict[str, Any] | None:
    """The prequential error of a model's stream so far, from its online versions.

    Returns
    -------
    dict or None
        ``metric``, ``n_samples``, ``value`` (all scored samples); ``by_version``: per
        version that scored (the live one); ``by_update``: per update in sample order,
        the samples it consumed (``first_sample_id``, ``last_sample_id``,
        ``received_from``, ``received_to``), their error ``value`` and the
        ``cumulative`` error of the stream up to them. None before any update scored.
    """
    made = sorted(
        (v for v in versions if v.online and "prequential" in v.online),
        key=lambda v: v.online["first_sample_id"] if v.online else 0,
    )
    if not made:
        return None
    metric = made[0].online["prequential"]["metric"] if made[0].online else "rmse"
    per_version: dict[int, list[float]] = {}
    by_update: list[dict[str, Any]] = []
    total, count = 0.0, 0
    for version in made:
        lineage = version.online
        assert lineage is not None
        scored = lineage["prequential"]
        total, count = total + scored["total"], count + scored["n_samples"]
        for entry in scored["by_version"]:
            sums = per_version.setdefault(entry["version"], [0.0, 0])
            sums[0], sums[1] = sums[0] + entry["total"], sums[1] + entry["n_samples"]
        by_update.append(
            {
                "version": version.version,
                "first_sample_id": lineage["first_sample_id"],
                "last_sample_id": lineage["last_sample_id"],
                "received_from": scored["received_from"],
                "received_to": scored["received_to"],
                "n_samples": scored["n_samples"],
                "value": scored["value"],
                "scored_by": [e["version"] for e in scored["by_version"]],
                "cumulative": _value(metric, total, count),
            }
        )
    return {
        "metric": metric,
        "n_samples": count,
        "value": _value(metric, total, count),
        "by_version": [
            _entry(metric, number, sums[0], int(sums[1]))
            for number, sums in sorted(per_version.items())
        ],
        "by_update": by_update,
    }
