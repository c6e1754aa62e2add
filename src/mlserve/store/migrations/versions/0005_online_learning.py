"""online learning: samples, prediction log, online state, version lineage and drift reference

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=True),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["model_name"], ["registered_model.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sample_model_name_id", "sample", ["model_name", "id"])
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feedback", sa.JSON(), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prediction_log_model_at", "prediction_log", ["model_name", "at"])
    op.create_index(
        "ix_prediction_log_feedback", "prediction_log", ["model_name", "version", "feedback_at"]
    )
    op.create_table(
        "online_state",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["model_name"], ["registered_model.name"]),
        sa.PrimaryKeyConstraint("model_name"),
    )
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("online", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("reference", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("reference")
        batch.drop_column("online")
    op.drop_table("online_state")
    op.drop_index("ix_prediction_log_feedback", table_name="prediction_log")
    op.drop_index("ix_prediction_log_model_at", table_name="prediction_log")
    op.drop_table("prediction_log")
    op.drop_index("ix_sample_model_name_id", table_name="sample")
    op.drop_table("sample")
