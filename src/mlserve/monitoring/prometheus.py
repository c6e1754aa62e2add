"""Prometheus exposition of live metrics, drift, online learning, the prediction log and
the requests, errors and latencies of every version served (traffic policies).

For the version each model serves by default (``production``, else latest):
live metrics on the most recent ``live_metrics_window`` rows with feedback,
PSI and KS per feature of the most recent logged inputs, and the samples
waiting for an online update; plus this process's prediction log counters.
Values computed from the database are reused for ``metrics_cache_s`` seconds.
Served at ``GET /metrics`` (:mod:`mlserve.api.metrics`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.monitoring import live as monitoring
from mlserve.online import policy as online
from mlserve.registry import service as registry

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Gauges:
    """The gauge families filled per model."""

    live: GaugeMetricFamily
    psi: GaugeMetricFamily
    ks: GaugeMetricFamily
    pending: GaugeMetricFamily


class MlserveCollector(Collector):
    """Collects mlserve's gauges from the database (cached) and the process counters."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = -float("inf")

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self.ctx.settings.metrics_cache_s:
                self._cached = self._from_database()
                self._at = time.monotonic()
            yield from self._cached
        logger = self.ctx.prediction_log
        for name, value, text in (
            ("mlserve_prediction_log_written", logger.written, "prediction requests logged"),
            ("mlserve_prediction_log_dropped", logger.dropped, "dropped: queue full"),
            ("mlserve_prediction_log_failed", logger.failed, "lost: database write failed"),
        ):
            yield CounterMetricFamily(name, f"{text} (this process)", value=value)
        yield from traffic_families(self.ctx)
        warnings = CounterMetricFamily(
            "mlserve_prediction_warnings",
            "prediction warnings per model: null_imputed, unseen_category (this process)",
            labels=["model", "warning"],
        )
        for (model, warning), count in sorted(self.ctx.prediction_warnings.items()):
            warnings.add_metric([model, warning], count)
        yield warnings

    def _from_database(self) -> list[Metric]:
        live = GaugeMetricFamily(
            "mlserve_live_metric",
            "metric of the served version on its most recent feedback",
            labels=["model", "version", "metric"],
        )
        psi = GaugeMetricFamily(
            "mlserve_drift_psi",
            "population stability index of recent inputs vs the training reference",
            labels=["model", "version", "feature"],
        )
        ks = GaugeMetricFamily(
            "mlserve_drift_ks_statistic",
            "two-sample Kolmogorov-Smirnov statistic of recent inputs vs the reference",
            labels=["model", "version", "feature"],
        )
        pending = GaugeMetricFamily(
            "mlserve_online_samples_pending",
            "stored samples not yet applied by an online update",
            labels=["model"],
        )
        window = self.ctx.settings.live_metrics_window
        families = Gauges(live=live, psi=psi, ks=ks, pending=pending)
        for model in registry.list_models(self.ctx):
            try:
                self._model(model.name, window, families)
            except MlserveError as exc:
                log.warning("metrics of model %s skipped: %s", model.name, exc.message)
        return [live, psi, ks, pending]

    def _model(self, name: str, window: int, families: Gauges) -> None:
        live, psi, ks, pending = families.live, families.psi, families.ks, families.pending
        version = registry.resolve(self.ctx, name).version
        labels = [name, str(version)]
        pending.add_metric([name], online.pending_count(self.ctx, name))
        measured = monitoring.live_metrics(self.ctx, name, version, window)["metrics"] or {}
        for key, value in measured.items():
            if isinstance(value, int | float) and key != "n_samples":
                live.add_metric([*labels, key], float(value))
        try:
            report: dict[str, Any] = monitoring.drift(
                self.ctx, name, version, window, "predictions"
            )
        except MlserveError:
            return  # no reference statistics
        if not report["enough_rows"]:
            return
        for feature, values in report["features"].items():
            if values.get("psi") is not None:
                psi.add_metric([*labels, feature], values["psi"])
            if values.get("ks_statistic") is not None:
                ks.add_metric([*labels, feature], values["ks_statistic"])


def traffic_families(ctx: Context) -> list[Metric]:
    """Per model version and role (live, shadow), this process: requests, errors, shadow
    drops and latency p50/p99 (:mod:`mlserve.serving.traffic_stats`)."""
    labels = ["model", "version", "role"]
    requests = CounterMetricFamily(
        "mlserve_version_requests", "requests answered or failed (this process)", labels=labels
    )
    errors = CounterMetricFamily(
        "mlserve_version_errors", "requests the version failed (this process)", labels=labels
    )
    dropped = CounterMetricFamily(
        "mlserve_shadow_dropped",
        "shadow requests dropped: queue full (this process)",
        labels=labels,
    )
    latency = GaugeMetricFamily(
        "mlserve_version_latency_seconds",
        "latency quantile over the most recent requests (this process)",
        labels=[*labels, "quantile"],
    )
    for entry in ctx.traffic.snapshot():
        values = [str(entry["model"]), str(entry["version"]), str(entry["role"])]
        requests.add_metric(values, entry["requests"])
        errors.add_metric(values, entry["errors"])
        if entry["role"] == "shadow":
            dropped.add_metric(values, entry["dropped"])
        for quantile, key in (("0.5", "latency_p50_ms"), ("0.99", "latency_p99_ms")):
            if entry[key] is not None:
                latency.add_metric([*values, quantile], entry[key] / 1000)
    return [requests, errors, dropped, latency]


def build_registry(ctx: Context) -> CollectorRegistry:
    """A Prometheus registry holding one :class:`MlserveCollector` for ``ctx``."""
    found = CollectorRegistry(auto_describe=False)
    found.register(MlserveCollector(ctx))
    return found
