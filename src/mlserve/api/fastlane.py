"""The prediction fast lane: a thin WSGI layer in front of Flask for the predict routes.

A successful prediction is most of a serving process's traffic, and Flask's
per-request machinery (request and application contexts, URL map, hooks,
response object) costs more than predicting a row with a compiled model. This
layer answers ``POST /api/v1/models/<name>/predict``,
``POST /v1/models/<name>:predict`` and the V2 ``POST /v2/models/<name>[/versions/<v>]/infer``
(JSON or binary tensors, :mod:`mlserve.serving.oip`) itself when the request is plain (JSON body
with a ``Content-Length``, within the size limit) and the prediction succeeds:
it parses with orjson (refusing duplicate keys as Flask does), or decodes a records
body of :data:`TYPED_MIN_BYTES` or more straight into columns by the version's
features (:mod:`mlserve.api.typedjson`), calls the same
service function as the Flask view (:func:`mlserve.serving.predict`) and writes
orjson bytes.

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

from mlserve.api.jsonio import dumps
from mlserve.api.predict import kserve_payload, parse_selector, prediction_payload, routing_key
from mlserve.api.security import SECURITY_HEADERS, principal_for
from mlserve.api.strictjson import parse_json
from mlserve.api.typedjson import records_as_inputs
from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.serving import oip
from mlserve.serving.oip_codec import HEADER, decode_request, encode_response
from mlserve.serving.predict import predict

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ROUTE = re.compile(r"/api/v1/models/([^/]+)/predict|/v1/models/([^/:]+):predict")
V2_ROUTE = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
V2_TYPES = frozenset({"application/json", "application/octet-stream"})
SELECTORS = frozenset({"alias", "version"})
FIELDS = frozenset({"instances", "inputs", "extra", "routing_key"})
HEADERS = [*SECURITY_HEADERS.items(), ("Cache-Control", "no-store")]
# Records bodies from this size (about 25 california rows) are decoded by the version's
# features (:mod:`mlserve.api.typedjson`); one row's body costs less the usual way.
TYPED_MIN_BYTES = 4096


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
        self.typed = 0  # of those, records bodies decoded straight into columns
        self.typed_min_bytes = TYPED_MIN_BYTES

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "POST":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        match = ROUTE.fullmatch(path)
        v2 = None if match is not None else V2_ROUTE.fullmatch(path)
        length = environ.get("CONTENT_LENGTH")
        content_type = environ.get("CONTENT_TYPE", "application/json")
        if not length or (
            (match is None or content_type != "application/json")
            and (v2 is None or content_type not in V2_TYPES)
        ):
            return self.app(environ, start_response)
        size = int(length) if length.isascii() and length.isdigit() else -1
        if not 0 < size <= self.max_body_bytes:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(size)
        out: tuple[bytes, list[tuple[str, str]]] | None = None
        if self._allowed(environ):
            if match is not None:
                answer = self._predict(match, body, environ)
                out = None if answer is None else (answer, [("Content-Type", "application/json")])
            elif v2 is not None and not environ.get("QUERY_STRING"):
                out = self._infer(v2, body, environ.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH"))
        if out is None:  # let Flask produce the error from the same body
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        self.answered += 1
        data, headers = out
        start_response("200 OK", [*headers, ("Content-Length", str(len(data))), *HEADERS])
        return [data]

    def _infer(
        self, match: re.Match[str], body: bytes, header_length: str | None
    ) -> tuple[bytes, list[tuple[str, str]]] | None:
        """A V2 inference answered here (:mod:`mlserve.api.v2` does the same through Flask)."""
        name, version = match.groups()
        try:
            request = decode_request(body, header_length)
            response, binary = oip.infer(self.ctx, name, version, request)
            data, json_length = encode_response(response, binary)
        except Exception:  # replayed through Flask, which answers the 4xx, or logs and 500s
            return None
        if json_length is None:
            return data, [("Content-Type", "application/json")]
        return data, [("Content-Type", "application/octet-stream"), (HEADER, str(json_length))]

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

    def _features(self, name: str, alias: str | None, version: int | None) -> tuple[str, ...]:
        """The feature names of the primary version of ``name``'s route; () where there is
        none. (Under a traffic split, a candidate with other features gets those rows
        refused by its check, as the usual path refuses them, and the request is
        replayed through Flask.)"""
        try:
            route = self.ctx.resolver.route(name, alias=alias, version=version)
        except Exception:  # unknown model, alias or version: the usual path names it
            return ()
        return tuple(spec["name"] for spec in route.primary.signature["inputs"])

    def _predict(self, match: re.Match[str], body: bytes, environ: dict[str, Any]) -> bytes | None:
        v1_name, kserve_name = match.groups()
        name = v1_name or kserve_name
        query = environ.get("QUERY_STRING", "")
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
        document = None
        if len(body) >= self.typed_min_bytes:
            document = records_as_inputs(body, self._features(name, alias, version))
        typed = document is not None
        if document is None:
            try:
                document = parse_json(body)
            except MlserveError:  # not JSON, or a duplicate key: Flask answers the 4xx
                return None
        if type(document) is not dict or not document.keys() <= FIELDS:
            return None
        instances, inputs = document.get("instances"), document.get("inputs")
        if (instances is None) == (inputs is None):
            return None
        try:
            key = routing_key(document.get("routing_key"), environ.get("HTTP_X_ROUTING_KEY"))
        except MlserveError:
            return None
        extra = document.get("extra", "refuse")
        try:
            result = predict(
                self.ctx,
                name,
                instances,
                alias,
                version,
                inputs=inputs,
                routing_key=key,
                extra=extra,
            )
        except Exception:  # replayed through Flask, which answers the 4xx, or logs and 500s
            return None
        self.typed += typed
        if kserve_name is not None:
            return dumps(kserve_payload(result))
        return dumps(prediction_payload(result))
