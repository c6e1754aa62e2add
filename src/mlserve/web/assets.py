"""Plotly.js, served from the ``plotly`` Python package (no CDN: the machine may be offline)."""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

from flask import Response, send_file

from mlserve.api.security import public
from mlserve.web.blueprint import bp

PLOTLY_MAX_AGE_S = 365 * 86400  # the URL carries the package version (?v=...)


def plotly_version() -> str:
    """Version of the installed ``plotly`` package (busts caches when it changes)."""
    return metadata.version("plotly")


@bp.app_template_global()
def plotly_url() -> str:
    """URL of Plotly.js, versioned so that browsers may cache it for a year."""
    return f"/static/vendor/plotly.min.js?v={plotly_version()}"


@bp.get("/static/vendor/plotly.min.js")
@public
def plotly_js() -> Response:
    """The minified Plotly.js bundle of the installed ``plotly`` package."""
    bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    response = send_file(
        bundle if isinstance(bundle, Path) else bundle.open("rb"),  # a file, or inside a zip
        mimetype="text/javascript",
        max_age=PLOTLY_MAX_AGE_S,
        etag=f"plotly-{plotly_version()}",
        conditional=True,
    )
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response
