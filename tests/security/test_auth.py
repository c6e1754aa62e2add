"""API keys: format, what is stored (an HMAC only), the server secret, the per-process cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from mlserve.bootstrap import build_context, load_secret_key
from mlserve.context import Context
from mlserve.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from mlserve.security import keys as auth
from mlserve.security.keys import KEY_PATTERN, PREFIX_ALPHABET, Principal
from mlserve.settings import Settings
from mlserve.store.orm import ApiKey, as_utc, utcnow
from tests.security.conftest import Clock

# --------------------------------------------------------------------------- helpers


def make_ctx(settings: Settings, **overrides: Any) -> Context:
    """A Context of its own (another process, as far as the key cache knows)."""
    ctx = build_context(Settings(**{**settings.model_dump(), **overrides}))
    if ctx.settings.is_sqlite:
        ctx.db.upgrade()
    return ctx


@pytest.fixture
def contexts() -> Iterator[list[Context]]:
    """Contexts a test builds with :func:`make_ctx`; their engines are disposed after it."""
    made: list[Context] = []
    yield made
    for ctx in made:
        ctx.db.dispose()


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    """Collect the SQL statements ``ctx`` sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.strip().split()[0].upper())

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)


def stored_row(ctx: Context, prefix: str) -> ApiKey:
    with ctx.db.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    assert row is not None
    return row


# --------------------------------------------------------------------------- key format


def test_prefix_alphabet_has_no_lookalike_characters() -> None:
    assert len(PREFIX_ALPHABET) == len(set(PREFIX_ALPHABET)) == 57
    assert not set("0O1lI") & set(PREFIX_ALPHABET)
    assert set(PREFIX_ALPHABET) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    )


def test_keys_have_the_documented_format_and_entropy(ctx: Context) -> None:
    created = [auth.create_key(ctx, "viewer") for _ in range(60)]
    for key in created:
        match = KEY_PATTERN.fullmatch(key.secret)
        assert match is not None, key.secret
        prefix, secret = match.groups()
        assert prefix == key.row.prefix
        assert len(prefix) == 8 and set(prefix) <= set(PREFIX_ALPHABET)
        assert len(secret) == 43
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256 random bits
    assert len({k.secret for k in created}) == len({k.row.prefix for k in created}) == 60
    # 480 draws from 57 characters: a fixed or narrowed alphabet would show here
    # (probability that a uniform draw misses more than 12 characters: below 1e-9).
    used = {c for k in created for c in k.row.prefix}
    assert len(used) >= 45


# --------------------------------------------------------------------------- only an HMAC is stored


def test_database_row_holds_the_hmac_and_never_the_key(ctx: Context) -> None:
    created = auth.create_key(ctx, "trainer", name="ci")
    secret_part = created.secret.split("_", 2)[2]
    with ctx.db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM api_key WHERE prefix = :p"), {"p": created.row.prefix}
        ).one()
    values = [str(v) for v in row]
    assert not any(created.secret in v or secret_part in v for v in values)
    expected = hmac.new(ctx.secret_key, created.secret.encode(), hashlib.sha256).hexdigest()
    assert row._mapping["key_hmac"] == expected
    assert len(expected) == 64
    # the HMAC is keyed: a plain SHA-256 of the key (a rainbow-table target) is not it
    assert expected != hashlib.sha256(created.secret.encode()).hexdigest()


@pytest.mark.sqlite_only(reason="reads the SQLite database files under the home")
def test_database_files_do_not_contain_the_secret(ctx: Context) -> None:
    created = auth.create_key(ctx, "admin")
    ctx.keys.authenticate(created.secret)  # also writes last_used_at
    secret_part = created.secret.split("_", 2)[2].encode()
    files = list(ctx.settings.home.glob("mlserve.db*"))
    assert files
    content = b"".join(path.read_bytes() for path in files)
    assert created.row.prefix.encode() in content  # the scan does see the row
    assert secret_part not in content


def test_key_made_under_one_secret_fails_under_another(
    settings: Settings, contexts: list[Context]
) -> None:
    first = make_ctx(settings, secret_key="first server secret")
    contexts.append(first)
    created = auth.create_key(first, "admin")
    other = make_ctx(settings, secret_key="another server secret")
    same = make_ctx(settings, secret_key="first server secret")
    contexts.extend([other, same])
    with pytest.raises(Unauthorized, match=r"^invalid API key$"):
        other.keys.authenticate(created.secret)
    assert same.keys.authenticate(created.secret) == Principal(created.row.prefix, "admin")
    assert stored_row(first, created.row.prefix).key_hmac == auth.key_hmac(
        b"first server secret", created.secret
    )


# --------------------------------------------------------------------------- the server secret


