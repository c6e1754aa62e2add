"""Sign in with an API key, sign out."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from mlserve.api import session as web_session
from mlserve.api.current import current_context
from mlserve.api.security import public
from mlserve.context import Context
from mlserve.errors import CsrfFailed, Unauthorized
from mlserve.security.keys import Principal
from mlserve.web.blueprint import bp, safe_next


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> WerkzeugResponse | tuple[str, int]:
    """The sign-in form; posted with a valid key, a session and a redirect to ``next``."""
    ctx: Context = current_context()
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return form(next_url, None, 200)
    if not ctx.settings.auth:
        return redirect(next_url, 303)
    try:
        web_session.check_csrf()
    except CsrfFailed:
        return form(next_url, "This sign-in form has expired: sign in again.", 403)
    remote_addr = request.remote_addr
    try:
        row = ctx.keys.verify(request.form.get("api_key", "").strip())
    except Unauthorized as exc:
        g.claimed_prefix = exc.details.get("key_prefix")
        ctx.limiter.refuse_blocked(remote_addr)  # locked out: 429, a valid key never is
        ctx.limiter.check_auth_failure(remote_addr)
        return form(next_url, exc.message, 401)
    ctx.limiter.check(row.prefix, remote_addr)
    web_session.sign_in(row.prefix, row.id, row.session_generation or 0)
    g.principal = Principal(row.prefix, row.role)  # for the audit log
    return redirect(next_url, 303)


@bp.post("/logout")
@public
def logout() -> WerkzeugResponse:
    """End the session on the server side (with its CSRF token, so no other site can
    sign anyone out): copies of the cookie stop working too."""
    claim = web_session.claim()
    if claim is not None:
        g.claimed_prefix = claim.prefix
        web_session.check_csrf()
        current_context().keys.end_sessions(claim.prefix)
    web_session.sign_out()
    return redirect(url_for("web.login"), 303)


def form(next_url: str, error: str | None, status: int) -> tuple[str, int]:
    """The sign-in page, with ``error`` next to the key field."""
    return render_template("login.html", next_url=next_url, error=error), status
