"""Web UI sign-in: a signed session cookie naming an API key, and its CSRF token.

Signing in with an API key (``/login``) stores in Flask's session cookie the key's
public prefix and row id, the time of sign-in and a random CSRF token; never the
key. The cookie is signed (HMAC-SHA256 via itsdangerous) with a key derived from
the server secret, ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` when
``session_cookie_secure``. Each request re-checks the named key against the key
store (:meth:`mlserve.security.keys.KeyCache.verify_session`), so revoking the key
ends the session within ``auth_cache_ttl_s``. The cookie also records the key's
session generation; signing out raises it in the database
(:meth:`~mlserve.security.keys.KeyCache.end_sessions`), so a copy of a signed-out
cookie is refused by every process and replica (within ``auth_cache_ttl_s``, at
once in the one that signed out). Signing out ends every session of that key.

Requests authenticated by the cookie alone that change something must carry the
session's token, in the ``X-CSRF-Token`` header (JavaScript) or the ``csrf_token``
form field (HTML forms): the synchronizer token pattern of the OWASP CSRF
Prevention Cheat Sheet. Requests sending a key header need no token: a browser
never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface

from mlserve.context import Context
from mlserve.errors import CsrfFailed, Unauthorized
from mlserve.security.keys import Principal, principal_of
from mlserve.settings import Settings

COOKIE_NAME = "mlserve_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_LABEL = b"mlserve web session cookie v1"
PREFIX, KEY_ID, SIGNED_IN_AT, CSRF = "prefix", "key_id", "signed_in_at", "csrf"
GENERATION = "generation"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, signed with HMAC-SHA256 rather than SHA-1."""

    digest_method = staticmethod(hashlib.sha256)


@dataclass(frozen=True)
class Claim:
    """What a session cookie says: signed in with key ``prefix`` (row ``key_id``)
    at ``signed_in_at`` (seconds since the epoch), at the key's session
    ``generation`` (raised by each sign-out)."""

    prefix: str
    key_id: str
    signed_in_at: float
    generation: int = 0


def session_secret(server_secret: bytes) -> bytes:
    """The key signing session cookies: HMAC-SHA256 of a fixed label under the
    server secret, so the secret keying stored API key HMACs is not used twice
    (RFC 2104 as a key derivation function, one label per use)."""
    return hmac.new(server_secret, SECRET_LABEL, hashlib.sha256).digest()


def configure(app: Flask, settings: Settings, server_secret: bytes) -> None:
    """Set ``app``'s secret key and session cookie options."""
    app.secret_key = session_secret(server_secret)
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_max_age_s),
    )


def sign_in(prefix: str, key_id: str, generation: int = 0) -> None:
    """Start a session for the key ``prefix`` at its session ``generation``: a new
    cookie and a new CSRF token (nothing of the signed-out session is kept, against
    session fixation)."""
    session.clear()
    session.permanent = True
    session.update(
        {
            PREFIX: prefix,
            KEY_ID: key_id,
            SIGNED_IN_AT: time.time(),
            GENERATION: generation,
            CSRF: secrets.token_urlsafe(32),
        }
    )


def sign_out() -> None:
    """Clear this request's session (the answer clears the cookie).

    Ending the session for copies of the cookie too is
    :meth:`mlserve.security.keys.KeyCache.end_sessions`.
    """
    session.clear()


def claim() -> Claim | None:
    """The sign-in the request's session cookie holds, ``None`` if there is none."""
    prefix, key_id, at = session.get(PREFIX), session.get(KEY_ID), session.get(SIGNED_IN_AT)
    generation = session.get(GENERATION, 0)
    if (
        isinstance(prefix, str)
        and isinstance(key_id, str)
        and isinstance(at, int | float)
        and type(generation) is int
    ):
        return Claim(prefix, key_id, float(at), generation)
    return None


def check_age(found: Claim, max_age_s: float) -> None:
    """Refuse a sign-in older than ``max_age_s`` seconds, ending the session.

    Raises
    ------
    Unauthorized
    """
    if not 0 <= time.time() - found.signed_in_at <= max_age_s:
        sign_out()
        raise Unauthorized("the session has expired: sign in again", {"key_prefix": found.prefix})


def authenticate(ctx: Context, found: Claim, remote_addr: str | None) -> Principal:
    """Authenticate a session's sign-in and count it against the rate limits.

    The session ends (its cookie is cleared) when its key is no longer in force
    or the sign-in is older than ``session_max_age_s``; that counts as a failed
    authentication of ``remote_addr``, as a refused key does.

    Raises
    ------
    Unauthorized, TooManyRequests
    """
    try:
        check_age(found, ctx.settings.session_max_age_s)
        row = ctx.keys.verify_session(found.prefix, found.key_id, found.generation)
        principal = principal_of(row)
    except Unauthorized:
        sign_out()
        ctx.limiter.refuse_blocked(remote_addr)
        ctx.limiter.check_auth_failure(remote_addr)
        raise
    ctx.limiter.check(principal.prefix, remote_addr)
    return principal


def csrf_token() -> str:
    """The session's CSRF token, created (with a signed-out session) if it has none."""
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


def check_csrf() -> None:
    """Check the request's CSRF token (header, else form field) against the session's.

    Raises
    ------
    CsrfFailed
        No token sent, none in the session, or a different one.
    """
    expected = session.get(CSRF)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = request.form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not sent or not _same(sent, expected):
        raise CsrfFailed(
            f"a change made through a signed-in session needs its CSRF token in the "
            f"{CSRF_HEADER} header or the {CSRF_FIELD} form field",
            {"field": CSRF_FIELD},
        )


def _same(sent: str, expected: str) -> bool:
    """Constant-time comparison of two tokens (any text: compared as UTF-8 bytes)."""
    return hmac.compare_digest(sent.encode(), expected.encode())
