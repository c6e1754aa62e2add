"""The prediction fast lane: a thin WSGI layer in front of Flask for the predict routes.

A successful prediction is most of a serving process's traffic, and Flask's
per-request machinery (request and application contexts, URL map, hooks,
response object) costs more than predicting a row with a compiled model. This
layer answers ``POST /api/v1/models/<name>/predict`` and
``POST /v1/models/<name>:predict`` itself when the request is plain (JSON body
with a ``Content-Length``, within the size limit) and the prediction succeeds:
it parses with orjson, calls the same service function as the Flask view
(:func:`mlserve.serving.predict`) and writes orjson bytes.

Anything else goes to the Flask application unchanged: other routes, other
methods, chunked or oversized bodies, and every request that fails. A failing
request is replayed through Flask with its body, so errors keep one handler and
one envelope (``{"error": {"code", "message", "details"}}``) whichever way the
request came in. The key is checked here exactly as Flask's ``before_request``
hook checks it (:func:`mlserve.api.security.principal_for`, the ``predict``
permission); a request that fails the check is replayed through Flask, which
answers 401 or 403. Rate limits are checked the same way.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import orjson

from mlserve.api.jsonio import dumps
from mlserve.api.predict import parse_selector, prediction_payload
from mlserve.api.security import SECURITY_HEADERS, principal_for
from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.serving import predict

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ROUTE = re.compile(r"/api/v1/models/([^/]+)/predict|/v1/models/([^/:]+):predict")
SELECTORS = frozenset({"alias", "version"})
HEADERS = [*SECURITY_HEADERS.items(), ("Cache-Control", "no-store")]


class PredictFastLane:
    """WSGI middleware answering successful plain prediction requests directly.

    Parameters
    ----------
    app : WSGI application
        The Flask application's ``wsgi_app``; everything else goes there.
    ctx : Context
    max_body_bytes : int
        Bodies larger than this go to Flask (which answers 413).
    """

    def __init__(self, app: WSGIApp, ctx: Context, max_body_bytes: int) -> None:
        self.app = app
        self.ctx = ctx
        self.max_body_bytes = max_body_bytes
        self.answered = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "POST":
            return self.app(environ, start_response)
        match = ROUTE.fullmatch(environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH")
        if (
            match is None
            or not length
            or environ.get("CONTENT_TYPE", "application/json") != "application/json"
        ):
            return self.app(environ, start_response)
        size = int(length) if length.isascii() and length.isdigit() else -1
        if not 0 < size <= self.max_body_bytes:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(size)
        out = None
        if self._allowed(environ):
            out = self._predict(match, body, environ.get("QUERY_STRING", ""))
        if out is None:  # let Flask produce the error from the same body
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        self.answered += 1
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(out))), *HEADERS],
        )
        return [out]

    def _allowed(self, environ: dict[str, Any]) -> bool:
        """Whether the request's key may predict (Flask answers 401/403/429 otherwise)."""
        try:
            principal = principal_for(
                self.ctx,
                environ.get("HTTP_AUTHORIZATION"),
                environ.get("HTTP_X_API_KEY"),
                environ.get("REMOTE_ADDR"),
                count_failure=False,  # Flask counts it once when it answers the 401
            )
        except MlserveError:
            return False
        return principal.allows("predict")

    def _predict(self, match: re.Match[str], body: bytes, query: str) -> bytes | None:
        v1_name, kserve_name = match.groups()
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict or len(document) != 1:
            return None
        instances, inputs = document.get("instances"), document.get("inputs")
        if instances is None and inputs is None:
            return None
        alias, version = None, None
        if query:
            if kserve_name is not None:
                return None
            params = parse_qs(query, keep_blank_values=True)
            if not set(params) <= SELECTORS or any(len(v) != 1 for v in params.values()):
                return None
            try:
                alias, version = parse_selector(
                    params.get("alias", [None])[0], params.get("version", [None])[0]
                )
            except MlserveError:
                return None
        try:
            result = predict(
                self.ctx, v1_name or kserve_name, instances, alias, version, inputs=inputs
            )
        except Exception:  # replayed through Flask, which answers the 4xx, or logs and 500s
            return None
        if kserve_name is not None:
            return dumps({"predictions": result.predictions, "prediction_id": result.prediction_id})
        return dumps(prediction_payload(result))
