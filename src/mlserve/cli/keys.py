"""``mlserve keys``: API key administration on this machine (direct database access).

These commands need the database settings (``MLSERVE_DATABASE_URL`` or
``MLSERVE_HOME``) and the server secret (``MLSERVE_SECRET_KEY`` or
``<home>/secret_key``), not a running server: they are how the first admin key is
made and how a lost one is replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mlserve.errors import MlserveError, NotFound
from mlserve.settings import Settings

if TYPE_CHECKING:
    from mlserve.context import Context

# The server's modules (database, models, web framework) are imported inside the
# commands that need them: ``mlserve`` itself, and its client-backed commands, start
# without them (see mlserve.cli.main).


def _context() -> Context:
    """The context of the server's settings, once its secret is known to be the cluster's.

    Raises
    ------
    SecretKeyMismatch
        A key made with another secret would be refused by every replica.
    ServiceUnavailable
    """
    from mlserve.bootstrap import build_context
    from mlserve.security.secret import check_secret_fingerprint

    settings = Settings()
    ctx = build_context(settings)
    if settings.is_sqlite:
        ctx.db.upgrade()
    check_secret_fingerprint(ctx)
    return ctx


@click.group()
def keys() -> None:
    """API keys: create, list, revoke (on the server's machine)."""


@keys.command("create")
@click.option(
    "--role",
    type=click.Choice(["viewer", "predictor", "trainer", "admin"]),
    required=True,
    help="viewer: read; predictor: predict; trainer: + datasets, training, aliases; admin: all.",
)
@click.option("--name", default="", help="What the key is for.")
@click.option(
    "--expires-in-days", type=click.FloatRange(min=0, max=36_500, min_open=True), default=None
)
def create(role: str, name: str, expires_in_days: float | None) -> None:
    """Create a key and print it (the only time it is shown)."""
    from mlserve.security import keys as auth

    try:
        created = auth.create_key(_context(), role, name, expires_in_days)
    except MlserveError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(created.secret)
    click.echo(f"prefix {created.row.prefix}, role {role}: store the key now", err=True)


@keys.command("list")
def list_() -> None:
    """List keys: prefix, role, name, created, expires, revoked, last used."""
    from mlserve.security import keys as auth

    for row in auth.list_keys(_context()):
        click.echo(
            "\t".join(
                str(v)
                for v in (
                    row.prefix,
                    row.role,
                    row.name or "-",
                    row.created_at,
                    row.expires_at or "-",
                    row.revoked_at or "-",
                    row.last_used_at or "-",
                )
            )
        )


@keys.command("revoke")
@click.argument("prefix")
def revoke(prefix: str) -> None:
    """Revoke the key whose prefix is PREFIX."""
    from mlserve.security import keys as auth

    try:
        auth.revoke_key(_context(), prefix)
    except NotFound as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {prefix}")
