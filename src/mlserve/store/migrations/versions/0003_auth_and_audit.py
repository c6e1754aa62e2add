"""API keys, audit log, corrupt model versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 01:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hmac", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("object", sa.String(length=300), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_key_prefix", "audit_event", ["key_prefix"])
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("corrupt_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("training_job") as batch:
        batch.add_column(sa.Column("key_prefix", sa.String(length=16), nullable=True))
        batch.create_index("ix_training_job_key_prefix", ["key_prefix"])


def downgrade() -> None:
    with op.batch_alter_table("training_job") as batch:
        batch.drop_index("ix_training_job_key_prefix")
        batch.drop_column("key_prefix")
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("corrupt_reason")
    op.drop_index("ix_audit_event_key_prefix", table_name="audit_event")
    op.drop_index("ix_audit_event_at", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("api_key")
