"""model_version.source and model_version.imported: versions registered from model files

``source`` is ``trained`` for every version a training job or an online update made
(all versions before this revision) and ``imported`` for a model file uploaded to
``POST /api/v1/models/{name}/versions``; ``imported`` holds what such a file states
(format, producer, opset, tensor signature), NULL for trained versions.

Revision ID: 0012_imported_models
Revises: 0011_real_tables
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_imported_models"
down_revision = "0011_real_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="trained")
        )
        batch.add_column(sa.Column("imported", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("imported")
        batch.drop_column("source")
