"""Prediction logging off the request path: sampled, queued, written by a background thread.

A request that is logged costs a random draw and a ``put_nowait`` on a bounded
in-process queue (:class:`queue.Queue`); converting the inputs and outputs to
JSON and inserting them happens in the writer thread, in batches gathered for
at most :data:`LINGER_S` (one transaction per batch: commits, not rows, are what
cost most with SQLite). When the
queue is full the entry is dropped and counted (``dropped``), never waited for:
logging must not slow predictions (bench/prediction_log.py measures it). What is
still queued when the process exits normally is written first (at most 2 s); a
killed process loses it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import threading
import time
import weakref
from typing import Any

import numpy as np
from sqlalchemy import JSON, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from mlserve.store.database import Database
from mlserve.store.jsoncodec import dumps
from mlserve.store.orm import PredictionLog, utcnow
from mlserve.training.signature import to_json_scalar

MAX_WINDOW = 100_000
"""The most recent rows a live-metrics or drift window reads (``window`` query parameter)."""

log = logging.getLogger(__name__)
BATCH_ROWS = 2000  # requests per insert at most
LINGER_S = 0.25  # how long the writer gathers requests before one insert, seconds
IDLE_WAIT_S = 1.0

Entry = tuple[str, str, int, Any, Any, np.ndarray, Any, "str | None"]


class PredictionLogger:
    """The process's prediction log writer.

    Parameters
    ----------
    db : Database
        Where the writer thread inserts the logged requests.
    sample_rate : float
        Fraction of requests logged, in [0, 1].
    queue_size : int
        Requests waiting to be written at most; beyond, new ones are dropped.

    Attributes
    ----------
    dropped, written : int
        Requests dropped because the queue was full, and requests written.
    """

    def __init__(self, *, db: Database, sample_rate: float, queue_size: int) -> None:
        self._db = db
        self.sample_rate = sample_rate
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.failed = 0

    def submit(
        self,
        prediction_id: str,
        model_name: str,
        version: int,
        *,
        instances: Any,
        inputs: Any,
        predictions: np.ndarray,
        shadow_of: str | None = None,
    ) -> bool:
        """Queue one request for logging if sampled; return whether it was queued.

        ``shadow_of``: the answer of a shadow version to the logged live request of that
        id (:mod:`mlserve.serving.shadow`), logged without a draw of its own.
        """
        if shadow_of is None and self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return False
        entry = (
            prediction_id,
            model_name,
            version,
            instances,
            inputs,
            predictions,
            utcnow(),
            shadow_of,
        )
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            return False
        if self._thread is None:
            self._start()
        return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued entry is written (tests, shutdown); return whether it was."""
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
                    target=_write_loop,
                    args=(self._queue, weakref.ref(self)),
                    name="mlserve-prediction-log",
                    daemon=True,
                )
                self._thread.start()
                atexit.register(_flush_at_exit, weakref.ref(self))

    def write(self, entries: list[Entry]) -> None:
        """Insert ``entries`` in one transaction (the writer thread calls this)."""
        rows = [_row(entry) for entry in entries]
        try:
            with self._db.session() as session:  # one executemany, no ORM objects
                session.execute(INSERT, rows)
            self.written += len(rows)
        except Exception:  # the requests were answered; losing their log is logged
            self.failed += len(rows)
            log.exception("could not write %d prediction log entries", len(rows))


def _row(entry: Entry) -> dict[str, Any]:
    prediction_id, model_name, version, instances, inputs, predictions, at, shadow_of = entry
    if inputs is not None:
        features = {str(k): list(v) for k, v in inputs.items()}
    else:
        names = list(dict.fromkeys(k for row in instances for k in row))
        features = {name: [row.get(name) for row in instances] for name in names}
    values = [to_json_scalar(v) for v in np.asarray(predictions).tolist()]
    return {
        "id": prediction_id,
        "model_name": model_name,
        "version": version,
        "n_rows": len(values),
        "features_json": dumps(features).decode(),
        "predictions_json": dumps(values).decode(),
        "at": at,
        "shadow_of": shadow_of,
    }


class _EncodedJSON(TypeDecorator[str]):
    """A JSON column's value bound as the JSON text it already is (no second encoding).

    The dialect's JSON type is kept for the SQL (PostgreSQL's psycopg dialect casts the
    parameter to ``JSON``); only the Python-side ``json.dumps`` is skipped, since the
    writer encodes with orjson, several times faster on the rows a batch logs.
    """

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


INSERT = insert(PredictionLog).values(
    features=bindparam("features_json", type_=_EncodedJSON()),
    predictions=bindparam("predictions_json", type_=_EncodedJSON()),
)


def _flush_at_exit(ref: weakref.ref[PredictionLogger]) -> None:
    """Write what is queued when the process exits normally (at most 2 s)."""
    logger = ref()
    if logger is not None:
        logger.flush(2.0)


def _write_loop(entries: queue.Queue[Entry], ref: weakref.ref[PredictionLogger]) -> None:
    """Write queued entries in batches until the logger is garbage-collected.

    After the first entry of a batch the thread sleeps :data:`LINGER_S` and then
    drains the queue, rather than waiting on it entry by entry: a waiting thread is
    woken (and takes the interpreter lock) by every ``put``, which costs the request
    threads more than the write itself. A full batch is followed at once by the next.
    """
    full = False
    while True:
        try:
            first = entries.get(timeout=IDLE_WAIT_S)
        except queue.Empty:
            if ref() is None:
                return
            continue
        if not full:
            time.sleep(LINGER_S)  # one transaction per batch, not per request
        batch = [first]
        while len(batch) < BATCH_ROWS:
            try:
                batch.append(entries.get_nowait())
            except queue.Empty:
                break
        full = len(batch) >= BATCH_ROWS
        logger = ref()
        try:
            if logger is not None:
                logger.write(batch)
        finally:
            for _ in batch:
                entries.task_done()
        del logger
