"""The :class:`Client`: a small synchronous client of the mlserve REST API (httpx)."""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

import httpx

from mlserve.client._exceptions import (
    JSON,
    ConnectionFailed,
    InvalidResponse,
    JobTimeout,
    error_from_response,
)
from mlserve.client._models import ModelMethods
from mlserve.client._online import OnlineMethods

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"

#: Job statuses after which a job never changes again.
TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed"})

#: Optional fields of ``POST /api/v1/training-jobs`` accepted as keyword options.
TRAINING_OPTIONS = frozenset(
    {
        "task",
        "params",
        "features",
        "test_size",
        "cv_folds",
        "random_state",
        "drop_duplicates",
        "drop_missing_target",
        "time_budget_s",
    }
)

PathOrFile = str | os.PathLike[str] | IO[bytes]


def _segment(value: object) -> str:
    """Quote ``value`` for use as one URL path segment."""
    return quote(str(value), safe="")


class Client(OnlineMethods, ModelMethods):
    """Synchronous client of an mlserve server.

    Parameters
    ----------
    url : str, optional
        Base URL of the server; a path prefix (``https://host/mlserve``) is kept.
        Default: the ``MLSERVE_URL`` environment variable (as the CLI reads it), else
        ``http://127.0.0.1:8000``.
    api_key : str, optional
        Sent as ``Authorization: Bearer <api_key>`` on every request. Default:
        the ``MLSERVE_API_KEY`` environment variable, if set.
    timeout : float, default 30.0
        Connect, read and write timeout of each request, in seconds.
    transport : httpx.BaseTransport, optional
        Custom transport, e.g. ``httpx.MockTransport`` in tests or
        ``httpx.WSGITransport(app=...)`` to call an app in-process.

    Notes
    -----
    Use it as a context manager, or call :meth:`close`, to release connections.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if url is None:
            url = os.environ.get("MLSERVE_URL") or DEFAULT_URL
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "mlserve-client"}
        if api_key is None:
            api_key = os.environ.get("MLSERVE_API_KEY")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )
        # Indirections so tests can drive wait_for_job with a fake clock.
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep

    # -- plumbing ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._http.is_closed

    def _request(self, method: str, path: str, **kwargs: Any) -> JSON:
        """Send one request and return the JSON object it answers.

        Raises
        ------
        ConnectionFailed
            Network error or timeout.
        ApiError
            Non-2xx status.
        InvalidResponse
            2xx status but the body is not a JSON object.
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(
                f"mlserve at {self.url} did not answer {method} {path} in time: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(
                f"cannot reach mlserve at {self.url} ({method} {path}): {exc}"
            ) from exc
        if not response.is_success:
            raise error_from_response(response)
        try:
            body: Any = response.json()
        except ValueError as exc:
            raise InvalidResponse(
                f"{method} {path} answered HTTP {response.status_code} with a non-JSON body"
            ) from exc
        if not isinstance(body, dict):
            raise InvalidResponse(
                f"{method} {path} answered a JSON {type(body).__name__}, expected an object"
            )
        return body

    # -- datasets ---------------------------------------------------------------------

    def upload_dataset(
        self,
        path_or_file: PathOrFile,
        name: str | None = None,
        *,
        filename: str | None = None,
    ) -> JSON:
        """Upload a dataset file (``POST /api/v1/datasets``).

        Parameters
        ----------
        path_or_file : str, os.PathLike or binary file object
            The file to upload. The server tells its format from the file name
            extension (``.csv``, ``.parquet``...).
        name : str, optional
            Dataset name; defaults to the file name without its extension.
        filename : str, optional
            File name sent to the server; defaults to the path's name, or to
            the ``name`` attribute of a file object.

        Returns
        -------
        dict
            The stored dataset: ``id``, ``name``, ``n_rows``, ``columns``...

        Raises
        ------
        ValueError
            A file object without a usable name and no ``filename`` given.
        OSError
            The path cannot be opened.
        ApiError
            E.g. 413 (file too large), 415 (unsupported format), 422 (invalid).
        ConnectionFailed
            The server cannot be reached.
        """
        if isinstance(path_or_file, str | os.PathLike):
            path = Path(path_or_file)
            with path.open("rb") as fh:
                return self._upload(fh, filename or path.name, name)
        if filename is None:
            raw_name = getattr(path_or_file, "name", None)
            if not isinstance(raw_name, str) or not raw_name:
                raise ValueError("pass filename= when uploading a file object without a name")
            filename = Path(raw_name).name
        return self._upload(path_or_file, filename, name)

    def _upload(self, fh: IO[bytes], filename: str, name: str | None) -> JSON:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        dataset_name = name if name is not None else Path(filename).stem
        return self._request(
            "POST",
            f"{API_PREFIX}/datasets",
            files={"file": (filename, fh, content_type)},
            data={"name": dataset_name},
        )

    def list_datasets(self) -> JSON:
        """List datasets (``GET /api/v1/datasets``).

        Returns
        -------
        dict
            ``{"datasets": [dataset, ...]}``.

        Raises
        ------
        ApiError
            The server answered an error.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/datasets")

    def get_dataset(self, dataset_id: str) -> JSON:
        """Fetch one dataset (``GET /api/v1/datasets/{id}``).

        Parameters
        ----------
        dataset_id : str
            Id returned by :meth:`upload_dataset`.

        Returns
        -------
        dict
            The dataset, with its column summaries.

        Raises
        ------
        ApiError
            404 ``not_found`` when no such dataset exists.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/datasets/{_segment(dataset_id)}")

    # -- training jobs ----------------------------------------------------------------

    def create_training_job(
        self,
        dataset_id: str,
        target: str,
        algorithm: str,
        model_name: str,
        **options: Any,
    ) -> JSON:
        """Queue a training job (``POST /api/v1/training-jobs``).

        Parameters
        ----------
        dataset_id : str
            Dataset to train on.
        target : str
            Target column.
        algorithm : str
            Algorithm name from the server's catalogue, or ``"auto"`` (the server
            chooses by cross-validation; see ``time_budget_s``).
        model_name : str
            Registered model the new version is added to.
        **options
            Any of ``task``, ``params``, ``features``, ``test_size``,
            ``cv_folds``, ``random_state``, ``drop_duplicates``,
            ``drop_missing_target``, ``time_budget_s`` (seconds, ``"auto"`` only).
            Options set to ``None`` are left out so the server's defaults apply.

        Returns
        -------
        dict
            The queued job (``id``, ``status``, ``progress``, ``spec``...).

        Raises
        ------
        TypeError
            An unknown option.
        ApiError
            404 (unknown dataset) or 422 (invalid spec, with ``details["field"]``).
        ConnectionFailed
            The server cannot be reached.
        """
        unknown = sorted(set(options) - TRAINING_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown training option(s): {', '.join(unknown)}; "
                f"expected any of {', '.join(sorted(TRAINING_OPTIONS))}"
            )
        body: JSON = {
            "dataset_id": dataset_id,
            "target": target,
            "algorithm": algorithm,
            "model_name": model_name,
        }
        body.update({key: value for key, value in options.items() if value is not None})
        return self._request("POST", f"{API_PREFIX}/training-jobs", json=body)

    def list_jobs(self) -> JSON:
        """List training jobs (``GET /api/v1/training-jobs``).

        Returns
        -------
        dict
            ``{"jobs": [job, ...]}``.

        Raises
        ------
        ApiError
            The server answered an error.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/training-jobs")

    def get_job(self, job_id: str) -> JSON:
        """Fetch one training job (``GET /api/v1/training-jobs/{id}``).

        Parameters
        ----------
        job_id : str
            Id returned by :meth:`create_training_job`.

        Returns
        -------
        dict
            The job: ``status``, ``progress``, ``stage``, ``error``,
            ``model_version``...

        Raises
        ------
        ApiError
            404 ``not_found`` when no such job exists.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/training-jobs/{_segment(job_id)}")

    def wait_for_job(
        self,
        job_id: str,
        timeout_s: float = 600.0,
        poll_interval_s: float = 0.5,
        on_change: Callable[[JSON], object] | None = None,
    ) -> JSON:
        """Poll a job until it succeeds or fails.

        Parameters
        ----------
        job_id : str
            The job to wait for.
        timeout_s : float, default 600.0
            Longest time to wait, in seconds.
        poll_interval_s : float, default 0.5
            Pause between two polls, in seconds.
        on_change : callable, optional
            Called with the job each time its status, stage or progress changes
            (the first poll included): ``mlserve train --wait`` prints it.

        Returns
        -------
        dict
            The final job. A failed job is returned, not raised: check
            ``job["status"]`` (``"succeeded"`` or ``"failed"``) and ``job["error"]``.

        Raises
        ------
        ValueError
            ``timeout_s`` is negative or ``poll_interval_s`` not positive.
        JobTimeout
            The job had not finished after ``timeout_s`` (a ``TimeoutError``).
        ApiError
            404 ``not_found`` when no such job exists.
        ConnectionFailed
            The server cannot be reached.
        """
        if timeout_s < 0:
            raise ValueError("timeout_s must be >= 0")
        if poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be > 0")
        deadline = self._clock() + timeout_s
        seen: tuple[Any, Any, Any] | None = None
        while True:
            job = self.get_job(job_id)
            state = (job.get("status"), job.get("stage"), job.get("progress"))
            if on_change is not None and state != seen:
                seen = state
                on_change(job)
            if job.get("status") in TERMINAL_JOB_STATUSES:
                return job
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise JobTimeout(job_id, timeout_s, job)
            self._sleep(min(poll_interval_s, remaining))

    # -- model registry ---------------------------------------------------------------

    def list_models(self) -> JSON:
        """List registered models (``GET /api/v1/models``).

        Returns
        -------
        dict
            ``{"models": [{"name", "latest_version", "aliases", ...}, ...]}``.

        Raises
        ------
        ApiError
            The server answered an error.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/models")

    def get_model(self, name: str) -> JSON:
        """Fetch one registered model (``GET /api/v1/models/{name}``).

        Parameters
        ----------
        name : str
            Model name.

        Returns
        -------
        dict
            The model with its ``versions`` and ``aliases``.

        Raises
        ------
        ApiError
            404 ``not_found`` when no such model exists.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", f"{API_PREFIX}/models/{_segment(name)}")

    def get_version(self, name: str, version: int) -> JSON:
        """Fetch one model version (``GET /api/v1/models/{name}/versions/{version}``).

        Parameters
        ----------
        name : str
            Model name.
        version : int
            Version number (1, 2, ...).

        Returns
        -------
        dict
            The version: ``task``, ``algorithm``, ``params``, ``metrics``,
            ``cv_metrics``, ``signature``...

        Raises
        ------
        ApiError
            404 ``not_found`` when no such model or version exists.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request(
            "GET", f"{API_PREFIX}/models/{_segment(name)}/versions/{_segment(version)}"
        )

    def set_alias(self, name: str, alias: str, version: int) -> JSON:
        """Point an alias at a version (``PUT /api/v1/models/{name}/aliases/{alias}``).

        Parameters
        ----------
        name : str
            Model name.
        alias : str
            Alias, e.g. ``"production"``; created or moved.
        version : int
            Version the alias should point at.

        Returns
        -------
        dict
            ``{"model_name", "alias", "version"}``.

        Raises
        ------
        ApiError
            404 when the model or version does not exist, 422 for a bad alias.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request(
            "PUT",
            f"{API_PREFIX}/models/{_segment(name)}/aliases/{_segment(alias)}",
            json={"version": version},
        )

    # -- predictions ------------------------------------------------------------------

    def predict(
        self,
        name: str,
        instances: Sequence[Mapping[str, Any]],
        alias: str | None = None,
        version: int | None = None,
    ) -> JSON:
        """Predict with a model (``POST /api/v1/models/{name}/predict``).

        Parameters
        ----------
        name : str
            Model name.
        instances : sequence of dict
            One mapping of feature name to value per row.
        alias : str, optional
            Use the version this alias points at.
        version : int, optional
            Use this version. With neither ``alias`` nor ``version`` the server
            picks its default (alias ``production`` if set, else the latest version).

        Returns
        -------
        dict
            ``{"predictions", "model_name", "model_version"}`` plus
            ``"probabilities"`` and ``"classes"`` for classifiers.

        Raises
        ------
        ValueError
            Both ``alias`` and ``version`` given.
        ApiError
            404 (unknown model, version or alias), 413 (too many rows),
            422 (instances do not match the model's signature).
        ConnectionFailed
            The server cannot be reached.
        """
        if alias is not None and version is not None:
            raise ValueError("pass alias or version, not both")
        params: dict[str, str | int] = {}
        if alias is not None:
            params["alias"] = alias
        if version is not None:
            params["version"] = version
        return self._request(
            "POST",
            f"{API_PREFIX}/models/{_segment(name)}/predict",
            params=params,
            json={"instances": [dict(row) for row in instances]},
        )

    # -- probes -----------------------------------------------------------------------

    def health(self) -> JSON:
        """Liveness probe (``GET /health``).

        Returns
        -------
        dict
            ``{"status": "ok"}``.

        Raises
        ------
        ApiError
            The server answered an error.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", "/health")

    def ready(self) -> JSON:
        """Readiness probe (``GET /ready``).

        Returns
        -------
        dict
            ``{"status": "ready", ...}`` when the service can take requests.

        Raises
        ------
        ApiError
            503 ``service_unavailable`` when a dependency is down.
        ConnectionFailed
            The server cannot be reached.
        """
        return self._request("GET", "/ready")
