"""One typed settings object for the whole service.

Every field can be set from the environment with the ``MLSERVE_`` prefix
(``MLSERVE_HOME``, ``MLSERVE_DATABASE_URL``, ...) or passed to
:func:`mlserve.create_app` as keyword overrides. Units are part of the names.

The variables that Heroku-style platforms set (``DATABASE_URL``, ``REDIS_URL``,
``PORT``) fill the settings they mean when no ``MLSERVE_*`` variable sets them
(:class:`PlatformEnvironment`; docs/deployment.md).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PLATFORM_VARIABLES: dict[str, tuple[str, ...]] = {
    "DATABASE_URL": ("database_url",),
    "REDIS_URL": ("queue_url", "rate_limit_storage_url"),
    "PORT": ("port",),
}
"""Platform variable -> the settings it fills (below every ``MLSERVE_*`` variable)."""
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


class Settings(BaseSettings):
    """Configuration of an mlserve service, worker or command.

    Attributes
    ----------
    home : Path
        Data directory holding the SQLite database, the job queue and the
        artifact folder unless the URLs below point elsewhere.
    database_url : str or None
        SQLAlchemy URL; ``None`` means ``sqlite:///<home>/mlserve.db``.
    artifact_root : str or None
        Where dataset files and model artifacts live (a folder path or a
        ``file://`` URI); ``None`` means ``<home>/artifacts``.
    artifact_file_mode : str
        Permission bits of the artifact files a folder store writes, in octal
        (``"0600"``: the writing user only; ``"0640"`` or ``"0660"`` for machines
        sharing an NFS folder as different users of one group). The owner must
        keep read and write; nothing for others beyond read is accepted.
    queue_url : str or None
        Huey storage: ``None`` means SQLite at ``<home>/queue.db``; a
        ``redis://`` URL selects Redis storage.
    jobs_immediate : bool
        Run jobs synchronously inside the request (tests and scripts only).
    jobs_concurrency : int
        Jobs (training jobs, online updates) one worker process runs at once: ``mlserve
        worker`` and the embedded worker of ``mlserve serve`` (``mlserve worker
        --threads`` overrides it). Default: half the cores, at least 1
        (:func:`default_jobs_concurrency`). Each job's native thread pools (BLAS,
        OpenMP) get ``max(1, cores // jobs_concurrency)`` threads, so the jobs together
        never ask for more threads than there are cores
        (:func:`mlserve.jobs.threads.native_threads_per_job`).
    max_job_seconds : float
        Longest a training job may run, in seconds, counted from when a worker starts
        it. Past it the job stops at its next stage or cross-validation fold (as a
        cancelled one does) and fails with an error naming the limit; no version and
        no file remain. Generous by default (1 hour): it frees a worker from a runaway
        job, it does not police ordinary ones.
    host, port : str, int
        Where ``mlserve serve`` binds; loopback unless told otherwise.
    max_content_length_bytes : int
        Largest accepted request body, in bytes (uploads included; JSON bodies have
        ``max_json_body_bytes``); 413 above. 2 GiB: a CSV of 5 million rows of 370
        bytes goes through (docs/benchmarks.md, "Large uploads").
    max_batch_rows : int
        Most rows one prediction request may carry; 413 above.
    max_model_bytes : int
        Largest model file accepted by ``POST /api/v1/models/{name}/versions``, and
        largest tensor data an imported ONNX graph may declare, in bytes; 413 above.
    max_dataset_columns : int
        Most columns an uploaded dataset may have; 422 above.
    max_dataset_rows : int
        Most data rows an uploaded dataset may have (CSV rows counted while
        reading, Parquet rows from the footer and again while reading); 422 above.
    max_dataset_uncompressed_bytes : int
        Most bytes a Parquet upload may decode to (footer's uncompressed row
        group sizes, then the batches read); 422 above.
    dataset_batch_rows : int
        Rows of an upload parsed, stored and summarised at a time (one row group of
        the stored Parquet file each); an upload's memory grows with it, not with
        the file.
    max_training_memory_bytes : int
        Largest estimated design matrix (rows x encoded width x 8 bytes) a
        training job may ask for; 422 at submit time above.
    model_cache_size : int
        Loaded model versions kept in memory per process (LRU).
    preload_alias : str
        Each HTTP worker loads the versions behind every alias of this name as it
        starts, in the background; ``/ready`` answers 503 until they are loaded
        (:mod:`mlserve.serving.preload`). Empty: versions load on first use only.
    worker_heartbeat_interval_s, worker_heartbeat_timeout_s : float
        How often a worker records that it is alive, and after how long
        without a heartbeat its running jobs are declared failed (seconds).
    job_poll_interval_s : float
        Longest idle wait between two polls of the queue by a worker (seconds).
    model_refresh_interval_ms : int
        How often each serving process checks the registry for alias and
        version changes, in milliseconds (0: never; changes made by the
        process itself apply at once).
    batching : {"auto", "on", "off"}
        Micro-batching of concurrent predictions: ``auto`` follows the
        calibration recorded with each version.
    max_batch_size : int
        Most rows in one micro-batch (also the batch size calibrated).
    max_batch_wait_ms : float
        Longest wait of the first request of a micro-batch, in milliseconds.
    batching_min_single_row_ms : float
        Calibration threshold: below this single-row latency, in milliseconds,
        batching is never enabled.
    auth : bool
        Require an API key on every route but ``/health`` and ``/ready`` (and the
        API docs if ``public_docs``). ``False`` is for local experiments and is
        refused by ``mlserve serve`` on a non-loopback address.
    secret_key : str or None
        Server secret keying the HMAC of stored API keys. Unset: generated once
        into ``<home>/secret_key`` (mode 600). Every process sharing a database
        needs the same value.
    auth_cache_ttl_s : float
        How long a process trusts a key it has checked before reading it again,
        in seconds: the delay for a revocation to reach other processes.
    public_docs : bool
        Serve ``/docs`` and ``/openapi.json`` without a key.
    session_cookie_secure : bool
        Mark the web UI's session cookie ``Secure`` (sent over HTTPS only); turn
        it on whenever the UI is reached through TLS.
    session_max_age_s : float
        Lifetime of a web UI sign-in, in seconds, counted from the sign-in (not
        renewed by use); the cookie expires then and the server refuses it after.
    bootstrap_admin_key : bool
        On the first start with no key at all, ``mlserve serve`` creates one
        admin key and prints it once.
    rate_limit_storage_url : str
        Where request counts live: ``memory://`` (per process) or a ``redis://``
        URL shared by every process.
    rate_limit_per_key, rate_limit_per_ip : str
        Requests allowed per API key and per client address (``"1000/second"``,
        ``"50 per minute"``; ``off`` for none); 429 with ``Retry-After`` above.
    rate_limit_auth_failures_per_ip : str
        Requests with a missing or invalid key allowed per address; above it,
        every request from that address gets 429 until the window ends.
    max_jobs_in_flight_per_key : int
        Training jobs one key may have queued or running at once; 429 above.
    max_json_body_bytes : int
        Largest JSON request body, in bytes (uploads have
        ``max_content_length_bytes``); 413 above.
    server : {"gunicorn", "granian"}
        WSGI server of ``mlserve serve``.
    graceful_timeout_s : int
        After ``SIGTERM`` or ``SIGINT``, how long ``mlserve serve`` lets its HTTP
        workers finish the requests in flight before killing them, in seconds
        (gunicorn's ``graceful_timeout``, granian's ``workers_kill_timeout``).
    access_log : bool
        Log one line per request to stderr. Off by default, as in granian and
        gunicorn: on one-row predictions the line cost about a fifth of the
        serving process's Python time (docs/benchmarks.md, "Serving at the floor");
        ``mlserve_version_requests_total`` counts predictions and the audit log
        records every change without it.
    log_level : str
        Python logging level name.
    migrate_on_start : bool
        Apply migrations when the app is built (SQLite only); ``mlserve serve``
        migrates once before starting its workers and turns this off for them.
    online_update_every_samples : int
        Online learning policy: queue an update once this many samples beyond the
        guard window are waiting (see docs/online-learning.md).
    online_update_every_s : float
        ... or once the oldest waiting sample is this many seconds old (checked when
        samples arrive and by the worker's housekeeping); 0 turns the timer off.
    online_guard_window_samples : int
        The most recent waiting samples held out of an update to judge it (the guard).
    online_guard_tolerance : float
        How much worse than ``production`` a new version may be on the guard window
        and still become ``production``, as a fraction of production's metric
        (0.02: 2 % higher RMSE, or accuracy 2 % lower).
    online_max_samples_per_update : int
        Most samples one update applies (rows); the rest wait for the next one.
    online_replay_reservoir_rows : int
        Rows of the replay reservoir (Algorithm R, Vitter 1985) each update mixes with
        its new samples: at first a sample of the training split, then of the training
        split and every learned sample alike. Kept with the trained version: a change
        applies to versions trained afterwards (a retrain). 0 turns replay off.
    online_replay_passes : int
        Passes of ``partial_fit`` over an update's mix (new samples + reservoir), each in
        a seeded random order.
    online_holdout_fraction : float
        Fraction of samples, chosen by a hash of the seed and the sample id, never learned
        and kept for the guard's older set, in [0, 0.5]; 0 turns the older set off.
    online_holdout_reservoir_rows : int
        Rows of the reservoir of held-out samples the guard judges on (the older set);
        kept with the trained version, as the replay reservoir.
    online_guard_test_rows : int
        Most rows of the test split a trained version keeps for the guard (a seeded
        sample); 0: the guard does not judge on the test split.
    online_guard_min_rows : int
        A guard set with fewer rows is not judged (it neither passes nor fails).
    prediction_log_sample_rate : float
        Fraction of prediction requests logged (inputs and outputs) for feedback,
        live metrics and drift, in [0, 1]. Feedback can only be given for logged
        requests. Measured on 1-row requests (bench/prediction_log.py, requests per
        CPU-second, 2026-12-06): 0.1 costs 0-5 %, 1.0 about 20 % (25-29 % before the
        writer encoded with orjson).
    prediction_log_queue_size : int
        Logged predictions waiting for the background writer (requests); when it
        is full, new ones are dropped and counted, never waited for.
    live_metrics_window : int
        Default sliding window of live metrics and drift: the most recent rows.
    public_metrics : bool
        Serve the Prometheus ``/metrics`` without a key (else it needs ``read``).
    metrics_cache_s : float
        How long ``/metrics`` reuses the live metrics and drift it computed from
        the database, in seconds.
    trusted_proxies : str
        Reverse proxies in front of the service whose ``X-Forwarded-For`` is
        believed: empty (the default) trusts none, a number ``n`` trusts the last
        ``n`` hops, a comma-separated list of addresses or networks trusts those
        peers (see :mod:`mlserve.api.proxy`). Limits, lockouts and the audit log
        count the client address it yields.
    auth_outage_grace_s : float
        While the database is unreachable, a key this process verified within
        this many seconds keeps working (predictions go on from loaded models);
        0 refuses every key once its ``auth_cache_ttl_s`` has passed. The
        trade-off: a key revoked just before the outage works that much longer
        here.
    torch_device : {"cpu", "auto", "cuda"}
        Where training jobs fit the ``torch_mlp`` networks (clients cannot choose):
        ``cpu`` (the default: at the default batch size a GPU is slower, 412 against
        256 ms per epoch of 16,512 rows on an H200 box, and CPU fits are reproducible
        across machines), ``auto`` (CUDA when torch sees a GPU, else CPU) or ``cuda``.
        Versions record the device they trained on; they are served on the CPU.
    shadow_queue_size : int
        Shadow requests (copies of live requests for an alias's shadow versions,
        docs/traffic.md) waiting for the shadow thread; when full, new ones are dropped
        and counted, never waited for.
    traffic_latency_window : int
        Latencies kept per model version and role (live, shadow) in each process for
        the p50/p99 of the comparison page and ``/metrics`` (most recent requests).
    explain_max_rows : int
        Rows one ``POST .../explain`` may ask for (413 beyond), docs/explain.md.
    explain_budget_s : float
        Time one explanation request may take, in seconds; a sampling explainer
        that would exceed it is refused (422) before it starts, rows answered so far
        stop there.
    """

    model_config = SettingsConfigDict(env_prefix="MLSERVE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path("mlserve-data"))
    database_url: str | None = None
    artifact_root: str | None = None
    artifact_file_mode: str = "0600"
    queue_url: str | None = None
    jobs_immediate: bool = False
    jobs_concurrency: int = Field(default_factory=lambda: default_jobs_concurrency(), ge=1, le=64)
    max_job_seconds: float = Field(default=3600.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_content_length_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)
    max_batch_rows: int = Field(default=10_000, gt=0)
    max_model_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_dataset_columns: int = Field(default=1_000, gt=0)
    max_dataset_rows: int = Field(default=5_000_000, gt=0)
    max_dataset_uncompressed_bytes: int = Field(default=4 * 1024 * 1024 * 1024, gt=0)
    dataset_batch_rows: int = Field(default=100_000, gt=0)
    max_training_memory_bytes: int = Field(default=4 * 1024**3, gt=0)
    model_cache_size: int = Field(default=16, gt=0)
    preload_alias: str = Field(default="production", max_length=64)
    worker_heartbeat_interval_s: float = Field(default=2.0, gt=0)
    worker_heartbeat_timeout_s: float = Field(default=10.0, gt=0)
    job_poll_interval_s: float = Field(default=1.0, gt=0)
    model_refresh_interval_ms: int = Field(default=250, ge=0)
    batching: Literal["auto", "on", "off"] = "auto"
    max_batch_size: int = Field(default=32, ge=2)
    max_batch_wait_ms: float = Field(default=2.0, gt=0, le=1000)
    batching_min_single_row_ms: float = Field(default=0.5, ge=0)
    auth: bool = True
    secret_key: SecretStr | None = None
    auth_cache_ttl_s: float = Field(default=5.0, ge=0)
    public_docs: bool = True
    session_cookie_secure: bool = False
    session_max_age_s: float = Field(default=8 * 3600, gt=0, le=366 * 86400)
    bootstrap_admin_key: bool = True
    rate_limit_storage_url: str = "memory://"
    rate_limit_per_key: str = "1000/second"
    rate_limit_per_ip: str = "1000/second"
    rate_limit_auth_failures_per_ip: str = "60/minute"
    max_jobs_in_flight_per_key: int = Field(default=4, gt=0)
    max_json_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    server: Literal["gunicorn", "granian"] = "granian"
    graceful_timeout_s: int = Field(default=10, ge=1, le=1800)
    access_log: bool = False
    log_level: str = "INFO"
    migrate_on_start: bool = True
    online_update_every_samples: int = Field(default=500, gt=0)
    online_update_every_s: float = Field(default=300.0, ge=0)
    online_guard_window_samples: int = Field(default=500, gt=0)
    online_guard_tolerance: float = Field(default=0.02, ge=0)
    online_max_samples_per_update: int = Field(default=50_000, gt=0)
    online_replay_reservoir_rows: int = Field(default=4_000, ge=0, le=1_000_000)
    online_replay_passes: int = Field(default=3, ge=1, le=100)
    online_holdout_fraction: float = Field(default=0.1, ge=0, le=0.5)
    online_holdout_reservoir_rows: int = Field(default=1_000, ge=0, le=1_000_000)
    online_guard_test_rows: int = Field(default=5_000, ge=0, le=1_000_000)
    online_guard_min_rows: int = Field(default=100, ge=1)
    prediction_log_sample_rate: float = Field(default=0.1, ge=0, le=1)
    prediction_log_queue_size: int = Field(default=10_000, gt=0)
    live_metrics_window: int = Field(default=1_000, gt=0, le=100_000)
    public_metrics: bool = False
    metrics_cache_s: float = Field(default=15.0, ge=0)
    trusted_proxies: str = ""
    auth_outage_grace_s: float = Field(default=300.0, ge=0)
    torch_device: Literal["cpu", "auto", "cuda"] = "cpu"
    shadow_queue_size: int = Field(default=1_000, gt=0)
    traffic_latency_window: int = Field(default=10_000, gt=0, le=1_000_000)
    explain_max_rows: int = Field(default=100, gt=0, le=10_000)
    explain_budget_s: float = Field(default=10.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_count_or_addresses(cls, text: str) -> str:
        """A hop count, or comma-separated addresses or networks (``ipaddress``)."""
        text = text.strip()
        if text and not text.isdigit():
            for part in text.split(","):
                ipaddress.ip_network(part.strip(), strict=False)
        return text

    @field_validator("artifact_file_mode")
    @classmethod
    def _octal_file_mode(cls, text: str) -> str:
        """Octal permission bits, owner read-write, no write or execute for anyone else."""
        try:
            mode = int(text.strip().removeprefix("0o"), 8)
        except ValueError:
            raise ValueError(f"not an octal file mode: {text!r}") from None
        if mode & 0o600 != 0o600 or mode & ~0o664:
            raise ValueError(f"file mode {text!r}: the owner reads and writes, others at most read")
        return f"0{mode:o}"

    @property
    def artifact_file_mode_bits(self) -> int:
        """:attr:`artifact_file_mode` as an integer (``0o640``)."""
        return int(self.artifact_file_mode, 8)

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_postgres_url(cls, url: str | None) -> str | None:
        """``postgres://`` (Heroku) and ``postgresql://`` select psycopg 3, mlserve's driver."""
        if url is not None and url.startswith(POSTGRES_SCHEMES):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword overrides, then ``MLSERVE_*`` variables, then the platform's."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            PlatformEnvironment(settings_cls),
        )

    @property
    def resolved_database_url(self) -> str:
        """SQLAlchemy URL in force (the explicit one, else SQLite under ``home``)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'mlserve.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> str:
        """Artifact store location in force (explicit, else ``home/artifacts``)."""
        if self.artifact_root:
            return self.artifact_root
        return str((self.home / "artifacts").resolve())

    @property
    def resolved_queue_url(self) -> str:
        """Job queue storage in force: ``redis://...`` or ``sqlite:///...``."""
        if self.queue_url:
            return self.queue_url
        return f"sqlite:///{(self.home / 'queue.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the metadata database is SQLite (migrated automatically at start)."""
        return self.resolved_database_url.startswith("sqlite")


def default_jobs_concurrency(cores: int | None = None) -> int:
    """Default :attr:`Settings.jobs_concurrency`: ``max(1, cores // 2)``.

    Half the cores: every job then gets at least two native threads (a boosted model
    or a large matrix product uses them), the HTTP workers of ``mlserve serve`` on the
    same machine keep some room, and a queue of small jobs still runs several at once.

    Parameters
    ----------
    cores : int, optional
        Default: ``os.cpu_count()`` (1 when unknown).
    """
    cores = cores if cores is not None else os.cpu_count() or 1
    return max(1, cores // 2)


def platform_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings filled by the platform variables of ``environ`` (:data:`PLATFORM_VARIABLES`).

    Parameters
    ----------
    environ : mapping
        Environment variables (``os.environ``).

    Returns
    -------
    dict
        Field name -> raw value, for the variables set and not empty.
    """
    values: dict[str, Any] = {}
    for variable, fields in PLATFORM_VARIABLES.items():
        value = environ.get(variable, "").strip()
        if value:
            values.update(dict.fromkeys(fields, value))
    return values


class PlatformEnvironment(PydanticBaseSettingsSource):
    """A settings source (pydantic-settings' ``PydanticBaseSettingsSource``) reading the
    variables of Heroku-style platforms: ``DATABASE_URL``, ``REDIS_URL`` (the job
    queue and the rate-limit counters) and ``PORT``. It ranks below every other
    source, so an ``MLSERVE_*`` variable always wins."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads every variable at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The platform's values for the fields they fill."""
        return platform_values(os.environ)
