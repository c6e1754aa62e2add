"""api_key.session_generation: signing out ends the session on the server side

A web session's cookie records the key's session generation at sign-in; signing
out raises it, so every copy of that cookie is refused in every process (within
``auth_cache_ttl_s``, at once in the process that signed out). Existing keys
start at 0, as do cookies issued before this revision.

Revision ID: 0009_hardening
Revises: 0008_deployment
Create Date: 2026-12-04 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_hardening"
down_revision = "0008_deployment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("session_generation")
