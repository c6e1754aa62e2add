"""Drive a stream scenario over HTTP: train version 1, post the stream in batches, measure.

Used by the acceptance tests (tests/online/test_ordered_streams.py) and by
bench/online_stream.py, which prints the figures of docs/online-learning.md. Everything
goes through the REST API of an app with ``jobs_immediate`` (each update runs inside the
request that posts the samples that make it due): upload, train, ``POST /samples``,
``GET .../versions``, ``GET .../online``, ``POST .../predict?version=``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from flask.testing import FlaskClient

PREDICT_CHUNK = 5_000


@dataclass(kw_only=True)
class Scenario:
    """Version 1 trained on ``first``, then ``stream`` posted in batches of ``batch``."""

    model: str
    algorithm: str
    target: str
    first: pd.DataFrame
    stream: pd.DataFrame
    batch: int
    random_state: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class StreamRun:
    """What happened, measured on the whole stream (the second half) and on arrivals.

    ``score[v]``: version ``v``'s metric (RMSE or accuracy) on the whole stream;
    ``production[k]`` / ``arrived[k]``: the version ``production`` pointed at and the rows
    posted after batch ``k``; ``on_arrived[k]``: (production, version 1) on those rows.
    """

    metric: str
    versions: list[dict[str, Any]]
    state: dict[str, Any]
    production: list[int]
    arrived: list[int]
    score: dict[int, float]
    on_arrived: list[tuple[float, float]]

    @property
    def v1(self) -> float:
        return self.score[1]

    @property
    def final(self) -> float:
        return self.score[self.production[-1]]

    def relative(self, value: float, reference: float | None = None) -> float:
        """``value`` against ``reference`` (version 1's) as the guard compares them: the
        relative rise of the RMSE, or the relative fall of the accuracy (negative: better)."""
        base = self.v1 if reference is None else reference
        return value / base - 1 if self.metric == "rmse" else 1 - value / base

    def error_change(self, value: float) -> float:
        """``value`` against version 1 as a relative change of the error (RMSE, or 1 -
        accuracy; -0.05: 5 % lower)."""
        if self.metric == "rmse":
            return value / self.v1 - 1
        return (1 - value) / (1 - self.v1) - 1

    def worst(self) -> float:
        """Production's worst figure on the whole stream, over the stream."""
        scores = [self.score[v] for v in self.production]
        return max(scores) if self.metric == "rmse" else min(scores)

    def worst_on_arrived(self, moved: bool = False) -> float:
        """Production against version 1 on the rows arrived so far, at its worst over the
        stream (:meth:`relative`: compare with the guard's tolerance); ``moved``: only
        while production is not version 1 (nan if it never moved)."""
        pairs = zip(self.production, self.on_arrived, strict=True)
        changes = [self.relative(p, v) for version, (p, v) in pairs if version > 1 or not moved]
        return max(changes) if changes else float("nan")


def rows_of(frame: pd.DataFrame, target: str) -> list[dict[str, Any]]:
    """Instances as JSON objects (missing values as null)."""
    features = frame.drop(columns=[target])
    rows: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict(orient="records")
    )
    return rows


def predict(client: FlaskClient, scenario: Scenario, version: int) -> np.ndarray:
    """``version``'s predictions of the whole stream, in arrival order."""
    out: list[Any] = []
    frame = scenario.stream
    for start in range(0, len(frame), PREDICT_CHUNK):
        chunk = rows_of(frame.iloc[start : start + PREDICT_CHUNK], scenario.target)
        response = client.post(
            f"/api/v1/models/{scenario.model}/predict?version={version}",
            json={"instances": chunk},
        )
        assert response.status_code == 200, response.get_json()
        out.extend(response.get_json()["predictions"])
    return np.asarray(out)


