"""Who may call what: every route needs one permission; mutating requests are audited.

Views declare their permission with :func:`requires` (or :func:`public`); routes
registered by APIFlask and Flask themselves get theirs from :data:`BUILTIN`. A route
with no declared permission is refused to everyone but admins (fail closed), and
``tests/api/test_security.py`` walks the URL map so that none ships without one.

A request is authenticated by its key header (``Authorization: Bearer`` or
``X-API-Key``) or, when it sends neither, by the web UI's session cookie
(:mod:`mlserve.api.session`); changes made through the session need its CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from mlserve.api import session as web_session
from mlserve.api.current import context_of, current_context
from mlserve.context import Context
from mlserve.errors import Unauthorized
from mlserve.security import audit
from mlserve.security.keys import (
    ANONYMOUS_ADMIN,
    Principal,
    authorize,
    bearer_key,
)

View = TypeVar("View", bound=Callable[..., Any])
PUBLIC = "public"
DOCS = "docs"  # public or read, as settings.public_docs says
METRICS = "metrics"  # public or read, as settings.public_metrics says
ATTRIBUTE = "_mlserve_permission"
BUILTIN: dict[str, str] = {
    "static": PUBLIC,
    "openapi.spec": DOCS,
    "openapi.docs": DOCS,
    "openapi.swagger_ui_oauth_redirect": DOCS,
    "docs_assets.asset": DOCS,
    "web.static": PUBLIC,  # the web UI's scripts and stylesheet
}
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_AUDITED = frozenset(
    {
        "predict.predict_v1",
        "predict.predict_kserve",
        "predict.predict_csv",
        "v2.infer",
        "v2.infer_version",
    }
)


def requires(permission: str) -> Callable[[View], View]:
    """Declare the permission a view needs (``read``, ``predict``, ``train``, ``admin``)."""

    def mark(view: View) -> View:
        setattr(view, ATTRIBUTE, permission)
        return view

    return mark


def public(view: View) -> View:
    """Declare a view open to anyone (liveness and readiness)."""
    setattr(view, ATTRIBUTE, PUBLIC)
    return view


def permission_of(app: Flask, endpoint: str) -> str | None:
    """The permission ``endpoint`` declares, ``None`` if it declares none."""
    if endpoint in BUILTIN:
        return BUILTIN[endpoint]
    return getattr(app.view_functions.get(endpoint), ATTRIBUTE, None)


def required_permission(app: Flask, endpoint: str) -> str:
    """The permission a request to ``endpoint`` needs under the app's settings.

    Undeclared routes need ``admin`` (fail closed); the docs are public or ``read``
    as ``public_docs`` says, ``/metrics`` as ``public_metrics`` says.
    """
    permission = permission_of(app, endpoint) or "admin"
    if permission == DOCS:
        return PUBLIC if context_of(app).settings.public_docs else "read"
    if permission == METRICS:
        return PUBLIC if context_of(app).settings.public_metrics else "read"
    return permission


def principal_for(
    ctx: Context,
    authorization: str | None,
    api_key: str | None,
    remote_addr: str | None,
    count_failure: bool = True,
) -> Principal:
    """Authenticate the request's key and count it against the rate limits.

    Anyone is an admin when auth is off (rate limits then apply per address).

    Raises
    ------
    Unauthorized
        No valid key (counted as a failed authentication of ``remote_addr``).
    TooManyRequests
        Over a rate limit, or no valid key from an address that failed
        authentication too often. The lockout never refuses a valid key: behind
        a proxy without ``trusted_proxies``, every client shares one address.

    Notes
    -----
    The fast lane passes ``count_failure=False``: a request it declines is
    replayed through Flask, which counts the failure once. A request it counts
    and then fails (a 422, say) is counted again by the replay.
    """
    if not ctx.settings.auth:
        ctx.limiter.check(None, remote_addr)
        return ANONYMOUS_ADMIN
    try:
        principal: Principal = ctx.keys.authenticate(bearer_key(authorization, api_key))
    except Unauthorized:
        ctx.limiter.refuse_blocked(remote_addr)  # locked out: 429 rather than 401
        if count_failure:
            ctx.limiter.check_auth_failure(remote_addr)
        raise
    ctx.limiter.check(principal.prefix, remote_addr)
    return principal


def key_prefix() -> str | None:
    """The prefix of the key (or session's key) the current request authenticated with;
    ``None`` with auth off or on a public route."""
    principal: Principal | None = g.get("principal")
    return principal.prefix if principal is not None else None


def check_access() -> None:
    """``before_request`` hook: authenticate and authorize for the matched route.

    Raises
    ------
    Unauthorized, Forbidden
    CsrfFailed
        A change authenticated by the session cookie without the session's token.
    """
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: Flask answers 404 or 405
        return
    ctx: Context = current_context()
    permission = required_permission(current_app, endpoint)
    if permission == PUBLIC:
        return
    try:
        principal = authenticate_request(ctx)
    except Unauthorized as exc:  # a revoked or expired key still names itself in the audit
        g.claimed_prefix = exc.details.get("key_prefix")
        raise
    g.principal = principal
    if g.get("by_session") and request.method in MUTATING:
        web_session.check_csrf()
    authorize(principal, permission)


def authenticate_request(ctx: Context) -> Principal:
    """The request's principal: from its key header, else from its session cookie.

    Raises
    ------
    Unauthorized, TooManyRequests
    """
    authorization = request.headers.get("Authorization")
    api_key = request.headers.get("X-API-Key")
    if ctx.settings.auth and authorization is None and api_key is None:
        claim = web_session.claim()
        if claim is not None:
            g.by_session = True
            return web_session.authenticate(ctx, claim, request.remote_addr)
    return principal_for(ctx, authorization, api_key, request.remote_addr)


def record_mutation(response: Response) -> Response:
    """``after_request`` hook: one audit event per mutating request to a route, whatever
    its outcome.

    Not recorded: predictions (they change nothing), requests matching no route
    (404/405), and rate-limited requests without a key, so that anyone without a
    key cannot grow the log at will.
    """
    if request.method not in MUTATING or request.endpoint in NOT_AUDITED:
        return response
    if request.url_rule is None:
        return response
    prefix = key_prefix() or g.get("claimed_prefix")
    if response.status_code == 429 and prefix is None:
        return response
    audit.record(
        current_context(),
        key_prefix=prefix,
        remote_addr=request.remote_addr,
        method=request.method,
        route=request.url_rule.rule,
        object_id=_object_of(response),
        status=response.status_code,
    )
    return response


# Headers on every answer (OWASP Secure Headers Project). Scripts run only from
# mlserve's own files (the web UI has no inline script); the Swagger UI page alone
# needs its inline bootstrap script, and gets DOCS_CSP. Styles may be inline (Plotly
# and Swagger UI set them).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
DOCS_PAGES = frozenset({"openapi.docs", "openapi.swagger_ui_oauth_redirect"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CSP,
}


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook: the headers of :data:`SECURITY_HEADERS`, and no caching
    of API answers or pages (they may carry data a key was needed to see)."""
    if request.endpoint in DOCS_PAGES:
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/docs"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _object_of(response: Response) -> str | None:
    """What the request acted on: the path's values, else what it created (an id, a key prefix)."""
    from_path = "/".join(str(v) for v in (request.view_args or {}).values())
    if from_path:
        return from_path
    if response.status_code < 300 and response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            created = body.get("id") or body.get("prefix")
            return str(created) if created is not None else None
    return None


def register_security(app: Flask) -> None:
    """Install the access check, the audit hook and the security headers on ``app``."""
    app.before_request(check_access)
    app.after_request(record_mutation)
    app.after_request(add_security_headers)


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def document_security(app: Flask, spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Add the key schemes, each operation's requirement and its 401/403 answers."""
    if isinstance(spec, str):  # only with SPEC_PROCESSOR_PASS_OBJECT, which mlserve leaves off
        return spec
    spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    requirement: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}]
    permissions = {
        (rule.rule, method.lower()): required_permission(app, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
    }
    for path, item in spec.get("paths", {}).items():
        rule = _rule_of(path)
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _document_body_errors(operation)
            permission = permissions.get((rule, method), "admin")
            if permission == PUBLIC or not context_of(app).settings.auth:
                operation["security"] = []
                continue
            operation["security"] = requirement
            operation["description"] = (
                f"{operation.get('description', '')}\n\nNeeds the `{permission}` permission."
            ).strip()
            _document_errors(operation, ACCESS_ERRORS)
    return spec


ACCESS_ERRORS = (
    ("401", "no valid API key"),
    ("403", "role too low"),
    ("429", "rate limit or jobs in flight exceeded (see Retry-After)"),
)
BODY_ERRORS = (
    ("400", "malformed JSON"),
    ("413", "body too large"),
    ("415", "body is not application/json"),
)


def _document_body_errors(operation: dict[str, Any]) -> None:
    """Operations taking a JSON body can also answer 400, 413 and 415."""
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        _document_errors(operation, BODY_ERRORS)


def _document_errors(operation: dict[str, Any], errors: tuple[tuple[str, str], ...]) -> None:
    """Add each ``(status, description)`` answer with the error envelope, unless documented."""
    for status, text in errors:
        operation["responses"].setdefault(
            status, {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
        )


def _rule_of(path: str) -> str:
    """OpenAPI path ``/x/{name}`` back to the Flask rule ``/x/<name>``."""
    if path.endswith(":predict"):
        return "/v1/models/<name>:predict"
    rule = path.replace("{", "<").replace("}", ">")
    return rule.replace("<version>", "<int:version>")
