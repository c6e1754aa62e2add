"""One server secret for the whole cluster: its fingerprint is recorded in the database.

API keys are stored as HMACs keyed with the server secret (:mod:`.keys`), so a process
with another secret answers 401 to keys that its neighbours accept. The first process
to start on a database records a fingerprint of its secret there (table
``cluster_setting``, row ``secret_fingerprint``); every later one compares its own and
refuses to start when they differ (:func:`check_secret_fingerprint`).

The fingerprint is an HMAC-SHA256 of a fixed label keyed with the secret (RFC 2104):
it identifies the secret without revealing it, and differs from every key HMAC.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.exc import IntegrityError

from mlserve.context import Context
from mlserve.errors import MlserveError
from mlserve.store.orm import ClusterSetting

FINGERPRINT_SETTING = "secret_fingerprint"
FINGERPRINT_LABEL = b"mlserve secret fingerprint v1"


class SecretKeyMismatch(MlserveError):
    """This process's server secret is not the one the database was first used with."""

    status_code = 500
    code = "secret_key_mismatch"


def secret_fingerprint(secret_key: bytes) -> str:
    """HMAC-SHA256 of :data:`FINGERPRINT_LABEL` under ``secret_key``, 64 hex characters."""
    return hmac.new(secret_key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def check_secret_fingerprint(ctx: Context) -> None:
    """Record this process's secret fingerprint if none is, else compare with it.

    Concurrent first starts agree: the row's primary key lets one insert win, and the
    others compare with it.

    Raises
    ------
    SecretKeyMismatch
        The database records another secret's fingerprint.
    ServiceUnavailable
        The database is unreachable or not migrated (nothing checked).
    """
    mine = secret_fingerprint(ctx.secret_key)
    try:
        with ctx.db.session() as session:
            row = session.get(ClusterSetting, FINGERPRINT_SETTING)
            if row is None:
                session.add(ClusterSetting(name=FINGERPRINT_SETTING, value=mine))
                return
            stored = row.value
    except IntegrityError:  # another process recorded its fingerprint first
        with ctx.db.session() as session:
            stored = session.get_one(ClusterSetting, FINGERPRINT_SETTING).value
    if not hmac.compare_digest(stored, mine):
        raise SecretKeyMismatch(
            f"MLSERVE_SECRET_KEY differs from the one this database was first used with "
            f"(fingerprint {stored[:8]}... stored, {mine[:8]}... here): every replica and "
            "worker must share one secret (docs/deployment.md)",
            {"stored": stored[:8], "here": mine[:8]},
        )
