"""Attaching the web UI to the application: session cookie and the pages' blueprint."""

from __future__ import annotations

from flask import Flask

from mlserve.api.current import context_of
from mlserve.api.session import configure
from mlserve.web import assets, login, pages  # noqa: F401  (they add the routes)
from mlserve.web.blueprint import bp


def register_web(app: Flask) -> None:
    """Configure the session cookie and attach the UI's blueprint to ``app``."""
    ctx = context_of(app)
    configure(app, ctx.settings, ctx.secret_key)
    app.register_blueprint(bp)
