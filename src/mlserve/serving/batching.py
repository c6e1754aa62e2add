"""Adaptive micro-batching: concurrent requests to one model predicted as one batch.

Request threads hand their validated columns to the model's :class:`MicroBatcher`
and wait. One thread per batcher takes the first waiting request, gathers others
until the batch holds ``max_batch_rows`` rows or ``max_batch_wait_ms`` has passed
since that first request arrived, predicts once on the concatenated columns and
hands each request its slice. A request alone waits at most ``max_batch_wait_ms``.

This is the dynamic batching of NVIDIA Triton and TF Serving's batching
scheduler (max batch size, batch timeout), enabled per model version only where
:func:`mlserve.serving.runtime.calibrate` measured that it pays.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from concurrent.futures import Future

import numpy as np

from mlserve.serving.runtime import Outputs, Runtime
from mlserve.serving.validation import Columns

log = logging.getLogger(__name__)
_Item = tuple[Columns, int, "Future[Outputs]"]
IDLE_CHECK_S = 1.0  # how often an idle batcher thread checks whether its batcher is gone


class MicroBatcher:
    """Batch concurrent predictions for one runtime.

    Parameters
    ----------
    runtime : Runtime
    max_batch_rows : int
        Most rows predicted in one call (requests larger than this bypass the
        batcher and are predicted alone).
    max_batch_wait_ms : float
        Longest time the first request of a batch waits for others, in milliseconds.
    """

    def __init__(self, runtime: Runtime, max_batch_rows: int, max_batch_wait_ms: float) -> None:
        self.runtime = runtime
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_batch_wait_ms / 1000
        self.batches = 0
        self.requests = 0
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next: _Item | None = None  # taken from the queue but over the row limit

    def predict(self, columns: Columns, n_rows: int) -> Outputs:
        """Predict ``columns`` (``n_rows`` rows), batched with concurrent calls.

        Raises
        ------
        Exception
            Whatever the runtime raised for the batch this call was part of.
        """
        if n_rows >= self.max_batch_rows:
            return self.runtime.predict(columns)
        future: Future[Outputs] = Future()
        self._ensure_thread()
        self._queue.put((columns, n_rows, future))
        return future.result()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=_serve,
                    args=(weakref.ref(self), self._queue),
                    name="mlserve-batcher",
                    daemon=True,
                )
                self._thread.start()

    def _gather(self, first: _Item) -> list[_Item]:
        """``first`` and the requests that arrive within the wait, up to the row limit.

        A request that would take the batch over ``max_batch_rows`` is kept for
        the next batch.
        """
        items = [first]
        rows = first[1]
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch_rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if rows + item[1] > self.max_batch_rows:
                self._next = item
                break
            items.append(item)
            rows += item[1]
        return items

    def _take(self, timeout_s: float) -> _Item:
        """The next request: one held back by :meth:`_gather`, else from the queue.

        Raises
        ------
        queue.Empty
            Nothing arrived within ``timeout_s`` seconds.
        """
        item, self._next = self._next, None
        return item if item is not None else self._queue.get(timeout=timeout_s)

    def _run(self, items: list[_Item]) -> None:
        self.batches += 1
        self.requests += len(items)
        try:
            if len(items) == 1:
                items[0][2].set_result(self.runtime.predict(items[0][0]))
                return
            names = list(items[0][0])
            merged = {name: np.concatenate([item[0][name] for item in items]) for name in names}
            predictions, probabilities = self.runtime.predict(merged)
        except Exception as exc:  # every waiting request gets the error
            for item in items:
                item[2].set_exception(exc)
            return
        start = 0
        for _columns, n_rows, future in items:
            end = start + n_rows
            proba = probabilities[start:end] if probabilities is not None else None
            future.set_result((predictions[start:end], proba))
            start = end


def _serve(ref: weakref.ref[MicroBatcher], items: queue.SimpleQueue[_Item]) -> None:
    """Batcher thread: ends once its batcher is garbage-collected."""
    while True:
        batcher = ref()
        if batcher is None:
            return
        try:
            first = batcher._take(IDLE_CHECK_S) if batcher._next else None
        finally:
            del batcher
        if first is None:
            try:
                first = items.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                continue
        batcher = ref()
        if batcher is None:
            first[2].set_exception(RuntimeError("model unloaded"))
            return
        batcher._run(batcher._gather(first))
        del batcher
