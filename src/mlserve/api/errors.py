"""One JSON error handler: every error becomes ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from mlserve.api.jsonio import json_response
from mlserve.errors import MlserveError

log = logging.getLogger(__name__)
DRAIN_SECONDS = 10.0
DRAIN_MAX_BYTES = 1024 * 1024 * 1024
DRAIN_CHUNK_BYTES = 64 * 1024

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """The error envelope as a response."""
    return json_response(
        {"error": {"code": code, "message": message, "details": details or {}}}, status
    )


def _validation_details(detail: Any) -> dict[str, Any]:
    """Flatten APIFlask's ``{location: {field: [messages]}}`` into field + errors."""
    errors: dict[str, Any] = {}
    if isinstance(detail, dict):
        for location_errors in detail.values():
            if isinstance(location_errors, dict):
                errors.update(location_errors)
    first = next(iter(errors), None)
    return {"field": str(first) if first is not None else None, "errors": errors}


def drain_request_body(max_seconds: float = DRAIN_SECONDS, max_bytes: int = DRAIN_MAX_BYTES) -> int:
    """Read and discard what the client is still sending; return the bytes read.

    A server that answers 413 and closes while the client is still uploading
    makes the client's TCP stack reset the connection, and the client loses the
    answer. Like nginx's lingering close, read the rest of the body for a
    bounded time and size first, so the client sees its 413.
    """
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return 0
    remaining = request.content_length if request.content_length is not None else max_bytes
    remaining = min(remaining, max_bytes)
    deadline = time.monotonic() + max_seconds
    drained = 0
    while remaining > 0 and time.monotonic() < deadline:
        chunk = stream.read(min(DRAIN_CHUNK_BYTES, remaining))
        if not chunk:
            break
        drained += len(chunk)
        remaining -= len(chunk)
    return drained


def register_error_handlers(app: APIFlask) -> None:
    """Install the handlers for mlserve errors, HTTP errors and anything unexpected."""

    @app.errorhandler(MlserveError)
    def _mlserve_error(exc: MlserveError) -> Response:
        if exc.status_code >= 500:
            log.error("%s: %s", exc.code, exc.message)
        response = error_response(exc.status_code, exc.code, exc.message, exc.details)
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="mlserve"'
        if "retry_after_s" in exc.details:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.details["retry_after_s"])))
        return response

    @app.error_processor
    def _http_error(exc: HTTPError) -> Response:
        status = exc.status_code
        if status == 422:
            details = _validation_details(exc.detail)
            field = details["field"]
            message = f"invalid request: {field}" if field else "invalid request"
            first = details["errors"].get(field) if field else None
            if isinstance(first, list) and first:
                message = f"{field}: {first[0]}"
            return error_response(422, "validation_error", message, details)
        response = error_response(status, CODES.get(status, "http_error"), exc.message or "")
        response.headers.update(dict(exc.headers or {}))
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        drain_request_body()
        response = error_response(
            413,
            "payload_too_large",
            f"request body exceeds max_content_length_bytes={limit}",
            {"limit": limit, "content_length": request.content_length},
        )
        response.headers["Connection"] = "close"
        return response

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return error_response(status, CODES.get(status, "http_error"), exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
