"""Reading what is left of a request body after answering early (413).

The answer goes out at once; the rest of the body is read afterwards, from the
response's ``close`` (which WSGI servers call once the answer is written), for a
bounded time and size, and the connection is then closed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import IO, Any

import orjson
from flask import Response, request

DRAIN_FLAG = "mlserve.drain_after_response"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DRAIN_SECONDS = 10.0
DRAIN_MAX_BYTES = 1024 * 1024 * 1024
DRAIN_CHUNK_BYTES = 64 * 1024


def drain_after_response() -> None:
    """Ask for the rest of this request's body to be read once the answer is sent.

    A server that answers 413 and closes while the client is still uploading
    makes the client's TCP stack reset the connection, and the client loses the
    answer. Like nginx's lingering close, the rest of the body is read for a
    bounded time and size, but after the answer is written, so a client that
    declared a huge ``Content-Length`` and waits gets its 413 at once.
    """
    request.environ[DRAIN_FLAG] = True


def drain_on_close(response: Response) -> Response:
    """``after_request`` hook: drain the body from ``response.close`` when asked to."""
    environ = request.environ
    if environ.get(DRAIN_FLAG) and environ.get("wsgi.input") is not None:
        response.headers["Connection"] = "close"
        response.call_on_close(partial(drain_stream, environ["wsgi.input"], request.content_length))
    return response


def drain_stream(
    stream: IO[bytes],
    length: int | None,
    max_seconds: float = DRAIN_SECONDS,
    max_bytes: int = DRAIN_MAX_BYTES,
) -> int:
    """Read and discard up to ``length`` bytes of ``stream``, bounded; return the bytes read."""
    remaining = min(length if length is not None else max_bytes, max_bytes)
    deadline = time.monotonic() + max_seconds
    drained = 0
    while remaining > 0 and time.monotonic() < deadline:
        chunk = stream.read(min(DRAIN_CHUNK_BYTES, remaining))
        if not chunk:
            break
        drained += len(chunk)
        remaining -= len(chunk)
    return drained


class ChunkedBodyLimit:
    """WSGI middleware: a body sent without ``Content-Length`` (chunked) is read here,
    up to ``max_bytes`` + 1, and answered 413 when it is longer.

    Werkzeug cuts such a stream at ``MAX_CONTENT_LENGTH`` without an error, so a
    chunked body past the limit reached the parsers truncated (a misleading 400 or
    422). Within the limit, the body is handed on with its ``Content-Length`` set,
    so every later check (the JSON limit, the fast lane) sees its size; it is
    spooled to a temporary file past 1 MiB, not held in memory (an upload may be
    gigabytes).

    Parameters
    ----------
    app : WSGI application
    max_bytes : int
        ``max_content_length_bytes``.
    """

    def __init__(self, app: WSGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated"):
            return self.app(environ, start_response)
        body, size = _spool(environ["wsgi.input"], self.max_bytes + 1)
        if size > self.max_bytes:
            out = orjson.dumps(
                {
                    "error": {
                        "code": "payload_too_large",
                        "message": "request body exceeds max_content_length_bytes="
                        f"{self.max_bytes}",
                        "details": {"limit": self.max_bytes},
                    }
                }
            )
            start_response(
                "413 REQUEST ENTITY TOO LARGE",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(out))),
                    ("Connection", "close"),
                ],
            )
            return [out]
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(size)
        return self.app(environ, start_response)


SPOOL_MEMORY_BYTES = 1024 * 1024  # a chunked body past this goes to a temporary file
SPOOL_BLOCK_BYTES = 64 * 1024


def _spool(stream: Any, max_bytes: int) -> tuple[IO[bytes], int]:
    """Copy at most ``max_bytes`` of ``stream`` into a temporary file (in memory up to
    :data:`SPOOL_MEMORY_BYTES`), rewound; return it and the bytes copied."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    while size < max_bytes:
        block = stream.read(min(SPOOL_BLOCK_BYTES, max_bytes - size))
        if not block:
            break
        spooled.write(block)
        size += len(block)
    spooled.seek(0)
    return spooled, size
