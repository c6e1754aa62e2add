"""model_version.memory: what online updates remember (kept rows, replay reservoirs)

A trained version of an incremental algorithm records the rows of its splits it keeps
for online updates (a Parquet artifact: a reservoir sample of the training split and a
bounded sample of the test split); a version made by an online update records its
reservoirs of replayed and held-out samples. NULL for everything registered before.

Revision ID: 0007_online_memory
Revises: 0006
Create Date: 2026-12-04 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_online_memory"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("memory", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("memory")
