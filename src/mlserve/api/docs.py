"""Swagger UI assets served locally (no CDN: the machine may be offline).

The files come from the ``swagger-ui-py`` package, which ships Swagger UI 5
(it reads the OpenAPI 3.1 document APIFlask writes; Swagger UI 4 does not).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from apiflask import APIBlueprint
from flask import Response, send_from_directory

from mlserve.errors import NotFound

bp = APIBlueprint("docs_assets", __name__, url_prefix="/docs/assets", enable_openapi=False)
ASSETS = {
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
}


def assets_dir() -> Path:
    """Folder of the installed Swagger UI files (found without importing the package)."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@bp.get("/<filename>")
def asset(filename: str) -> Response:
    if filename not in ASSETS:
        raise NotFound.of("asset", filename)
    return send_from_directory(assets_dir(), filename, max_age=86400)