def metric_of(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "rmse":
        return float(np.sqrt(np.mean((predicted.astype(float) - truth.astype(float)) ** 2)))
    return float(np.mean(predicted == truth))


def train_first(client: FlaskClient, scenario: Scenario) -> dict[str, Any]:
    """Upload ``first`` and train version 1 (no cross-validation)."""
    data = scenario.first.to_csv(index=False).encode()
    dataset = client.post(
        "/api/v1/datasets",
        data={"file": (io.BytesIO(data), "first.csv")},
        content_type="multipart/form-data",
    ).get_json()
    job = client.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset["id"],
            "target": scenario.target,
            "algorithm": scenario.algorithm,
            "model_name": scenario.model,
            "cv_folds": 0,
            "random_state": scenario.random_state,
            "params": scenario.params,
        },
    ).get_json()
    assert job["status"] == "succeeded", job
    return dict(job)


def run_stream(client: FlaskClient, scenario: Scenario) -> StreamRun:
    """Train version 1, post the stream batch by batch, then score every version that was
    ever ``production`` (and every online version) on the whole stream."""
    train_first(client, scenario)
    model = f"/api/v1/models/{scenario.model}"
    production: list[int] = []
    arrived: list[int] = []
    stream = scenario.stream
    for start in range(0, len(stream), scenario.batch):
        batch = stream.iloc[start : start + scenario.batch]
        response = client.post(
            f"{model}/samples",
            json={
                "instances": rows_of(batch, scenario.target),
                "targets": batch[scenario.target].tolist(),
            },
        )
        assert response.status_code == 201, response.get_json()
        production.append(client.get(model).get_json()["aliases"].get("production", 1))
        arrived.append(start + len(batch))
    versions = client.get(f"{model}/versions").get_json()["versions"]
    task = versions[-1]["task"]
    metric = "rmse" if task == "regression" else "accuracy"
    truth = stream[scenario.target].to_numpy()
    predicted = {v["version"]: predict(client, scenario, v["version"]) for v in versions}
    score = {v: metric_of(metric, truth, p) for v, p in predicted.items()}
    on_arrived = [
        (
            metric_of(metric, truth[:n], predicted[p][:n]),
            metric_of(metric, truth[:n], predicted[1][:n]),
        )
        for p, n in zip(production, arrived, strict=True)
    ]
    return StreamRun(
        metric=metric,
        versions=sorted((v for v in versions if v["online"]), key=lambda v: v["version"]),
        state=client.get(f"{model}/online").get_json(),
        production=production,
        arrived=arrived,
        score=score,
        on_arrived=on_arrived,
    )


def table(run: StreamRun) -> str:
    """One line per online version: samples, guard sets (candidate/production, ! failed),
    decision, and production's figure on the whole stream afterwards."""
    lines = [f"v1 {run.v1:.6g}"]
    for version in run.versions:
        lineage = version["online"]
        sets = " ".join(
            f"{s['name'].split()[0]}:{s['candidate']:.5g}/{s['production']:.5g}"
            + ("" if s["passed"] else "!")
            for s in lineage["guard"].get("sets", [])
            if s["judged"]
        )
        preq = lineage.get("prequential", {}).get("value")
        lines.append(
            f"v{version['version']:<3} samples {lineage['first_sample_id']}-"
            f"{lineage['last_sample_id']} held {lineage.get('n_held_out')} "
            f"preq {preq:.5g} {lineage['status']:<10} whole {run.score[version['version']]:.6g}"
            f" ({run.relative(run.score[version['version']]):+.1%}) | {sets}"
        )
    lines.append(
        f"final production v{run.production[-1]} {run.final:.6g} ({run.relative(run.final):+.1%};"
        f" error {run.error_change(run.final):+.1%}),"
        f" worst production {run.worst():.6g} ({run.relative(run.worst()):+.1%}),"
        f" worst on arrived {run.worst_on_arrived():+.1%}"
        f" (once moved: {run.worst_on_arrived(moved=True):+.1%}),"
        f" passed {sum(v['online']['status'] == 'production' for v in run.versions)}"
        f"/{len(run.versions)}"
    )
    return "\n".join(lines)
