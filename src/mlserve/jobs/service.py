"""Training jobs: submit, execute, inspect.

The queue (:mod:`mlserve.store.queue`) holds job ids only; the job's spec and state
live in SQL. The same code runs in the service's embedded worker and in separate
``mlserve worker`` processes.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from mlserve.context import Context
from mlserve.datasets import service as datasets
from mlserve.errors import MlserveError, NotFound, ServiceUnavailable, TooManyRequests
from mlserve.jobs.cancel import Deadline, JobCancelled
from mlserve.jobs.online_support import keep_memory, restart_online, with_samples
from mlserve.registry import service as registry
from mlserve.serving.compile import plan_serving
from mlserve.store.artifacts import StoredArtifact
from mlserve.store.database import update_where
from mlserve.store.documents import LeaderboardEntry, Memory, ServingReport, TrainingReport
from mlserve.store.orm import TrainingJob, utcnow
from mlserve.training import auto
from mlserve.training.catalogue import AUTO
from mlserve.training.columns import choose_features
from mlserve.training.fit import Progress, TrainResult, add_extras, train
from mlserve.training.preprocessing import check_design_matrix
from mlserve.training.spec import TrainSpec, check_spec

log = logging.getLogger(__name__)
ERROR_MAX_CHARS = 2000


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
        Anything :func:`mlserve.training.fit.check_spec` rejects, or encoded
        training data estimated above ``max_training_memory_bytes``
        (:func:`mlserve.training.preprocessing.check_design_matrix`).
    ServiceUnavailable
        If the queue cannot be reached (the job is then marked failed).
    """
    if key_prefix is not None:
        _check_in_flight(ctx, key_prefix)
    dataset = datasets.get_dataset(ctx, spec.dataset_id)
    columns = datasets.column_index(dataset)
    task = check_spec(spec, dataset.n_rows, columns)
    features, decisions = choose_features(
        columns, target=spec.target, features=spec.features, n_rows=dataset.n_rows
    )
    classes = int(columns[spec.target]["unique"]) if task == "classification" else 1
    check_design_matrix(
        dataset.n_rows,
        columns,
        features,
        ctx.settings.max_training_memory_bytes,
        target_classes=classes,
    )
    body = spec.model_dump()
    body["task"] = task
    job = TrainingJob(
        dataset_id=dataset.id,
        model_name=spec.model_name,
        spec=body,
        key_prefix=key_prefix,
        report={"columns": decisions},
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
    message and no artifact or version remains; so is a job still running after
    ``max_job_seconds`` at a stage or fold boundary (:class:`mlserve.jobs.cancel.Deadline`).
    """
    if not _claim(ctx, job_id, worker_id):
        return
    deadline = Deadline(ctx.settings.max_job_seconds)

    def report(fraction: float, stage: str) -> None:
        _progress(ctx, job_id, fraction, stage)
        deadline.check(stage)

    written: list[StoredArtifact] = []
    try:
        job = get_job(ctx, job_id)
        spec = TrainSpec.model_validate({k: v for k, v in job.spec.items() if k != "task"})
        report(0.02, "loading data")
        dataset = datasets.get_dataset(ctx, job.dataset_id)
        features, _ = choose_features(
            datasets.column_index(dataset),
            target=spec.target,
            features=spec.features,
            n_rows=dataset.n_rows,
        )
        spec = spec.model_copy(update={"features": features})
        frame = datasets.read_frame(ctx, dataset)
        frame, samples_upto = with_samples(ctx, job, spec, frame)
        server_params = {"device": ctx.settings.torch_device}
        progress: Progress = report  # also stops the job past max_job_seconds
        choice = None
        if spec.algorithm == AUTO:
            choice = auto.choose(frame, spec, job.spec["task"], progress, server_params)
            _keep_leaderboard(ctx, job_id, choice.leaderboard)
            spec = spec.model_copy(update={"algorithm": choice.algorithm, "params": choice.params})
            start = auto.SELECTION_END
            progress = lambda f, s: report(start + (1 - start) * f, s)  # noqa: E731
        result = train(
            frame,
            spec,
            job.spec["task"],
            progress,
            server_params=server_params,
            cv_metrics=choice.cv_metrics if choice is not None else None,
            extras=False,
        )
        progress(0.87, "compiling")
        assert result.test_frame is not None
        plan = plan_serving(result.pipeline, result.signature, result.test_frame, ctx.settings)
        add_extras(result, spec, progress, predict=plan.predict)
        report(0.95, "registering")
        written.append(registry.save_artifact(ctx, result.pipeline, artifact_key(job_id)))
        if plan.onnx is not None:
            written.append(ctx.store.put_bytes(onnx_artifact_key(job_id), plan.onnx))
        memory = keep_memory(ctx, job, spec, result, written)
        _register(
            ctx,
            job,
            algorithm=spec.algorithm,
            leaderboard=choice.leaderboard if choice is not None else None,
            result=result,
            artifacts=written,
            serving=plan.serving,
            cursor=samples_upto,
            memory=memory,
        )
    except JobCancelled:
        for artifact in written:
            ctx.store.delete(artifact.key)
        log.info("training job %s cancelled", job_id)
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
    *,
    algorithm: str,
    result: TrainResult,
    artifacts: list[StoredArtifact],
    serving: ServingReport,
    cursor: int | None = None,
    memory: Memory | None = None,
    leaderboard: list[LeaderboardEntry] | None = None,
) -> None:
    """Register the version and mark the job succeeded in one transaction (``algorithm``:
    the one trained, ``auto``'s choice; ``cursor``: the last stored sample a retrain
    included, which becomes the online cursor; ``memory``: see :func:`_keep_rows`;
    ``leaderboard``: ``algorithm: "auto"`` only)."""
    report = _final_report(job, result)
    if leaderboard is not None:
        report["leaderboard"] = leaderboard
    for attempt in range(5):
        try:
            with ctx.db.session() as session:
                version = registry.add_version(
                    session,
                    job.model_name,
                    result=result,
                    algorithm=algorithm,
                    artifact=artifacts[0],
                    dataset_id=job.dataset_id,
                    job_id=job.id,
                    serving=serving,
                    onnx_artifact=next((a for a in artifacts if a.key.endswith(".onnx")), None),
                    memory=memory,
                    report=report,
                )
                row = session.get(TrainingJob, job.id, with_for_update=True)
                assert row is not None
                if row.status == "cancelled":  # rolls the version back
                    raise JobCancelled
                row.status, row.progress, row.stage = "succeeded", 1.0, "done"
                row.model_version, row.finished_at = version.version, utcnow()
                row.report = report
                if cursor is not None:
                    restart_online(session, job.model_name, version.version, cursor)
            ctx.resolver.invalidate(job.model_name)
            return
        except IntegrityError:  # another worker took the same version number
            if attempt == 4:
                raise


def _final_report(job: TrainingJob, result: TrainResult) -> TrainingReport:
    """The job's report (columns decided at submit time) with the fitted encodings."""
    report: TrainingReport = dict(job.report or {"columns": []})  # type: ignore[assignment]
    if result.encoding is not None:
        report["encoding"] = result.encoding
    return report


def _keep_leaderboard(ctx: Context, job_id: str, leaderboard: list[LeaderboardEntry]) -> None:
    """Show an ``auto`` job's leaderboard as soon as it is decided (before the final fit)."""
    with ctx.db.session() as session:
        row = session.get(TrainingJob, job_id)
        if row is not None:
            report: TrainingReport = dict(row.report or {"columns": []})  # type: ignore[assignment]
            report["leaderboard"] = leaderboard
            row.report = report


def _claim(ctx: Context, job_id: str, worker_id: str) -> bool:
    """Mark a ``queued`` job ``running`` for ``worker_id``; return whether this call did.

    One conditional ``UPDATE``: of two claims of the same job (a task delivered twice),
    exactly one wins, on SQLite too (where ``SELECT ... FOR UPDATE`` locks nothing).
    """
    with ctx.db.session() as session:
        claimed = update_where(
            session,
            TrainingJob,
            TrainingJob.id == job_id,
            TrainingJob.status == "queued",
            status="running",
            stage="starting",
            worker_id=worker_id,
            started_at=utcnow(),
        )
        return claimed == 1


def _progress(ctx: Context, job_id: str, fraction: float, stage: str) -> None:
    """Record progress; raise :class:`JobCancelled` once the job is cancelled.

    One conditional ``UPDATE ... WHERE status = 'running'``: a cancel committed
    while the report was on its way is never overwritten (a read, then a write,
    left the stage of a job cancelled in between at that report's stage).
    """
    progress = round(min(fraction, 1.0), 4)
    with ctx.db.session() as session:
        updated = update_where(
            session,
            TrainingJob,
            TrainingJob.id == job_id,
            TrainingJob.status == "running",
            progress=case((TrainingJob.progress < progress, progress), else_=TrainingJob.progress),
            stage=stage[:64],
        )
        if updated == 0:
            status = session.scalar(select(TrainingJob.status).where(TrainingJob.id == job_id))
            if status == "cancelled":
                raise JobCancelled


def _finish(ctx: Context, job_id: str, status: str, error: str | None = None) -> None:
    with ctx.db.session() as session:  # one UPDATE: a cancel committed meanwhile stays
        update_where(
            session,
            TrainingJob,
            TrainingJob.id == job_id,
            TrainingJob.status != "cancelled",
            status=status,
            error=error,
            finished_at=utcnow(),
            stage="done" if status == "succeeded" else "failed",
        )


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
        "report": job.report,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
