"""The application factory."""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

from apiflask import APIFlask
from flask import Request

from mlserve.api.current import attach_context
from mlserve.api.routes import register_api
from mlserve.api.schemas import ErrorOut
from mlserve.bootstrap import build_context
from mlserve.errors import MalformedJSON
from mlserve.serving.preload import Preloader
from mlserve.settings import Settings
from mlserve.web.routes import register_web


def create_app(settings: Settings | None = None, **overrides: Any) -> APIFlask:
    """Build the mlserve WSGI application.

    Parameters
    ----------
    settings : Settings, optional
        Configuration; read from ``MLSERVE_*`` environment variables when omitted.
    **overrides
        Field overrides applied on top (``create_app(home=tmp_path)``).

    Returns
    -------
    APIFlask
        With the services' :class:`~mlserve.context.Context` at
        ``context_of(app)``. For SQLite databases the schema is
        migrated to the latest revision here; other databases need
        ``mlserve db upgrade``.
    """
    settings = settings or Settings()
    if overrides:
        settings = Settings(**{**settings.model_dump(), **overrides})
    configure_logging(settings)
    ctx = build_context(settings)
    if settings.is_sqlite and settings.migrate_on_start:
        ctx.db.upgrade()
    if settings.preload_alias:
        ctx.preload = preloader = Preloader(
            db=ctx.db, resolver=ctx.resolver, models=ctx.models, alias=settings.preload_alias
        )
        preloader.start()
    app = APIFlask(
        "mlserve",
        title="mlserve",
        version=version("mlserve"),
        docs_path="/docs",
        spec_path="/openapi.json",
        json_errors=True,
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length_bytes,
        JSON_SORT_KEYS=False,
        VALIDATION_ERROR_STATUS_CODE=422,
        SYNC_LOCAL_SPEC=False,
        SWAGGER_UI_CSS="/docs/assets/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS="/docs/assets/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS="/docs/assets/swagger-ui-standalone-preset.js",
        DOCS_FAVICON="/docs/assets/favicon-32x32.png",
        HTTP_ERROR_SCHEMA=ErrorOut,
        VALIDATION_ERROR_SCHEMA=ErrorOut,
    )
    app.request_class = JsonRequest
    app.url_map.merge_slashes = False  # "//" is a 404, not a redirect to another resource
    attach_context(app, ctx)
    register_api(app)
    register_web(app)
    return app


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level`` (no-op if logging is already set up)."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


class JsonRequest(Request):
    """Request whose JSON parse errors are mlserve's ``MalformedJSON`` (400)."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        raise MalformedJSON(f"request body is not valid JSON: {str(e)[:200]}")
