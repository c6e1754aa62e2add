"""The WSGI floors: the floor's own work as a bare WSGI application on granian.

``bench/serve.py`` runs this module with granian exactly as ``mlserve serve`` runs
mlserve (``--interface wsgi``, 2 workers, 4 blocking threads each):

- ``wsgi-floor`` (``WSGI_FLOOR_MODELS`` set to the folder of exported graphs):
  ``POST /predict/<model>`` does what the model floor (``floor_app.py --mode
  model``) does, with the same :class:`floor_app.Model`: parse
  ``{"instances": [...]}`` with orjson, build the feed, run the version's own
  ONNX graph, answer ``{"predictions": [...]}``. The fastest any WSGI
  application can predict on this server, mlserve included: mlserve / this is
  what mlserve's own work (authentication, validation, logging, metrics) costs.
- ``wsgi-echo`` (``WSGI_FLOOR_MODELS`` unset): every ``POST`` has its body read
  and gets a constant answer: the server's own cost per request.

Both answer ``GET /health`` with 200 and send ``Content-Type`` and
``Content-Length`` only, as the asyncio floors do.

Usage::

    WSGI_FLOOR_MODELS=DIR granian --interface wsgi --workers 2 --blocking-threads 4 \\
        --port 8000 --working-dir bench/contenders wsgi_floor:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from floor_app import ECHO_BODY, Model, load

JSON = ("Content-Type", "application/json")


def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [JSON, ("Content-Length", str(len(body)))])
    return [body]


def make_app(models: dict[bytes, Model] | None) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: predictions with ``models``, or the echo (``None``)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        body = environ["wsgi.input"].read(int(length)) if length else b""
        if models is None or environ["PATH_INFO"] == "/health":
            return _answer(start_response, "200 OK", ECHO_BODY)
        model = models.get(environ["PATH_INFO"].rpartition("/")[2].encode())
        if model is None:
            return _answer(start_response, "404 Not Found", b'{"error":"not found"}')
        try:
            rows = orjson.loads(body)["instances"]
            data = orjson.dumps({"predictions": model.predict(rows)})
        except Exception as exc:  # the floor does not validate; say what went wrong
            error = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
            return _answer(start_response, "400 Bad Request", error)
        return _answer(start_response, "200 OK", data)

    return app


_folder = os.environ.get("WSGI_FLOOR_MODELS")
app = make_app(load(Path(_folder)) if _folder else None)