@pytest.fixture
def bare_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLSERVE_SECRET_KEY", raising=False)
    home = tmp_path / "secret-home"
    home.mkdir()
    return home


def test_secret_key_file_is_created_once_with_mode_600(bare_home: Path) -> None:
    previous = os.umask(0)  # the mode must not depend on a permissive umask
    try:
        first = load_secret_key(Settings(home=bare_home))
    finally:
        os.umask(previous)
    path = bare_home / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and bytes.fromhex(first.decode())
    written = path.stat().st_mtime_ns
    assert load_secret_key(Settings(home=bare_home)) == first
    assert path.stat().st_mtime_ns == written
    assert sorted(p.name for p in bare_home.iterdir()) == ["secret_key"]  # no temporary left


def test_secret_key_files_differ_between_homes(tmp_path: Path, bare_home: Path) -> None:
    other = tmp_path / "other-home"
    other.mkdir()
    assert load_secret_key(Settings(home=bare_home)) != load_secret_key(Settings(home=other))


def test_environment_secret_wins_and_writes_no_file(
    bare_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_SECRET_KEY", "from-the-environment")
    assert load_secret_key(Settings(home=bare_home)) == b"from-the-environment"
    assert not (bare_home / "secret_key").exists()


def test_environment_secret_wins_over_an_existing_file(
    bare_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = load_secret_key(Settings(home=bare_home))
    monkeypatch.setenv("MLSERVE_SECRET_KEY", "from-the-environment")
    assert load_secret_key(Settings(home=bare_home)) == b"from-the-environment" != from_file


# --------------------------------------------------------------------------- KeyCache


def test_verified_key_costs_no_query_within_ttl(ctx: Context, clock: Clock) -> None:
    created = auth.create_key(ctx, "viewer")
    with statements(ctx) as first:
        ctx.keys.authenticate(created.secret)
    assert "SELECT" in first and first.count("UPDATE") == 1  # the row, then last_used_at
    clock.now += ctx.settings.auth_cache_ttl_s - 0.01
    with statements(ctx) as again:
        for _ in range(5):
            assert ctx.keys.authenticate(created.secret).role == "viewer"
    assert again == []
    clock.now += 0.02
    with statements(ctx) as expired:
        ctx.keys.authenticate(created.secret)
    assert expired == ["SELECT"]  # the row again; last_used_at is recent


def test_unknown_prefix_is_cached_too(ctx: Context, clock: Clock) -> None:
    forged = "mls_AAAAAAAA_" + "x" * 43
    for expected_queries in (1, 0):
        with statements(ctx) as seen, pytest.raises(Unauthorized, match=r"^invalid API key$"):
            ctx.keys.authenticate(forged)
        assert len(seen) == expected_queries


def test_malformed_key_costs_no_query(ctx: Context) -> None:
    with statements(ctx) as seen, pytest.raises(Unauthorized, match=r"^invalid API key$"):
        ctx.keys.authenticate("mls_AAAAAAAA_short")
    assert seen == []


def test_revocation_elsewhere_reaches_this_process_after_ttl(
    settings: Settings, contexts: list[Context], clock: Clock
) -> None:
    here = make_ctx(settings, auth_cache_ttl_s=5.0)
    there = make_ctx(settings)
    contexts.extend([here, there])
    created = auth.create_key(there, "admin")
    assert here.keys.authenticate(created.secret).role == "admin"
    auth.revoke_key(there, created.row.prefix)
    clock.now += 4.9
    assert here.keys.authenticate(created.secret).role == "admin"  # the documented delay
    clock.now += 0.2
    with pytest.raises(Unauthorized, match=r"^this API key was revoked$") as info:
        here.keys.authenticate(created.secret)
    assert info.value.details == {"key_prefix": created.row.prefix}


def test_revocation_elsewhere_is_immediate_with_ttl_zero(
    settings: Settings, contexts: list[Context]
) -> None:
    here = make_ctx(settings, auth_cache_ttl_s=0)
    there = make_ctx(settings)
    contexts.extend([here, there])
    created = auth.create_key(there, "predictor")
    assert here.keys.authenticate(created.secret).role == "predictor"
    auth.revoke_key(there, created.row.prefix)
    with pytest.raises(Unauthorized, match="revoked"):
        here.keys.authenticate(created.secret)


def test_revocation_in_this_process_is_immediate(ctx: Context, clock: Clock) -> None:
    created = auth.create_key(ctx, "admin")
    ctx.keys.authenticate(created.secret)
    auth.revoke_key(ctx, created.row.prefix)
    with pytest.raises(Unauthorized, match="revoked"):
        ctx.keys.authenticate(created.secret)


def test_expiry_applies_to_a_cached_key(
    ctx: Context, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = auth.create_key(ctx, "viewer", expires_in_days=1)
    ctx.keys.authenticate(created.secret)
    expires_at = as_utc(stored_row(ctx, created.row.prefix).expires_at)  # type: ignore[arg-type]
    monkeypatch.setattr(auth, "utcnow", lambda: expires_at)
    with pytest.raises(Unauthorized, match=r"^this API key has expired$") as info:
        ctx.keys.authenticate(created.secret)
    assert info.value.details == {"key_prefix": created.row.prefix}
    monkeypatch.setattr(auth, "utcnow", lambda: expires_at - timedelta(seconds=1))
    assert ctx.keys.authenticate(created.secret).role == "viewer"


def test_expired_in_database_is_refused(settings: Settings, contexts: list[Context]) -> None:
    ctx = make_ctx(settings, auth_cache_ttl_s=0)
    contexts.append(ctx)
    created = auth.create_key(ctx, "viewer", expires_in_days=30)
    ctx.keys.authenticate(created.secret)
    with ctx.db.session() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == created.row.prefix)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    with pytest.raises(Unauthorized, match="expired"):
        ctx.keys.authenticate(created.secret)


def test_last_used_at_is_written_at_most_once_per_interval(
    settings: Settings, contexts: list[Context], clock: Clock
) -> None:
    ctx = make_ctx(settings, auth_cache_ttl_s=0)  # every call reads the row
    contexts.append(ctx)
    created = auth.create_key(ctx, "viewer")
    assert stored_row(ctx, created.row.prefix).last_used_at is None
    before = utcnow()
    with statements(ctx) as first:
        ctx.keys.authenticate(created.secret)
    assert first.count("UPDATE") == 1
    used = as_utc(stored_row(ctx, created.row.prefix).last_used_at)  # type: ignore[arg-type]
    assert before <= used <= utcnow()

    clock.now += auth.LAST_USED_WRITE_INTERVAL_S - 1
    with statements(ctx) as within:
        for _ in range(3):
            ctx.keys.authenticate(created.secret)
    assert within == ["SELECT"] * 3
    assert as_utc(stored_row(ctx, created.row.prefix).last_used_at) == used  # type: ignore[arg-type]

    clock.now += 2
    with statements(ctx) as after:
        ctx.keys.authenticate(created.secret)
    assert after.count("UPDATE") == 1
    assert as_utc(stored_row(ctx, created.row.prefix).last_used_at) > used  # type: ignore[arg-type]


def test_refused_key_does_not_touch_last_used_at(ctx: Context) -> None:
    created = auth.create_key(ctx, "viewer")
    forged = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
    with pytest.raises(Unauthorized):
        ctx.keys.authenticate(forged)
    assert stored_row(ctx, created.row.prefix).last_used_at is None


# --------------------------------------------------------------------------- authenticate


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(None, "^an API key is required", id="none"),
        pytest.param("", "^an API key is required", id="empty"),
        pytest.param("mls_", "^invalid API key$", id="bare-scheme"),
        pytest.param("mls_AAAAAAAA_" + "x" * 42, "^invalid API key$", id="secret-short"),
        pytest.param("mls_AAAAAAAA_" + "x" * 44, "^invalid API key$", id="secret-long"),
        pytest.param("mls_AAAAAAA_" + "x" * 43, "^invalid API key$", id="prefix-short"),
        pytest.param("mls_AAAA-AAA_" + "x" * 43, "^invalid API key$", id="prefix-dash"),
        pytest.param("MLS_AAAAAAAA_" + "x" * 43, "^invalid API key$", id="scheme-case"),
        pytest.param("mls-AAAAAAAA-" + "x" * 43, "^invalid API key$", id="separator"),
        pytest.param("mls_AAAAAAAA_" + "x" * 42 + "+", "^invalid API key$", id="not-urlsafe"),
        pytest.param(" mls_AAAAAAAA_" + "x" * 43, "^invalid API key$", id="leading-space"),
        pytest.param("mls_AAAAAAAA_" + "x" * 43, "^invalid API key$", id="unknown-prefix"),
    ],
)
def test_refused_keys(ctx: Context, key: str | None, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        ctx.keys.authenticate(key)


def test_right_prefix_wrong_secret_is_refused(ctx: Context) -> None:
    created = auth.create_key(ctx, "admin")
    head, secret = created.secret[:13], created.secret[13:]
    with pytest.raises(Unauthorized, match=r"^invalid API key$") as info:
        ctx.keys.authenticate(head + secret[::-1])
    assert info.value.details == {}  # an unverified prefix is not echoed back
    assert ctx.keys.authenticate(created.secret).role == "admin"


@pytest.mark.parametrize(
    ("authorization", "api_key", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer abc", None, "abc"),
        ("BEARER   abc  ", None, "abc"),
        ("Bearer abc", "xyz", "abc"),  # Authorization wins
        ("Basic dXNlcjpwYXNz", "xyz", "xyz"),
        ("Basic dXNlcjpwYXNz", None, None),
        ("Bearer", "xyz", "xyz"),
        ("Bearer    ", "xyz", "xyz"),
        ("Token abc", None, None),
        (None, "  xyz  ", "xyz"),
        ("", "xyz", "xyz"),
        (None, None, None),
        (None, "", None),
    ],
)
def test_bearer_key(authorization: str | None, api_key: str | None, expected: str | None) -> None:
    assert auth.bearer_key(authorization, api_key) == expected


# --------------------------------------------------------------------------- create, list, revoke


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"role": "root"}, "role", "unknown role 'root'"),
        ({"role": "Admin"}, "role", "unknown role 'Admin'"),
        ({"role": ""}, "role", "unknown role ''"),
        ({"role": "viewer", "name": "n" * 101}, "name", "name must be at most 100 characters"),
        ({"role": "viewer", "name": "ci\nkey"}, "name", "without control characters"),
        ({"role": "viewer", "name": "\x1b[31mred"}, "name", "without control characters"),
        ({"role": "viewer", "name": "del\x7f"}, "name", "without control characters"),
        ({"role": "viewer", "expires_in_days": 0}, "expires_in_days", r"must be in \(0, 36500\]"),
        ({"role": "viewer", "expires_in_days": -1}, "expires_in_days", r"must be in \(0, 36500\]"),
        ({"role": "viewer", "expires_in_days": 36_500.01}, "expires_in_days", "must be in"),
        ({"role": "viewer", "expires_in_days": math.nan}, "expires_in_days", "must be in"),
        ({"role": "viewer", "expires_in_days": math.inf}, "expires_in_days", "must be in"),
    ],
)
def test_create_key_validation(
    ctx: Context, kwargs: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message) as info:
        auth.create_key(ctx, **kwargs)
    assert info.value.details["field"] == field
    assert auth.count_keys(ctx) == 0


