"""API keys and roles.

A key reads ``mls_<prefix>_<secret>``: the prefix (8 characters, public) names the key
in listings and the audit log; the secret is ``secrets.token_urlsafe(32)`` (256 bits).
Only an HMAC-SHA256 of the whole key, keyed with the server secret
(``MLSERVE_SECRET_KEY``), is stored, so a copy of the database does not give working
keys; it is compared in constant time (``hmac.compare_digest``). The key itself is
shown once, when created (the scheme of GitHub and Stripe tokens).

Roles grant permissions; every route needs one permission (see :data:`ROLES`).
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from mlserve.context import Context
from mlserve.errors import (
    Forbidden,
    MlserveError,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from mlserve.store.database import Database
from mlserve.store.orm import ApiKey, as_utc, utcnow

log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"mls_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})")
PERMISSIONS = ("read", "predict", "train", "admin")
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "predictor": frozenset({"predict"}),
    "trainer": frozenset({"read", "predict", "train"}),
    "admin": frozenset(PERMISSIONS),
}
LAST_USED_WRITE_INTERVAL_S = 60.0
OUTAGE_RETRY_S = 1.0
"""During a database outage, the key cache tries the database at most this often (s)."""
PREFIX_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Principal:
    """Who made a request.

    Attributes
    ----------
    prefix : str or None
        The key's public prefix; ``None`` when authentication is off.
    role : str
    """

    prefix: str | None
    role: str

    def allows(self, permission: str) -> bool:
        """Whether this principal's role grants ``permission``."""
        return permission in ROLES[self.role]


ANONYMOUS_ADMIN = Principal(None, "admin")


def principal_of(row: ApiKey) -> Principal:
    """The principal holding the (verified) key ``row``."""
    return Principal(row.prefix, row.role)


@dataclass(frozen=True, kw_only=True)
class CreatedKey:
    """A new key: ``secret`` is the whole key, shown once and never stored."""

    secret: str
    row: ApiKey


def key_hmac(secret_key: bytes, key: str) -> str:
    """HMAC-SHA256 of ``key`` under the server secret, as 64 hex characters (RFC 2104)."""
    return hmac.digest(secret_key, key.encode(), "sha256").hex()  # one C call


def create_key(
    ctx: Context,
    role: str,
    name: str = "",
    expires_in_days: float | None = None,
    created_by: str | None = None,
) -> CreatedKey:
    """Create a key of ``role``.

    Parameters
    ----------
    role : {"viewer", "predictor", "trainer", "admin"}
    name : str
        What the key is for (at most 100 characters).
    expires_in_days : float, optional
        Lifetime in days; ``None`` never expires.
    created_by : str, optional
        Prefix of the key that created this one.

    Raises
    ------
    ValidationFailed
        Unknown role, name too long, or a lifetime that is not positive.
    """
    if role not in ROLES:
        raise ValidationFailed(
            f"unknown role {role!r}; choose one of {sorted(ROLES)}", {"field": "role"}
        )
    if len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationFailed(
            "name must be at most 100 characters, without control characters", {"field": "name"}
        )
    if expires_in_days is not None and not 0 < expires_in_days <= 36_500:
        raise ValidationFailed(
            "expires_in_days must be in (0, 36500]", {"field": "expires_in_days"}
        )
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))
    key = f"mls_{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiKey(
        prefix=prefix,
        key_hmac=key_hmac(ctx.secret_key, key),
        role=role,
        name=name,
        created_by=created_by,
        expires_at=expires_at,
    )
    with ctx.db.session() as session:
        session.add(row)
    return CreatedKey(secret=key, row=row)


def count_keys(ctx: Context) -> int:
    """Number of keys ever created (revoked and expired included)."""
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)


def list_keys(ctx: Context) -> list[ApiKey]:
    """Every key, newest first (no secrets: they are not stored)."""
    with ctx.db.session() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def revoke_key(ctx: Context, prefix: str) -> ApiKey:
    """Revoke the key with ``prefix``; it stops working in every process within
    ``auth_cache_ttl_s`` (at once in this one).

    Raises
    ------
    NotFound
    """
    with ctx.db.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None:
            raise NotFound.of("api key", prefix)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    ctx.keys.forget(prefix)
    return row


def key_view(row: ApiKey) -> dict[str, Any]:
    """JSON-ready view of a key (never its secret or HMAC)."""
    return {
        "prefix": row.prefix,
        "role": row.role,
        "name": row.name,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }


def bearer_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return api_key_header.strip() if api_key_header else None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Facts:
    """What verifying a key needs from its row, read once per fetch (ORM attributes
    cost more than the checks).

    ``expires_at`` is the expiry in UTC (``None``: never).
    """

    row: ApiKey
    prefix: str
    key_hmac: str
    revoked: bool
    expires_at: datetime | None
    principal: Principal

    @classmethod
    def of(cls, row: ApiKey) -> _Facts:
        expires = row.expires_at
        return cls(
            row=row,
            prefix=row.prefix,
            key_hmac=row.key_hmac,
            revoked=row.revoked_at is not None,
            expires_at=None if expires is None else as_utc(expires),
            principal=principal_of(row),
        )


