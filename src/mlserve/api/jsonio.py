"""JSON in and out with orjson (numpy arrays serialised natively, no ``tolist`` loops);
the encoder itself is :func:`mlserve.store.jsoncodec.dumps`."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.json.provider import JSONProvider

from mlserve.api.body import drain_after_response
from mlserve.api.current import current_context
from mlserve.api.strictjson import parse_json
from mlserve.errors import PayloadTooLarge, UnsupportedMediaType
from mlserve.store.jsoncodec import dumps


class OrjsonProvider(JSONProvider):
    """Flask JSON provider backed by orjson."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s, lenient=False)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(args[0] if len(args) == 1 else (args or kwargs))


# Endpoints whose body is not JSON (multipart uploads, the web UI's HTML forms).
NON_JSON_ENDPOINTS = frozenset(
    {
        "datasets.upload",
        "models.import_version",
        "predict.predict_csv",
        "v2.infer",
        "v2.infer_version",
        "web.login",
        "web.logout",
    }
)


def require_json_body() -> None:
    """Refuse a body of another content type on endpoints that take JSON.

    Runs before every request; a missing content type is accepted as JSON.

    Raises
    ------
    PayloadTooLarge
        A JSON body over ``max_json_body_bytes``.
    UnsupportedMediaType
        A POST/PUT/PATCH body declared as anything but JSON.
    """
    environ = request.environ
    if environ["REQUEST_METHOD"] not in ("POST", "PUT", "PATCH"):
        return
    # No route (404, e.g. a V2 version that is not an integer) or not this method (405):
    # Flask answers that.
    if request.routing_exception is not None or request.endpoint in NON_JSON_ENDPOINTS:
        return
    limit = current_context().settings.max_json_body_bytes
    if request.content_length is not None and request.content_length > limit:
        drain_after_response()
        raise PayloadTooLarge(
            f"JSON body exceeds max_json_body_bytes={limit}",
            {"limit": limit, "content_length": request.content_length},
        )
    if environ.get("CONTENT_TYPE") == "application/json":
        return
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json", {"content_type": mimetype})


def read_json_body() -> Any:
    """Parse the request body as JSON.

    ``NaN`` and ``Infinity`` tokens (not JSON, but sent by Python's ``json``)
    are parsed as floats so the signature validator can reject them naming
    the row and the field.

    Raises
    ------
    MalformedJSON
        If the body is empty, not JSON, or holds a duplicate object key
        (:func:`mlserve.api.strictjson.parse_json`).
    """
    return parse_json(request.get_data(cache=False))


def json_response(payload: Any, status: int = 200) -> Response:
    """A ``Response`` with ``payload`` serialised by orjson."""
    return Response(dumps(payload), status=status, mimetype="application/json")
