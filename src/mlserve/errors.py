"""The error tree. Every error a client can see derives from :class:`MlserveError`.

::

    MlserveError (500, "internal_error")
    ├── BadRequest (400, "bad_request")
    │   └── MalformedJSON (400, "malformed_json")
    ├── Unauthorized (401, "unauthorized")
    ├── Forbidden (403, "forbidden")
    │   └── CsrfFailed (403, "csrf_failed")
    ├── NotFound (404, "not_found")
    ├── Conflict (409, "conflict")
    ├── PayloadTooLarge (413, "payload_too_large")
    ├── UnsupportedMediaType (415, "unsupported_media_type")
    ├── ValidationFailed (422, "validation_error")
    └── ServiceUnavailable (503, "service_unavailable")

The API turns each into ``{"error": {"code", "message", "details"}}`` with the
class's status code. Services raise these and know nothing of HTTP otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MlserveError(Exception):
    """Root of every error mlserve reports to a client.

    Parameters
    ----------
    message : str
        Human-readable explanation, safe to show to a client (no paths, no
        stack traces).
    details : dict, optional
        Machine-readable context, e.g. ``{"field": "target", "row": 3}``.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON error envelope ``{"error": {...}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(MlserveError):
    """The request cannot be understood (400)."""

    status_code = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    """The body is not valid JSON (400)."""

    code = "malformed_json"


class Unauthorized(MlserveError):
    """No valid API key was sent (401)."""

    status_code = 401
    code = "unauthorized"


class Forbidden(MlserveError):
    """The key's role does not allow this (403)."""

    status_code = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    """A change requested through a web session lacks its CSRF token (403)."""

    code = "csrf_failed"


class NotFound(MlserveError):
    """A dataset, job, model, version or alias does not exist (404)."""

    status_code = 404
    code = "not_found"

    @classmethod
    def of(cls, kind: str, key: object) -> NotFound:
        """Build ``NotFound`` for ``kind`` (``"dataset"``, ``"model"``...) named ``key``."""
        return cls(f"{kind} {key!r} not found", {"resource": kind, "key": str(key)})


class Conflict(MlserveError):
    """The request conflicts with the stored state (409)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(MlserveError):
    """The body or batch exceeds a configured limit (413)."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(MlserveError):
    """The uploaded file or body is of a type mlserve does not read (415)."""

    status_code = 415
    code = "unsupported_media_type"


class ValidationFailed(MlserveError):
    """Input is well-formed but invalid; ``details`` names the field (422)."""

    status_code = 422
    code = "validation_error"


class TooManyRequests(MlserveError):
    """A rate or quota limit was reached (429); ``details["retry_after_s"]`` says when to retry."""

    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(MlserveError):
    """A dependency (database, queue) cannot be reached (503)."""

    status_code = 503
    code = "service_unavailable"
