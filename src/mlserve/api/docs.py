"""Swagger UI assets served locally (no CDN: the machine may be offline)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = APIBlueprint("docs_assets", __name__, url_prefix="/docs/assets", enable_openapi=False)
ASSETS = {
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
}


@bp.get("/<filename>")
def asset(filename: str) -> Response:
    if filename not in ASSETS:
        from mlserve.errors import NotFound

        raise NotFound.of("asset", filename)
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
