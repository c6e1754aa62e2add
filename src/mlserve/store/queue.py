"""The job queue: Huey with JSON messages, and the named tasks mlserve runs on it.

The queue holds task names and one string argument (a job id, a model name); the
work's spec and state live in SQL. Storage is SQLite (embedded, ``<home>/queue.db``)
unless ``queue_url`` is ``redis://...``; ``jobs_immediate`` runs each task inside the
call that queues it (tests and scripts). What a task does is set by the composition
root (:func:`mlserve.bootstrap.build_context`) with :meth:`JobQueue.handle`, so
this module, at the bottom of the import graph, knows no service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.registry import Message
from huey.serializer import Serializer

from mlserve.settings import Settings

IMMEDIATE_WORKER_ID = "immediate"
TRAIN = "mlserve.train"
ONLINE_UPDATE = "mlserve.online_update"
TASKS = (TRAIN, ONLINE_UPDATE)
Handler = Callable[[str], None]


class JsonSerializer(Serializer):
    """Huey messages as JSON instead of pickle.

    Huey pickles messages by default; anyone able to write to the queue
    storage (a shared Redis) could then run code in every worker. mlserve's
    messages carry only a task name and a job id, so JSON is enough, and a
    planted message is at worst an unknown job id.
    """

    _DATETIMES = ("eta", "expires_resolved")

    def _serialize(self, data: Any) -> bytes:
        if isinstance(data, Message):
            return orjson.dumps({"message": data._asdict()})
        return orjson.dumps({"data": data})

    def _deserialize(self, data: bytes) -> Any:
        body = orjson.loads(data)
        if "message" not in body:
            return body["data"]
        fields = body["message"]
        for key in self._DATETIMES:
            if fields.get(key) is not None:
                fields[key] = datetime.fromisoformat(fields[key]).replace(tzinfo=None)
        fields["args"] = tuple(fields.get("args") or ())
        return Message(**fields)


class NoHandler(RuntimeError):
    """A task ran in a process that set no handler for it."""


class JobQueue:
    """A Huey instance with mlserve's tasks registered on it.

    Parameters
    ----------
    huey : Huey
        Storage and consumer (see :func:`open_queue`).

    Attributes
    ----------
    worker_id : str
        Read when a task runs: a worker sets it once it knows its own id; tasks run
        in the requesting process (``jobs_immediate``) report ``"immediate"``.
    """

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.worker_id = IMMEDIATE_WORKER_ID
        self.before_task: Callable[[], None] | None = None
        self._handlers: dict[str, Handler] = {}
        self._tasks: dict[str, TaskWrapper] = {
            name: huey.task(name=name, retries=0)(self._runner(name)) for name in TASKS
        }

    def _runner(self, name: str) -> Handler:
        def run(argument: str) -> None:
            handler = self._handlers.get(name)
            if handler is None:
                raise NoHandler(f"no handler for task {name!r} in this process")
            if self.before_task is not None:
                self.before_task()
            handler(argument)

        run.__name__ = name.replace(".", "_")
        return run

    def handle(self, name: str, handler: Handler) -> None:
        """Run ``handler(argument)`` for task ``name`` (one of :data:`TASKS`)."""
        if name not in self._tasks:
            raise ValueError(f"unknown task {name!r}")
        self._handlers[name] = handler

    def enqueue_training(self, job_id: str) -> None:
        """Queue the training job ``job_id`` (runs it at once in immediate mode)."""
        self._tasks[TRAIN](job_id)

    def enqueue_online_update(self, model_name: str) -> None:
        """Queue an online update of ``model_name`` (see :mod:`mlserve.online.update`)."""
        self._tasks[ONLINE_UPDATE](model_name)


def open_queue(settings: Settings) -> JobQueue:
    """The job queue ``settings`` describe (``queue_url``, ``jobs_immediate``).

    Raises
    ------
    ValueError
        A ``queue_url`` that is neither ``redis://`` (or ``rediss://``, ``unix://``)
        nor ``sqlite:///``.
    """
    url = settings.resolved_queue_url
    huey: Huey
    if settings.jobs_immediate:
        huey = MemoryHuey("mlserve", immediate=True, results=False, serializer=JsonSerializer())
    elif url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey("mlserve", url=url, results=False, serializer=JsonSerializer())
    elif url.startswith("sqlite:///"):
        huey = SqliteHuey(
            "mlserve",
            filename=url.removeprefix("sqlite:///"),
            results=False,
            serializer=JsonSerializer(),
        )
    else:
        raise ValueError(f"unsupported queue_url {url!r}: use redis://... or sqlite:///...")
    return JobQueue(huey)
