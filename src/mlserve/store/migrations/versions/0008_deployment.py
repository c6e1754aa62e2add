"""cluster_setting: values every process sharing the database must agree on

The first process to start on a database records a fingerprint of its server secret
(``secret_fingerprint``); a process started with another secret refuses to start.

Revision ID: 0008_deployment
Revises: 0007_online_memory
Create Date: 2026-12-04 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_deployment"
down_revision = "0007_online_memory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("cluster_setting")
