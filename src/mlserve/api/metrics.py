"""``GET /metrics``: Prometheus exposition (prometheus_client) of live metrics and drift.

For the version each model serves by default (``production``, else latest):
live metrics on the most recent ``live_metrics_window`` rows with feedback,
PSI and KS per feature of the most recent logged inputs, and the samples
waiting for an online update; plus this process's prediction log counters.
Values computed from the database are reused for ``metrics_cache_s`` seconds.
Without ``public_metrics`` the endpoint needs the ``read`` permission.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlserve import monitoring, online, registry
from mlserve.api.security import METRICS, requires
from mlserve.context import Context
from mlserve.errors import MlserveError

log = logging.getLogger(__name__)
bp = APIBlueprint("metrics", __name__, tag="monitoring")


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
        for model in registry.list_models(self.ctx):
            try:
                self._model(model.name, window, live, psi, ks, pending)
            except MlserveError as exc:
                log.warning("metrics of model %s skipped: %s", model.name, exc.message)
        return [live, psi, ks, pending]

    def _model(self, name: str, window: int, *families: GaugeMetricFamily) -> None:
        live, psi, ks, pending = families
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


def _registry() -> CollectorRegistry:
    extensions = current_app.extensions
    if "mlserve_prometheus" not in extensions:
        registry_ = CollectorRegistry(auto_describe=False)
        registry_.register(MlserveCollector(extensions["mlserve"]))
        extensions["mlserve_prometheus"] = registry_
    found: CollectorRegistry = extensions["mlserve_prometheus"]
    return found


@bp.get("/metrics")
@requires(METRICS)
@bp.doc(summary="Prometheus metrics: live metrics, drift, online learning, prediction log")
def prometheus() -> Response:
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)