@pytest.mark.parametrize(
    ("kwargs", "lifetime"),
    [
        ({"name": "n" * 100}, None),
        ({"name": "Ünïcode ✓ name with spaces"}, None),
        ({"expires_in_days": 36_500}, timedelta(days=36_500)),
        ({"expires_in_days": 0.5}, timedelta(hours=12)),
        ({"expires_in_days": None}, None),
    ],
)
def test_create_key_boundaries_accepted(
    ctx: Context, kwargs: dict[str, Any], lifetime: timedelta | None
) -> None:
    before = utcnow()
    created = auth.create_key(ctx, "viewer", **kwargs)
    row = stored_row(ctx, created.row.prefix)
    assert row.name == kwargs.get("name", "")
    if lifetime is None:
        assert row.expires_at is None
    else:
        assert before + lifetime <= as_utc(row.expires_at) <= utcnow() + lifetime  # type: ignore[arg-type]


def test_list_count_and_view(ctx: Context) -> None:
    made = [auth.create_key(ctx, role, name=role) for role in ("viewer", "trainer", "admin")]
    auth.revoke_key(ctx, made[0].row.prefix)
    assert auth.count_keys(ctx) == 3  # revoked keys count
    listed = auth.list_keys(ctx)
    assert [row.prefix for row in listed] == [k.row.prefix for k in reversed(made)]
    view = auth.key_view(listed[-1])
    assert set(view) == {
        "prefix",
        "role",
        "name",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    }
    assert (view["role"], view["name"]) == ("viewer", "viewer")
    assert view["revoked_at"] is not None


def test_revoke_unknown_prefix_and_revoke_twice(ctx: Context) -> None:
    with pytest.raises(NotFound, match=r"^api key 'nope' not found$"):
        auth.revoke_key(ctx, "nope")
    created = auth.create_key(ctx, "viewer")
    first = auth.revoke_key(ctx, created.row.prefix).revoked_at
    assert first is not None
    second = auth.revoke_key(ctx, created.row.prefix).revoked_at
    assert second is not None
    assert as_utc(second) == as_utc(first)  # revoking again keeps the original time


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("viewer", {"read"}),
        ("predictor", {"predict"}),
        ("trainer", {"read", "predict", "train"}),
        ("admin", {"read", "predict", "train", "admin"}),
    ],
)
def test_role_grants(role: str, granted: set[str]) -> None:
    principal = Principal("AAAAAAAA", role)
    for permission in ("read", "predict", "train", "admin"):
        assert principal.allows(permission) is (permission in granted)
        if permission in granted:
            auth.authorize(principal, permission)
        else:
            with pytest.raises(Forbidden, match=f"role '{role}' may not do this") as info:
                auth.authorize(principal, permission)
            assert info.value.details == {"role": role, "permission": permission}
