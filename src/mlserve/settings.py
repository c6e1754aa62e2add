"""One typed settings object for the whole service.

Every field can be set from the environment with the ``MLSERVE_`` prefix
(``MLSERVE_HOME``, ``MLSERVE_DATABASE_URL``, ...) or passed to
:func:`mlserve.create_app` as keyword overrides. Units are part of the names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    queue_url : str or None
        Huey storage: ``None`` means SQLite at ``<home>/queue.db``; a
        ``redis://`` URL selects Redis storage.
    jobs_immediate : bool
        Run jobs synchronously inside the request (tests and scripts only).
    host, port : str, int
        Where ``mlserve serve`` binds; loopback unless told otherwise.
    max_content_length_bytes : int
        Largest accepted request body, in bytes (uploads included); 413 above.
    max_batch_rows : int
        Most rows one prediction request may carry; 413 above.
    max_dataset_columns : int
        Most columns an uploaded dataset may have; 422 above.
    model_cache_size : int
        Loaded model versions kept in memory per process (LRU).
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
    access_log : bool
        Log one line per request to stderr.
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
    prediction_log_sample_rate : float
        Fraction of prediction requests logged (inputs and outputs) for feedback,
        live metrics and drift, in [0, 1]. Feedback can only be given for logged
        requests. Measured on 1-row requests (bench/prediction_log.py): 0.1 costs
        3-4 % of the throughput, 1.0 about 13 % (29 % of the CPU).
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
    """

    model_config = SettingsConfigDict(env_prefix="MLSERVE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path("mlserve-data"))
    database_url: str | None = None
    artifact_root: str | None = None
    queue_url: str | None = None
    jobs_immediate: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_content_length_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    max_batch_rows: int = Field(default=10_000, gt=0)
    max_dataset_columns: int = Field(default=1_000, gt=0)
    model_cache_size: int = Field(default=16, gt=0)
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
    access_log: bool = True
    log_level: str = "INFO"
    migrate_on_start: bool = True
    online_update_every_samples: int = Field(default=500, gt=0)
    online_update_every_s: float = Field(default=300.0, ge=0)
    online_guard_window_samples: int = Field(default=500, gt=0)
    online_guard_tolerance: float = Field(default=0.02, ge=0)
    online_max_samples_per_update: int = Field(default=50_000, gt=0)
    prediction_log_sample_rate: float = Field(default=0.1, ge=0, le=1)
    prediction_log_queue_size: int = Field(default=10_000, gt=0)
    live_metrics_window: int = Field(default=1_000, gt=0, le=100_000)
    public_metrics: bool = False
    metrics_cache_s: float = Field(default=15.0, ge=0)

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
