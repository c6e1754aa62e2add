"""Errors raised by :class:`mlserve.client.Client`.

::

    ClientError
    ├── ApiError          the server answered with a non-2xx status
    ├── ConnectionFailed  the server could not be reached (or did not answer in time)
    ├── InvalidResponse   a 2xx answer whose body is not a JSON object
    └── JobTimeout        wait_for_job gave up (also a TimeoutError)
"""

from __future__ import annotations

from typing import Any

import httpx

JSON = dict[str, Any]


class ClientError(Exception):
    """Root of every error raised by :class:`Client`.

    Parameters
    ----------
    message : str
        Human-readable explanation.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The server answered with a 4xx or 5xx status.

    Parameters
    ----------
    status_code : int
        HTTP status of the response.
    code : str
        Machine-readable error code from the envelope (``"not_found"``,
        ``"validation_error"``...), or ``"http_<status>"`` when the body is
        not an mlserve error envelope.
    message : str
        Human-readable message from the envelope (or the response text).
    details : dict, optional
        Machine-readable context from the envelope.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status_code})"

    def __repr__(self) -> str:
        return (
            f"ApiError(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r}, details={self.details!r})"
        )


class ConnectionFailed(ClientError):
    """The server could not be reached, or did not answer in time."""


class InvalidResponse(ClientError):
    """A successful response whose body is not the expected JSON object."""


class JobTimeout(ClientError, TimeoutError):
    """:meth:`Client.wait_for_job` gave up before the job finished.

    Parameters
    ----------
    job_id : str
        The job waited for.
    timeout_s : float
        How long the client waited, in seconds.
    job : dict
        The last state of the job seen.
    """

    def __init__(self, job_id: str, timeout_s: float, job: JSON) -> None:
        status = job.get("status", "unknown")
        super().__init__(
            f"job {job_id!r} did not finish within {timeout_s:g} s (last status: {status})"
        )
        self.job_id = job_id
        self.timeout_s = timeout_s
        self.job = job


def error_from_response(response: httpx.Response) -> ApiError:
    """Build an :class:`ApiError` from a non-2xx response, envelope or not."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        message = error.get("message")
        details = error.get("details")
        return ApiError(
            status,
            code if isinstance(code, str) and code else f"http_{status}",
            message if isinstance(message, str) and message else response.reason_phrase,
            details if isinstance(details, dict) else None,
        )
    text = response.text.strip()
    if len(text) > 500:
        text = text[:500] + "..."
    message = text or response.reason_phrase or f"HTTP {status}"
    return ApiError(status, f"http_{status}", message)