class KeyCache:
    """Verified keys of one process, so a request costs no database query.

    A key's row is read once and kept for ``ttl_s`` seconds: a revocation or
    expiry reaches other processes within that time (this process forgets it at
    once). ``last_used_at`` is written at most once a minute per key.

    Parameters
    ----------
    db : Database
        Where key rows are read (and ``last_used_at`` written).
    secret_key : bytes
        The server secret keying the stored HMACs.
    ttl_s : float
        How long a key's row is trusted before it is read again, in seconds.
    outage_grace_s : float
        While the database is unreachable, a row read less than ``ttl_s +
        outage_grace_s`` seconds ago is still trusted (a key verified before the
        outage keeps predicting); the database is tried again at most once per
        :data:`OUTAGE_RETRY_S` meanwhile.
    """

    def __init__(
        self, *, db: Database, secret_key: bytes, ttl_s: float, outage_grace_s: float = 0.0
    ) -> None:
        self._db = db
        self._secret_key = secret_key
        self._ttl_s = ttl_s
        self._outage_grace_s = outage_grace_s
        self._outage_until = 0.0
        self._rows: dict[str, tuple[float, _Facts | None]] = {}
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def authenticate(self, key: str | None) -> Principal:
        """The principal holding ``key``.

        Raises
        ------
        Unauthorized
            No key, a malformed or unknown key, a revoked or expired one.
        """
        return self._verified(key).principal

    def verify(self, key: str | None) -> ApiKey:
        """The row of ``key``, once checked valid (its HMAC, revocation and expiry).

        Raises
        ------
        Unauthorized
            No key, a malformed or unknown key, a revoked or expired one.
        """
        return self._verified(key).row

    def _verified(self, key: str | None) -> _Facts:
        if not key:
            raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
        match = KEY_PATTERN.fullmatch(key)
        if match is None:
            raise Unauthorized("invalid API key")
        facts = self._row(match.group(1))
        if facts is None or not hmac.compare_digest(
            facts.key_hmac, key_hmac(self._secret_key, key)
        ):
            raise Unauthorized("invalid API key")
        self._check_in_force(facts)
        return facts

    def verify_session(self, prefix: str, key_id: str, generation: int = 0) -> ApiKey:
        """The row of the key a web session signed in with (``prefix``, row ``key_id``).

        The session holds no secret: its cookie is signed by the server, and the
        key it names must still be in force (same cache and delay as keys), at
        the session ``generation`` the cookie recorded at sign-in.

        Raises
        ------
        Unauthorized
            The key no longer exists, was revoked or has expired, or the
            session was signed out (:meth:`end_sessions`).
        """
        facts = self._row(prefix)
        if facts is None or not hmac.compare_digest(facts.row.id.encode(), key_id.encode()):
            raise Unauthorized("the API key of this session no longer exists")
        if (facts.row.session_generation or 0) != generation:
            raise Unauthorized("this session was signed out", {"key_prefix": prefix})
        self._check_in_force(facts)
        return facts.row

    def end_sessions(self, prefix: str) -> None:
        """End every web session signed in with key ``prefix`` (sign-out).

        Raises the key's session generation in the database: every process
        refuses the older cookies within ``auth_cache_ttl_s``, this one at once.
        """
        with self._db.session() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.prefix == prefix)
                .values(session_generation=ApiKey.session_generation + 1)
            )
        self.forget(prefix)

    def _check_in_force(self, facts: _Facts) -> None:
        """Refuse a revoked or expired key; note its use otherwise."""
        if facts.revoked:
            raise Unauthorized("this API key was revoked", {"key_prefix": facts.prefix})
        if facts.expires_at is not None and facts.expires_at <= utcnow():
            raise Unauthorized("this API key has expired", {"key_prefix": facts.prefix})
        self._touch(facts.prefix)

    def forget(self, prefix: str) -> None:
        """Drop ``prefix`` so its row is read again on next use."""
        with self._lock:
            self._rows.pop(prefix, None)

    def _row(self, prefix: str) -> _Facts | None:
        cached = self._rows.get(prefix)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        in_grace = (
            cached is not None
            and cached[1] is not None
            and now - cached[0] < self._ttl_s + self._outage_grace_s
        )
        if in_grace and now < self._outage_until:
            return cached[1] if cached is not None else None
        try:
            with self._db.session() as session:
                row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        except ServiceUnavailable:
            self._outage_until = time.monotonic() + OUTAGE_RETRY_S
            if in_grace and cached is not None:
                log.warning("database unavailable: key %s trusted from the cache", prefix)
                return cached[1]
            raise
        with self._lock:
            if len(self._rows) > 10_000:  # unknown prefixes must not grow it forever
                self._rows.clear()
            facts = None if row is None else _Facts.of(row)
            self._rows[prefix] = (time.monotonic(), facts)
        return facts

    def _touch(self, prefix: str) -> None:
        last = self._written.get(prefix)
        if last is not None and time.monotonic() - last < LAST_USED_WRITE_INTERVAL_S:
            return
        self._written[prefix] = time.monotonic()
        try:
            with self._db.session() as session:
                row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
                if row is not None:
                    row.last_used_at = utcnow()
        except MlserveError as exc:  # bookkeeping: never fail a request for it
            log.warning("last_used_at of key %s not written: %s", prefix, exc.message)


def authorize(principal: Principal, permission: str) -> None:
    """Check that ``principal`` may use a route needing ``permission``.

    Raises
    ------
    Forbidden
        The role does not grant it.
    """
    if not principal.allows(permission):
        raise Forbidden(
            f"role {principal.role!r} may not do this (needs {permission!r})",
            {"role": principal.role, "permission": permission},
        )
