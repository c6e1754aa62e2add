"""The web UI: server-rendered pages whose scripts call the REST API.

Pages are Jinja templates (``templates/``) extending one layout; their scripts
(``static/js``, ES modules, no build step) fetch every figure, plot and live status
from ``/api/v1`` with the session cookie, as any client would. Plots are drawn by
Plotly.js, served from the ``plotly`` Python package (no CDN). Sign-in with an API
key starts a session (:mod:`mlserve.api.session`). See ``docs/ui.md``.
"""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    """Configure the session cookie and attach the UI's blueprint to ``app``."""
    from mlserve.api.session import configure
    from mlserve.web import assets, login, pages  # noqa: F401  (they add the routes)
    from mlserve.web.blueprint import bp

    ctx = app.extensions["mlserve"]
    configure(app, ctx.settings, ctx.secret_key)
    app.register_blueprint(bp)
