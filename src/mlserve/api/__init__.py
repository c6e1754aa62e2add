"""REST API: one blueprint per resource, one JSON error handler, orjson bodies."""

from __future__ import annotations

from apiflask import APIFlask

from mlserve.api import (
    algorithms,
    datasets,
    docs,
    health,
    keys,
    metrics,
    models,
    online,
    predict,
    training_jobs,
)
from mlserve.api.errors import register_error_handlers
from mlserve.api.fastlane import PredictFastLane
from mlserve.api.jsonio import OrjsonProvider, require_json_body
from mlserve.api.security import document_security, register_security


def register_api(app: APIFlask) -> None:
    """Attach the JSON provider, the error handlers and every blueprint to ``app``."""
    app.json = OrjsonProvider(app)
    register_error_handlers(app)
    register_security(app)
    app.before_request(require_json_body)
    modules = (health, datasets, training_jobs, algorithms, models, predict, online, metrics)
    for module in (*modules, keys, docs):
        app.register_blueprint(module.bp)
    app.spec_processor(
        lambda spec: document_security(
            app, online.document_online(predict.document_request_bodies(spec))
        )
    )
    ctx = app.extensions["mlserve"]
    app.wsgi_app = PredictFastLane(  # type: ignore[method-assign]
        app.wsgi_app,
        ctx,
        min(ctx.settings.max_json_body_bytes, ctx.settings.max_content_length_bytes),
    )
