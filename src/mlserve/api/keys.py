"""/api/v1/keys and /api/v1/audit: API key administration and the audit log (admin only)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import g

from mlserve.api.current import current_context
from mlserve.api.schemas import (
    AuditListOut,
    CreatedKeyOut,
    KeyIn,
    KeyListOut,
    KeyOut,
    PageIn,
)
from mlserve.api.security import requires
from mlserve.security import audit
from mlserve.security import keys as auth

bp = APIBlueprint("keys", __name__, url_prefix="/api/v1", tag="keys")


@bp.post("/keys")
@requires("admin")
@bp.input(KeyIn, location="json")
@bp.output(CreatedKeyOut, status_code=201)
@bp.doc(summary="Create an API key (the key is in this answer only)")
def create_key(json_data: KeyIn) -> dict[str, Any]:
    creator = g.get("principal")
    created = auth.create_key(
        current_context(),
        json_data.role,
        json_data.name,
        json_data.expires_in_days,
        created_by=creator.prefix if creator else None,
    )
    return {**auth.key_view(created.row), "key": created.secret}


@bp.get("/keys")
@requires("admin")
@bp.output(KeyListOut)
@bp.doc(summary="List API keys (prefixes and roles; secrets are never stored)")
def list_keys() -> dict[str, Any]:
    return {"keys": [auth.key_view(k) for k in auth.list_keys(current_context())]}


@bp.delete("/keys/<prefix>")
@requires("admin")
@bp.output(KeyOut)
@bp.doc(summary="Revoke an API key", responses={404: "unknown key"})
def revoke_key(prefix: str) -> dict[str, Any]:
    return auth.key_view(auth.revoke_key(current_context(), prefix))


@bp.get("/audit")
@requires("admin")
@bp.input(PageIn, location="query")
@bp.output(AuditListOut)
@bp.doc(summary="The audit log: every mutating request, newest first")
def list_audit(query_data: dict[str, int]) -> dict[str, Any]:
    ctx = current_context()
    rows = audit.list_events(ctx, query_data["limit"], query_data["offset"])
    return {"events": [audit.event_view(event) for event in rows]}
