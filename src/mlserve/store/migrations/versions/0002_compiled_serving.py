"""compiled serving: ONNX artifact and serving metadata per version, registry generation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 00:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("serving", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("onnx_artifact_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("onnx_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("onnx_size_bytes", sa.Integer(), nullable=True))
    op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("registry_state")
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("onnx_size_bytes")
        batch.drop_column("onnx_sha256")
        batch.drop_column("onnx_artifact_key")
        batch.drop_column("serving")
