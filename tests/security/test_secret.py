"""One server secret per cluster: its fingerprint in the database, checked at every start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from mlserve.bootstrap import build_context
from mlserve.cli.main import main
from mlserve.context import Context
from mlserve.security.secret import (
    FINGERPRINT_SETTING,
    SecretKeyMismatch,
    check_secret_fingerprint,
    secret_fingerprint,
)
from mlserve.server import prepare
from mlserve.settings import Settings
from mlserve.store.orm import ClusterSetting


@pytest.fixture
def replicas(settings: Settings) -> Iterator[list[Context]]:
    """Two processes on one database: same settings, secrets ``a`` and ``b``."""
    made = []
    for secret in ("a" * 64, "b" * 64):
        ctx = build_context(settings.model_copy(update={"secret_key": SecretStr(secret)}))
        if ctx.settings.is_sqlite:
            ctx.db.upgrade()
        made.append(ctx)
    yield made
    for ctx in made:
        ctx.db.dispose()


def test_fingerprint_identifies_the_secret_without_revealing_it() -> None:
    first, again, other = (secret_fingerprint(s) for s in (b"a" * 64, b"a" * 64, b"b" * 64))
    assert first == again != other and len(first) == 64
    assert "a" * 8 not in first


def test_first_process_records_its_fingerprint_and_the_same_secret_passes(
    replicas: list[Context],
) -> None:
    first, _ = replicas
    check_secret_fingerprint(first)
    check_secret_fingerprint(first)
    with first.db.session() as session:
        stored = session.get_one(ClusterSetting, FINGERPRINT_SETTING).value
    assert stored == secret_fingerprint(first.secret_key)


def test_a_process_with_another_secret_is_refused(replicas: list[Context]) -> None:
    first, second = replicas
    check_secret_fingerprint(first)
    with pytest.raises(SecretKeyMismatch, match=r"MLSERVE_SECRET_KEY differs .* one secret"):
        check_secret_fingerprint(second)


def test_serve_refuses_to_start_with_another_secret(
    settings: Settings, replicas: list[Context]
) -> None:
    check_secret_fingerprint(replicas[0])
    other = settings.model_copy(update={"secret_key": SecretStr("c" * 64)})
    with pytest.raises(SystemExit, match=r"refusing to start: MLSERVE_SECRET_KEY differs"):
        prepare(other, demo=False)


def test_keys_command_refuses_another_secret(
    settings: Settings,
    replicas: list[Context],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check_secret_fingerprint(replicas[0])
    monkeypatch.setenv("MLSERVE_HOME", str(settings.home))
    monkeypatch.setenv("MLSERVE_SECRET_KEY", "d" * 64)
    result = CliRunner().invoke(main, ["keys", "create", "--role", "admin"])
    assert result.exit_code == 1
    assert "MLSERVE_SECRET_KEY differs" in result.output
