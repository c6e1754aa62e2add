"""The web UI's blueprint: its templates, static files, layout context and error pages."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from mlserve.api import session as web_session
from mlserve.api.current import current_context
from mlserve.errors import MlserveError, Unauthorized

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/ui",
)

# (endpoint, label) of the main navigation, in order.
NAVIGATION = (
    ("web.home", "Home"),
    ("web.datasets", "Datasets"),
    ("web.train", "Train"),
    ("web.models", "Models"),
    ("web.predict_picker", "Predict"),
    ("web.api_access", "API"),
)
# Pages that belong to a navigation entry besides its own endpoint.
SECTION_OF = {
    "web.dataset": "web.datasets",
    "web.job": "web.train",
    "web.model": "web.models",
    "web.compare": "web.models",
    "web.version": "web.models",
    "web.predict": "web.predict_picker",
}


@bp.app_template_global()
def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site (``/models?x=1``), else ``/``.

    Absolute URLs, scheme-relative ``//host`` and ``/\\host`` (which browsers read
    as ``//host``) are refused, so ``/login?next=`` cannot send anyone elsewhere
    (OWASP Unvalidated Redirects and Forwards Cheat Sheet).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@bp.context_processor
def layout() -> dict[str, Any]:
    """What the layout needs: navigation, the CSRF token and who is signed in."""
    auth = current_context().settings.auth
    return {
        "navigation": NAVIGATION,
        "section": SECTION_OF.get(request.endpoint or "", request.endpoint),
        "csrf_token": web_session.csrf_token(),
        "signed_in": auth and web_session.claim() is not None,
        "principal": g.get("principal"),
        "auth_on": auth,
    }


@bp.errorhandler(MlserveError)
def page_error(exc: MlserveError) -> WerkzeugResponse | tuple[str, int, dict[str, str]]:
    """Errors of pages, as pages: no valid sign-in goes to the sign-in form; others
    (a role too low, an unknown model, too many requests) are explained."""
    if isinstance(exc, Unauthorized):
        here = request.full_path if request.query_string else request.path
        return redirect(url_for("web.login", next=here))
    headers = {}
    if "retry_after_s" in exc.details:
        headers["Retry-After"] = str(max(1, math.ceil(exc.details["retry_after_s"])))
    page = render_template("error.html", error=exc, title=error_title(exc.status_code))
    return page, exc.status_code, headers


def error_title(status: int) -> str:
    """A page title for an error status."""
    titles = {403: "Not allowed", 404: "Not found", 429: "Too many requests"}
    return titles.get(status, "Something went wrong")
