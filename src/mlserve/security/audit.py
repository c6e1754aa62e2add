"""The audit log: who did what, when, with what outcome."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from mlserve.context import Context
from mlserve.store.orm import AuditEvent

log = logging.getLogger(__name__)


def outcome_of(status: int) -> str:
    """``ok`` (2xx/3xx), ``denied`` (401, 403, 429), ``rejected`` (other 4xx) or ``error``."""
    if status < 400:
        return "ok"
    if status in (401, 403, 429):
        return "denied"
    return "rejected" if status < 500 else "error"


def record(
    ctx: Context,
    *,
    key_prefix: str | None,
    remote_addr: str | None,
    method: str,
    route: str,
    object_id: str | None,
    status: int,
) -> None:
    """Append one event. A failure to write it is logged, never raised (the request is done).

    Parameters
    ----------
    key_prefix : str or None
        Public prefix of the key used (``None``: no valid key, or auth off).
    route : str
        The URL rule (``/api/v1/models/<name>/aliases/<alias>``).
    object_id : str or None
        The rule's values (``housing/production``).
    status : int
        HTTP status answered.
    """
    route, object_id = _printable(route), _printable(object_id) if object_id else None
    event = AuditEvent(
        key_prefix=key_prefix,
        remote_addr=(remote_addr or "")[:64] or None,
        method=method[:8],
        route=route[:200],
        object=object_id[:300] if object_id else None,
        status=status,
        outcome=outcome_of(status),
    )
    try:
        with ctx.db.session() as session:
            session.add(event)
    except Exception as exc:  # the request is answered already; say so loudly
        log.error("audit event not written (%s %s %s): %s", method, route, status, exc)


def _printable(text: str) -> str:
    """``text`` with control characters escaped (NUL cannot be stored in PostgreSQL text)."""
    return "".join(c if ord(c) >= 32 and ord(c) != 127 else f"\\x{ord(c):02x}" for c in text)


def list_events(ctx: Context, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
    """Events, newest first."""
    with ctx.db.session() as session:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        return list(session.scalars(query))


def event_view(event: AuditEvent) -> dict[str, Any]:
    """JSON-ready view of an event."""
    return {
        "id": event.id,
        "at": event.at,
        "key_prefix": event.key_prefix,
        "remote_addr": event.remote_addr,
        "method": event.method,
        "route": event.route,
        "object": event.object,
        "status": event.status,
        "outcome": event.outcome,
    }
