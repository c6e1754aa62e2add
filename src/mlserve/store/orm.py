"""ORM rows (SQLAlchemy 2 declarative, ``Mapped[...]``). Singular class names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from mlserve.store.documents import (
    ColumnSummary,
    CvMetrics,
    ImportInfo,
    Lineage,
    Memory,
    Metrics,
    ServingReport,
    Signature,
    TrafficPolicy,
    TrainingReport,
)


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime (SQLite returns naive values)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_id() -> str:
    """A server-generated identifier: 32 lowercase hex characters."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Dataset(Base):
    """An uploaded table, stored as Parquet in the artifact store."""

    __tablename__ = "dataset"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    source_format: Mapped[str] = mapped_column(String(16))
    n_rows: Mapped[int] = mapped_column(Integer)
    n_columns: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    artifact_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    columns: Mapped[list[ColumnSummary]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingJob(Base):
    """A background training run: queued -> running -> succeeded | failed."""

    __tablename__ = "training_job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("dataset.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(64), default="queued")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    model_version: Mapped[int | None] = mapped_column(Integer, default=None)
    worker_id: Mapped[str | None] = mapped_column(String(64), default=None)
    key_prefix: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    # Columns used and why, encodings, leaderboard (NULL for jobs before 0010).
    report: Mapped[TrainingReport | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class RegisteredModel(Base):
    """A named model; its versions are numbered 1, 2, 3... per name."""

    __tablename__ = "registered_model"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One trained pipeline of a registered model, with its metrics and lineage."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model_name", "version", name="uq_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("registered_model.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[Metrics] = mapped_column(JSON)
    cv_metrics: Mapped[CvMetrics] = mapped_column(JSON)
    signature: Mapped[Signature] = mapped_column(JSON)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("dataset.id"), default=None)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("training_job.id"), default=None)
    training_seconds: Mapped[float] = mapped_column(Float)
    artifact_key: Mapped[str] = mapped_column(String(255))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size_bytes: Mapped[int] = mapped_column(Integer)
    runtime: Mapped[str] = mapped_column(String(32), default="sklearn")
    serving: Mapped[ServingReport] = mapped_column(JSON, default=dict)
    onnx_artifact_key: Mapped[str | None] = mapped_column(String(255), default=None)
    onnx_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    onnx_size_bytes: Mapped[int | None] = mapped_column(Integer, default=None)
    corrupt_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The training job's report (:class:`TrainingReport`); NULL before 0011.
    report: Mapped[TrainingReport | None] = mapped_column(JSON(none_as_null=True), default=None)
    # "trained" (a training job or an online update) or "imported" (a model file uploaded
    # to POST /api/v1/models/{name}/versions, mlserve.serving.imports).
    source: Mapped[str] = mapped_column(String(16), default="trained", server_default="trained")
    # What an imported file states (format, producer, opset) and its tensor signature.
    imported: Mapped[ImportInfo | None] = mapped_column(JSON(none_as_null=True), default=None)
    # Plot data computed at training time or by an online update (see mlserve.training.evaluation);
    # deferred: only the evaluation endpoint reads it, listings never load it. None is
    # stored as SQL NULL (not JSON null) so that ``has_evaluation`` can test it.
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), default=None, deferred=True
    )
    # Online update lineage and guard decision (mlserve.online.policy); None for trained versions.
    online: Mapped[Lineage | None] = mapped_column(JSON, default=None)
    # Per-feature reference statistics for drift (mlserve.monitoring.drift); deferred too.
    reference: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), default=None, deferred=True
    )
    # What online updates remember: a trained version's kept rows, an online version's
    # reservoirs (mlserve.online.replay); deferred too.
    memory: Mapped[Memory | None] = mapped_column(
        JSON(none_as_null=True), default=None, deferred=True
    )
    # Whether those are recorded, loaded with the row without reading the JSON itself.
    has_evaluation: Mapped[bool] = column_property(evaluation.is_not(None))
    has_own_reference: Mapped[bool] = column_property(reference.is_not(None))

    @property
    def root_version(self) -> int:
        """The trained version this version's online lineage starts from (itself if trained)."""
        return self.online["root_version"] if self.online else self.version

    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """A movable name (``production``, ``staging``) pointing at one version."""

    __tablename__ = "model_alias"

    model_name: Mapped[str] = mapped_column(ForeignKey("registered_model.name"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    # A traffic policy (canary/split, shadow, automatic rule; mlserve.registry.traffic):
    # ``version`` is then the primary. None (SQL NULL): the alias is plain.
    policy: Mapped[TrafficPolicy | None] = mapped_column(JSON(none_as_null=True), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegistryState(Base):
    """One row whose ``generation`` grows with every registry change.

    Serving processes poll it (one cheap query per interval, not per request)
    to know when their cached alias and version lookups are stale.
    """

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key: only its public prefix and an HMAC-SHA256 of the whole key are stored."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hmac: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    # Raised by each sign-out: web sessions signed in at an older generation end.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditEvent(Base):
    """Who did what: one row per mutating request (and per key administration)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    key_prefix: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200))
    object: Mapped[str | None] = mapped_column(String(300), default=None)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))


class ClusterSetting(Base):
    """A value every process sharing the database must agree on (``secret_fingerprint``:
    see :mod:`mlserve.security.secret`); the first process to start writes it."""

    __tablename__ = "cluster_setting"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerHeartbeat(Base):
    """Last sign of life of a job worker process."""

    __tablename__ = "worker_heartbeat"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class OnlineUpdateRun(Base):
    """An online update in progress: the model, the worker running it, since when.

    Written by the worker when it starts an update of the model and deleted by it when
    the update ends (committed, lost the race, or failed with its error recorded). A
    row left by a worker whose heartbeat stopped (``kill -9``, a lost machine) becomes
    the model's online ``last_error`` (:func:`mlserve.jobs.heartbeat.recover_stale_jobs`).
    """

    __tablename__ = "online_update_run"

    model_name: Mapped[str] = mapped_column(ForeignKey("registered_model.name"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sample(Base):
    """A labelled sample posted for online learning; append-only, ``id`` is arrival order."""

    __tablename__ = "sample"
    __table_args__ = (Index("ix_sample_model_name_id", "model_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("registered_model.name"))
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    target: Mapped[Any] = mapped_column(JSON, nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    key_prefix: Mapped[str | None] = mapped_column(String(16), default=None)
    live_version: Mapped[int | None] = mapped_column(Integer, default=None)


class PredictionLog(Base):
    """A logged (sampled) prediction request, and the feedback given for it later."""

    __tablename__ = "prediction_log"
    __table_args__ = (
        Index("ix_prediction_log_model_at", "model_name", "at"),
        Index("ix_prediction_log_feedback", "model_name", "version", "feedback_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    predictions: Mapped[list[Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    feedback: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    feedback_at: Mapped[datetime | None] = mapped_column(default=None)
    # A shadow version's answer to the logged live request of this id (mlserve.serving.shadow):
    # feedback on the live request is copied to it. None for live answers.
    shadow_of: Mapped[str | None] = mapped_column(String(32), default=None, index=True)


class OnlineState(Base):
    """Where a model's online learning stands: the head version and the sample cursor.

    ``cursor`` is the id of the last sample applied to ``version`` (0: none). It
    moves only in the transaction that registers the version the samples produced.
    """

    __tablename__ = "online_state"

    model_name: Mapped[str] = mapped_column(ForeignKey("registered_model.name"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
