"""One JSON error handler: every error becomes ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import math
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response, current_app, has_request_context, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from mlserve.api.body import drain_after_response
from mlserve.api.jsonio import json_response
from mlserve.errors import MlserveError

log = logging.getLogger(__name__)
V2_PREFIX = "/v2"

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
    """The error envelope as a response (``{"error": message}`` on the /v2 routes, as the
    Open Inference Protocol says)."""
    if has_request_context() and request.path.startswith(V2_PREFIX):
        return json_response({"error": message}, status)
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
        drain_after_response()
        response = error_response(
            413,
            "payload_too_large",
            f"request body exceeds max_content_length_bytes={limit}",
            {"limit": limit, "content_length": request.content_length},
        )
        return response

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, CODES.get(status, "http_error"), exc.description or "")
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # RFC 9110 section 15.5.6
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
