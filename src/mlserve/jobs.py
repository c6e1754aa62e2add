"""Training jobs: submit, queue (Huey), execute, inspect.

The queue holds job ids only; the job's spec and state live in SQL. Storage is
SQLite (embedded, ``<home>/queue.db``) unless ``queue_url`` is ``redis://...``;
the same code runs in the service's embedded worker and in separate
``mlserve worker`` processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.registry import Message
from huey.serializer import Serializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mlserve import datasets, registry
from mlserve.context import Context
from mlserve.errors import MlserveError, NotFound, ServiceUnavailable, TooManyRequests
from mlserve.models import TrainingJob, utcnow
from mlserve.serving.compile import plan_serving
from mlserve.storage import StoredArtifact
from mlserve.training import TrainResult, TrainSpec, check_spec, train

log = logging.getLogger(__name__)
IMMEDIATE_WORKER_ID = "immediate"
ERROR_MAX_CHARS = 2000


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


@dataclass
class JobQueue:
    """A Huey instance and the training task registered on it.

    ``worker_id`` is read when a job runs, so a worker sets it once it knows
    its own id; jobs run in the requesting process report ``"immediate"``.
    """

    huey: Huey
    ctx: Context
    worker_id: str = IMMEDIATE_WORKER_ID

    def __post_init__(self) -> None:
        self._train: TaskWrapper = self.huey.task(name="mlserve.train", retries=0)(self._run)
        self._online: TaskWrapper = self.huey.task(name="mlserve.online_update", retries=0)(
            self._run_online
        )

    def _run(self, job_id: str) -> None:
        execute_job(self.ctx, job_id, self.worker_id)

    def _run_online(self, model_name: str) -> None:
        from mlserve.online_update import run_update_job

        run_update_job(self.ctx, model_name)

    def enqueue_online_update(self, model_name: str) -> None:
        """Queue an online update of ``model_name`` (see :mod:`mlserve.online_update`)."""
        self._online(model_name)

    def enqueue_training(self, job_id: str) -> None:
        """Queue the training job ``job_id`` (runs it at once in immediate mode)."""
        self._train(job_id)


def build_queue(ctx: Context) -> JobQueue:
    """Create the Huey instance for ``ctx.settings`` and register the ``train`` task."""
    settings = ctx.settings
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
    return JobQueue(huey=huey, ctx=ctx)


def submit_training_job(
    ctx: Context, spec: TrainSpec, key_prefix: str | None = None
) -> TrainingJob:
    """Check ``spec``, record a queued job and enqueue it.

    Parameters
    ----------
    key_prefix : str, optional
        The API key submitting it: at most ``max_jobs_in_flight_per_key`` of its
        jobs may be queued or running at once.

    Raises
    ------
    TooManyRequests
        The key already has ``max_jobs_in_flight_per_key`` jobs in flight.
    NotFound
        Unknown dataset.
    ValidationFailed
        Anything :func:`mlserve.training.check_spec` rejects.
    ServiceUnavailable
        If the queue cannot be reached (the job is then marked failed).
    """
    if key_prefix is not None:
        _check_in_flight(ctx, key_prefix)
    dataset = datasets.get_dataset(ctx, spec.dataset_id)
    task = check_spec(spec, dataset.n_rows, datasets.column_index(dataset))
    body = spec.model_dump()
    body["task"] = task
    job = TrainingJob(
        dataset_id=dataset.id, model_name=spec.model_name, spec=body, key_prefix=key_prefix
    )
    with ctx.db.session() as session:
        session.add(job)
    try:
        ctx.queue.enqueue_training(job.id)
    except Exception as exc:
        if ctx.settings.jobs_immediate:
            raise
        _finish(ctx, job.id, "failed", error="the job queue is unavailable")
        raise ServiceUnavailable("the job queue is unavailable") from exc
    return get_job(ctx, job.id)


def _check_in_flight(ctx: Context, key_prefix: str) -> None:
    limit = ctx.settings.max_jobs_in_flight_per_key
    with ctx.db.session() as session:
        in_flight = session.scalar(
            select(func.count())
            .select_from(TrainingJob)
            .where(
                TrainingJob.key_prefix == key_prefix,
                TrainingJob.status.in_(("queued", "running")),
            )
        )
    if (in_flight or 0) >= limit:
        raise TooManyRequests(
            f"this key has {in_flight} training jobs queued or running "
            f"(max_jobs_in_flight_per_key={limit}); wait for one to finish",
            {"limit": limit, "in_flight": in_flight, "retry_after_s": 5},
        )


def execute_job(ctx: Context, job_id: str, worker_id: str) -> None:
    """Run a queued job to the end: train, store the artifact, register the version.

    A job that is not ``queued`` (already run, or claimed by another worker) is
    left alone. On any error the job is marked ``failed`` with a readable
    message and no artifact or version remains.
    """
    if not _claim(ctx, job_id, worker_id):
        return
    written: list[StoredArtifact] = []
    try:
        job = get_job(ctx, job_id)
        spec = TrainSpec.model_validate({k: v for k, v in job.spec.items() if k != "task"})
        _progress(ctx, job_id, 0.02, "loading data")
        frame = datasets.read_frame(ctx, datasets.get_dataset(ctx, job.dataset_id))
        frame, samples_upto = _with_samples(ctx, job, spec, frame)
        result = train(frame, spec, job.spec["task"], lambda f, s: _progress(ctx, job_id, f, s))
        _progress(ctx, job_id, 0.9, "compiling")
        assert result.test_frame is not None
        plan = plan_serving(result.pipeline, result.signature, result.test_frame, ctx.settings)
        _progress(ctx, job_id, 0.95, "registering")
        written.append(registry.save_artifact(ctx, result.pipeline, artifact_key(job_id)))
        if plan.onnx is not None:
            written.append(ctx.store.put_bytes(onnx_artifact_key(job_id), plan.onnx))
        _register(ctx, job, spec, result, written, plan.serving, samples_upto)
    except Exception as exc:
        for artifact in written:
            ctx.store.delete(artifact.key)
        log.warning("training job %s failed: %s", job_id, exc)
        _finish(ctx, job_id, "failed", error=_readable(exc))


def artifact_key(job_id: str) -> str:
    """Artifact key of the model a job produces."""
    return f"models/{job_id}.skops"


def onnx_artifact_key(job_id: str) -> str:
    """Artifact key of the compiled (ONNX) model a job produces."""
    return f"models/{job_id}.onnx"


def _register(
    ctx: Context,
    job: TrainingJob,
    spec: TrainSpec,
    result: TrainResult,
    artifacts: list[StoredArtifact],
    serving: dict[str, Any],
    samples_upto: int | None = None,
) -> None:
    for attempt in range(5):
        try:
            with ctx.db.session() as session:
                version = registry.add_version(
                    session,
                    job.model_name,
                    result,
                    spec.algorithm,
                    artifacts[0],
                    job.dataset_id,
                    job.id,
                    serving=serving,
                    onnx_artifact=artifacts[1] if len(artifacts) > 1 else None,
                )
                row = session.get(TrainingJob, job.id)
                assert row is not None
                row.status, row.progress, row.stage = "succeeded", 1.0, "done"
                row.model_version, row.finished_at = version.version, utcnow()
                if samples_upto is not None:
                    _restart_online(session, job.model_name, version.version, samples_upto)
            ctx.resolver.invalidate()
            return
        except IntegrityError:  # another worker took the same version number
            if attempt == 4:
                raise


def _with_samples(
    ctx: Context, job: TrainingJob, spec: TrainSpec, frame: Any
) -> tuple[Any, int | None]:
    """The dataset plus the model's stored samples when the spec says so (a retrain).

    Returns the frame and the id of the last sample included (``None``: none asked).
    """
    if not spec.include_samples:
        return frame, None
    import pandas as pd

    from mlserve.models import Sample

    with ctx.db.session() as session:
        rows = list(
            session.scalars(
                select(Sample).where(Sample.model_name == job.model_name).order_by(Sample.id)
            )
        )
    if not rows:
        return frame, 0
    added = pd.DataFrame.from_records([row.features for row in rows])
    added[spec.target] = [row.target for row in rows]
    return pd.concat([frame, added], ignore_index=True), rows[-1].id


def _restart_online(session: Any, name: str, version: int, cursor: int) -> None:
    """A retrained version becomes the online head; the samples it saw count as applied."""
    from mlserve.models import OnlineState

    state = session.get(OnlineState, name, with_for_update=True)
    if state is None:
        session.add(OnlineState(model_name=name, version=version, cursor=cursor))
        return
    state.version, state.cursor = version, max(state.cursor, cursor)
    state.updated_at, state.last_error = utcnow(), None


def _claim(ctx: Context, job_id: str, worker_id: str) -> bool:
    with ctx.db.session() as session:
        job = session.get(TrainingJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            return False
        job.status, job.stage, job.worker_id, job.started_at = (
            "running",
            "starting",
            worker_id,
            utcnow(),
        )
        return True


def _progress(ctx: Context, job_id: str, fraction: float, stage: str) -> None:
    with ctx.db.session() as session:
        job = session.get(TrainingJob, job_id)
        if job is not None and job.status == "running":
            job.progress = round(max(job.progress, min(fraction, 1.0)), 4)
            job.stage = stage[:64]


def _finish(ctx: Context, job_id: str, status: str, error: str | None = None) -> None:
    with ctx.db.session() as session:
        job = session.get(TrainingJob, job_id)
        if job is not None:
            job.status, job.error, job.finished_at = status, error, utcnow()
            job.stage = "done" if status == "succeeded" else "failed"


def _readable(exc: Exception) -> str:
    if isinstance(exc, MlserveError):
        return exc.message[:ERROR_MAX_CHARS]
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def find_job(ctx: Context, job_id: str) -> TrainingJob | None:
    """Return the job ``job_id`` or ``None``."""
    with ctx.db.session() as session:
        return session.get(TrainingJob, job_id)


def get_job(ctx: Context, job_id: str) -> TrainingJob:
    """Return the job ``job_id``.

    Raises
    ------
    NotFound
    """
    job = find_job(ctx, job_id)
    if job is None:
        raise NotFound.of("training job", job_id)
    return job


def list_jobs(ctx: Context, limit: int = 100, offset: int = 0) -> list[TrainingJob]:
    """Jobs, newest first."""
    with ctx.db.session() as session:
        query = select(TrainingJob).order_by(TrainingJob.created_at.desc())
        return list(session.scalars(query.limit(limit).offset(offset)))


def job_view(job: TrainingJob) -> dict[str, Any]:
    """JSON-ready view of a job."""
    return {
        "id": job.id,
        "dataset_id": job.dataset_id,
        "model_name": job.model_name,
        "status": job.status,
        "progress": job.progress,
        "stage": job.stage,
        "error": job.error,
        "model_version": job.model_version,
        "spec": job.spec,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
