"""Shadow requests: copies of live requests answered off the request path, never returned.

An alias's traffic policy may name shadow versions (:mod:`mlserve.registry.traffic`).
The request path puts one job per shadow version on a bounded in-process queue with
``put_nowait`` and returns; when the queue is full the job is dropped and counted
(:meth:`mlserve.serving.traffic_stats.TrafficStats.drop`), never waited for. One daemon
thread per process validates and predicts each job with the shadow version, counts it
(requests, errors, latency, role ``shadow``) and, when the live request was logged,
logs the shadow answer with ``shadow_of`` the live prediction id, so feedback on the
live prediction scores the shadow version too (:func:`mlserve.monitoring.live.record_feedback`).
A failure of the shadow version (an exception, an input its signature refuses) is
logged and counted, and never reaches the client.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import weakref
from typing import Any

from mlserve.context import ModelCache, PredictionLog
from mlserve.serving.predict import answer
from mlserve.serving.traffic_stats import TrafficStats
from mlserve.store.orm import ModelVersion

log = logging.getLogger(__name__)
IDLE_WAIT_S = 1.0

Job = tuple[ModelVersion, Any, Any, "str | None"]


class ShadowRunner:
    """The process's shadow queue and its thread.

    Parameters
    ----------
    models : ModelCache
        Where shadow versions are loaded from.
    stats : TrafficStats
        Where shadow requests, errors, drops and latencies are counted.
    prediction_log : PredictionLog
        Where shadow answers of logged live requests are written.
    queue_size : int
        Jobs waiting at most; beyond, new ones are dropped and counted.

    Attributes
    ----------
    answered, failed, dropped : int
        Shadow jobs answered, failed (the version raised) and dropped (queue full).
    """

    def __init__(
        self,
        *,
        models: ModelCache,
        stats: TrafficStats,
        prediction_log: PredictionLog,
        queue_size: int,
    ) -> None:
        self._models = models
        self._stats = stats
        self._log = prediction_log
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.answered = 0
        self.failed = 0
        self.dropped = 0

    def submit(
        self,
        shadows: tuple[ModelVersion, ...],
        *,
        instances: Any,
        inputs: Any,
        logged_as: str | None,
    ) -> None:
        """Queue one job per shadow version; never blocks.

        Parameters
        ----------
        shadows : tuple of ModelVersion
        instances, inputs : list of dict or dict of list
            The live request's rows (one of the two), not yet validated for the shadows.
        logged_as : str or None
            The live prediction id if the live request was logged (the shadow answer is
            then logged too), else ``None``.
        """
        for row in shadows:
            try:
                self._queue.put_nowait((row, instances, inputs, logged_as))
            except queue.Full:
                self.dropped += 1
                self._stats.drop(row.model_name, row.version)
        if self._thread is None:
            self._start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued job is done (tests); return whether it was in time."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout_s)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=_run_loop,
                    args=(self._queue, weakref.ref(self)),
                    name="mlserve-shadow",
                    daemon=True,
                )
                self._thread.start()

    def run(self, job: Job) -> None:
        """Answer one shadow job (the shadow thread calls this); never raises."""
        row, instances, inputs, logged_as = job
        started = time.perf_counter()
        try:
            predictions, _ = answer(self._models.get(row), instances, inputs)
        except Exception as exc:
            self.failed += 1
            self._stats.record(row.model_name, row.version, role="shadow", seconds=0.0, ok=False)
            log.warning(
                "shadow version %s/%s failed: %s", row.model_name, row.version, exc, exc_info=True
            )
            return
        self._stats.record(
            row.model_name, row.version, role="shadow", seconds=time.perf_counter() - started
        )
        self.answered += 1
        if logged_as is not None:
            self._log.submit(
                uuid.uuid4().hex,
                row.model_name,
                row.version,
                instances=instances,
                inputs=inputs,
                predictions=predictions,
                shadow_of=logged_as,
            )


def _run_loop(jobs: queue.Queue[Job], ref: weakref.ref[ShadowRunner]) -> None:
    """Answer queued jobs until the runner is garbage-collected."""
    while True:
        try:
            job = jobs.get(timeout=IDLE_WAIT_S)
        except queue.Empty:
            if ref() is None:
                return
            continue
        runner = ref()
        try:
            if runner is not None:
                runner.run(job)
        finally:
            jobs.task_done()
        del runner
