"""Verified keys during a database outage: trusted for ``auth_outage_grace_s``, no longer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlserve.bootstrap import build_context
from mlserve.context import Context
from mlserve.errors import ServiceUnavailable
from mlserve.security import keys as auth
from mlserve.security.keys import OUTAGE_RETRY_S, KeyCache
from mlserve.settings import Settings
from mlserve.store.database import Database
from tests.security.conftest import Clock

UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
TTL_S, GRACE_S = 5.0, 60.0


@pytest.fixture
def outage(settings: Settings) -> Iterator[tuple[Context, KeyCache, Database]]:
    """A context, a key cache on its database, and an unreachable database to switch to."""
    ctx = build_context(settings)
    if ctx.settings.is_sqlite:
        ctx.db.upgrade()
    down = Database(UNREACHABLE_URL)
    cache = KeyCache(db=ctx.db, secret_key=ctx.secret_key, ttl_s=TTL_S, outage_grace_s=GRACE_S)
    yield ctx, cache, down
    down.dispose()
    ctx.db.dispose()


def test_verified_key_works_through_an_outage_for_the_grace_period(
    outage: tuple[Context, KeyCache, Database], clock: Clock
) -> None:
    ctx, cache, down = outage
    created = auth.create_key(ctx, "predictor")
    assert cache.authenticate(created.secret).role == "predictor"
    cache._db = down  # the database goes away
    for elapsed in (TTL_S + 0.1, TTL_S + OUTAGE_RETRY_S + 1, TTL_S + GRACE_S - 0.1):
        clock.now = 1000.0 + elapsed
        assert cache.authenticate(created.secret).role == "predictor"
    clock.now = 1000.0 + TTL_S + GRACE_S + 0.1
    with pytest.raises(ServiceUnavailable, match="database unavailable"):
        cache.authenticate(created.secret)


def test_grace_zero_refuses_once_the_ttl_has_passed(
    outage: tuple[Context, KeyCache, Database], clock: Clock
) -> None:
    ctx, _, down = outage
    cache = KeyCache(db=ctx.db, secret_key=ctx.secret_key, ttl_s=TTL_S, outage_grace_s=0)
    created = auth.create_key(ctx, "predictor")
    cache.authenticate(created.secret)
    cache._db = down
    clock.now += TTL_S + 0.1
    with pytest.raises(ServiceUnavailable):
        cache.authenticate(created.secret)


@pytest.mark.parametrize("unknown", ["never seen", "wrong secret"])
def test_no_key_is_let_in_by_an_outage(
    outage: tuple[Context, KeyCache, Database], clock: Clock, unknown: str
) -> None:
    ctx, cache, down = outage
    created = auth.create_key(ctx, "admin")
    if unknown == "wrong secret":
        cache.authenticate(created.secret)
    cache._db = down
    clock.now += TTL_S + 0.1
    forged = created.secret[:-4] + "AAAA"
    key = created.secret if unknown == "never seen" else forged
    with pytest.raises((ServiceUnavailable, auth.Unauthorized)):
        cache.authenticate(key)


def test_the_database_is_tried_again_once_back(
    outage: tuple[Context, KeyCache, Database], clock: Clock
) -> None:
    ctx, cache, down = outage
    created = auth.create_key(ctx, "admin")
    cache.authenticate(created.secret)
    cache._db = down
    clock.now += TTL_S + 1
    cache.authenticate(created.secret)
    auth.revoke_key(ctx, created.row.prefix)  # while this process could not see it
    cache._db = ctx.db
    clock.now += OUTAGE_RETRY_S + 0.1
    with pytest.raises(auth.Unauthorized, match="revoked"):
        cache.authenticate(created.secret)
