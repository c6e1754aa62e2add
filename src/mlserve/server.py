"""Running the service: migrations, demo models, embedded worker, gunicorn."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from gunicorn.app.base import BaseApplication
from pydantic import SecretStr
from threadpoolctl import threadpool_limits

from mlserve.app import configure_logging, create_app
from mlserve.bootstrap import DatabaseSetup, build_context
from mlserve.security.secret import SecretKeyMismatch
from mlserve.settings import Settings

log = logging.getLogger(__name__)


class GunicornServer(BaseApplication):
    """gunicorn with mlserve's app factory called in each worker (after fork)."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn >= 25.1 opens a control socket at one fixed path per user by
        # default: two services would share it, and it can resize or stop the
        # server. mlserve is managed through its own commands; keep it closed.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        limit_native_threads()
        return create_app(self.settings)


NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread per HTTP worker process.

    Workers already run one per core; native thread pools on top would
    oversubscribe the cores and slow every request down. Sets the variables for
    libraries loaded later and limits the pools already loaded (threadpoolctl,
    scikit-learn's own dependency). ONNX Runtime sessions are built with one
    thread (:class:`mlserve.serving.onnx.OnnxModel`).
    """
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    threadpool_limits(limits=1)


def prepare(settings: Settings, demo: bool) -> DatabaseSetup | None:
    """Migrate (SQLite), sweep interrupted writes, then prepare the database.

    Returns
    -------
    DatabaseSetup or None
        ``None`` when the database was prepared; else the setup retrying in the
        background while the database is unreachable or not migrated (the service
        starts anyway and answers 503 on ``/ready`` until then).

    Raises
    ------
    SystemExit
        The server secret is not the one the database was first used with.
    """
    ctx = build_context(settings)
    if settings.is_sqlite:
        ctx.db.upgrade()
    ctx.store.sweep_temporaries()
    setup = DatabaseSetup(ctx, demo)
    try:
        if setup.attempt():
            ctx.db.dispose()
            return None
    except SecretKeyMismatch as exc:
        raise SystemExit(f"mlserve: refusing to start: {exc.message}") from exc
    log.warning("database not ready (%s): serving 503 until it is", setup.problem)
    setup.start()
    return setup


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_auth_binding(settings: Settings) -> None:
    """Refuse to serve without authentication on anything but loopback.

    Raises
    ------
    SystemExit
        ``MLSERVE_AUTH=off`` with a non-loopback ``host``.
    """
    if not settings.auth and settings.host not in LOOPBACK_HOSTS:
        raise SystemExit(
            f"refusing to serve without authentication on {settings.host}: "
            "MLSERVE_AUTH=off is for loopback (127.0.0.1) only"
        )


def settings_env(settings: Settings) -> dict[str, str]:
    """``MLSERVE_*`` variables that reproduce ``settings`` in a child process."""
    env = {}
    for key, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[f"MLSERVE_{key.upper()}"] = str(value)
    env["MLSERVE_HOME"] = str(settings.home.resolve())
    return env


class EmbeddedWorker:
    """The ``mlserve worker`` child of ``mlserve serve``, restarted whenever it dies.

    The child exits by itself when this process disappears (it watches its
    parent pid), so a killed service leaves no orphan worker behind.

    Parameters
    ----------
    settings : Settings
    check_interval_s : float
        How often the child is checked, in seconds.
    """

    def __init__(self, settings: Settings, check_interval_s: float = 1.0) -> None:
        self.settings = settings
        self.check_interval_s = check_interval_s
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._supervise, name="mlserve-worker-supervisor", daemon=True
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "mlserve", "worker", "--parent-pid", str(os.getpid())]
        return subprocess.Popen(command, env={**os.environ, **settings_env(self.settings)})

    def start(self) -> None:
        """Start the child and the thread that restarts it."""
        self._child = self._spawn()
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            child = self._child
            if child is not None and child.poll() is not None and not self._stop.is_set():
                log.warning("job worker exited with status %s; restarting it", child.returncode)
                self.restarts += 1
                self._child = self._spawn()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the child to finish (SIGINT, Huey's graceful signal); kill it after ``timeout_s``."""
        self._stop.set()
        child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()


def run_server(
    settings: Settings,
    workers: int = 1,
    threads: int = 4,
    demo: bool = False,
    embedded_worker: bool = True,
) -> None:
    """Serve until interrupted.

    Parameters
    ----------
    settings : Settings
        ``settings.server`` picks the WSGI server: gunicorn (``gthread`` workers)
        or granian (Rust HTTP server, WSGI interface).
    workers : int
        Worker processes; each loads models once into its own cache.
    threads : int
        Threads per worker (gunicorn threads, granian blocking threads).
    demo : bool
        Register the demo models first if they are missing.
    embedded_worker : bool
        Start ``mlserve worker`` as a child process for training jobs, and
        restart it if it dies.
    """
    configure_logging(settings)
    check_auth_binding(settings)
    setup = prepare(settings, demo)
    worker = EmbeddedWorker(settings) if embedded_worker else None
    if worker is not None:
        worker.start()
    served = settings.model_copy(update={"migrate_on_start": False})
    log.info(
        "mlserve listening on http://%s:%s (%s, %d workers)",
        settings.host,
        settings.port,
        settings.server,
        workers,
    )
    try:
        if settings.server == "granian":
            _run_granian(served, workers, threads)
        else:
            _run_gunicorn(served, workers, threads)
    finally:
        if worker is not None:
            worker.stop()
        if setup is not None:
            setup.stop()
    if setup is not None and setup.refused:
        raise SystemExit(setup.refused)


def _run_gunicorn(settings: Settings, workers: int, threads: int) -> None:
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "loglevel": settings.log_level.lower(),
        "timeout": 120,
        "graceful_timeout": settings.graceful_timeout_s,
    }
    if settings.access_log:
        options["accesslog"] = "-"
    GunicornServer(settings, options).run()


def _run_granian(settings: Settings, workers: int, threads: int) -> None:
    # granian imports the app by name in each worker process: the settings
    # travel as MLSERVE_* environment variables (and mlserve.wsgi limits threads).
    os.environ.update(settings_env(settings))
    Granian(
        "mlserve.wsgi:create",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        log_access=settings.access_log,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        respawn_failed_workers=True,
        # Without it granian waits for ever for a worker that does not stop
        # (seen once in the cluster test: a replica still running 60 s after SIGTERM).
        workers_kill_timeout=settings.graceful_timeout_s,
    ).serve()
