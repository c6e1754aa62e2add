"""Attaching the REST API to the application: JSON provider, error handler, access
check, every blueprint and the prediction fast lane."""

from __future__ import annotations

from apiflask import APIFlask
from werkzeug.routing import IntegerConverter

from mlserve.api import (
    algorithms,
    datasets,
    docs,
    explain,
    health,
    keys,
    metrics,
    models,
    online,
    predict,
    traffic,
    training_jobs,
    v2,
)
from mlserve.api.body import ChunkedBodyLimit, drain_on_close
from mlserve.api.current import context_of
from mlserve.api.errors import register_error_handlers
from mlserve.api.fastlane import PredictFastLane
from mlserve.api.jsonio import OrjsonProvider, require_json_body
from mlserve.api.proxy import with_trusted_proxies
from mlserve.api.security import document_security, register_security


class BoundedInt(IntegerConverter):
    """``<int:...>`` path parts up to 999,999,999 (as ``?version=``); longer ones are 404.

    Werkzeug's converter takes any run of digits, and a number past 2^63 - 1
    reached the database driver (an ``OverflowError``, a 500).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", 999_999_999)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def register_api(app: APIFlask) -> None:
    """Attach the JSON provider, the error handlers and every blueprint to ``app``."""
    app.url_map.converters["int"] = BoundedInt
    app.json = OrjsonProvider(app)
    register_error_handlers(app)
    register_security(app)
    app.before_request(require_json_body)
    app.after_request(drain_on_close)
    modules = (
        health,
        datasets,
        training_jobs,
        algorithms,
        models,
        traffic,
        predict,
        explain,
        online,
        metrics,
        v2,
    )
    for module in (*modules, keys, docs):
        app.register_blueprint(module.bp)
    app.spec_processor(
        lambda spec: v2.document_v2(
            document_security(app, online.document_online(predict.document_request_bodies(spec)))
        )
    )
    ctx = context_of(app)
    # Chunked bodies go past the fast lane (it takes only sized ones) to this limit.
    limited = ChunkedBodyLimit(app.wsgi_app, ctx.settings.max_content_length_bytes)
    app.wsgi_app = PredictFastLane(  # type: ignore[method-assign]
        limited,
        ctx,
        min(ctx.settings.max_json_body_bytes, ctx.settings.max_content_length_bytes),
    )
    app.wsgi_app = with_trusted_proxies(  # type: ignore[method-assign, assignment]
        app.wsgi_app, ctx.settings.trusted_proxies
    )
