"""online_update_run: the online updates in progress (model, worker, start time)

A worker writes a row when it starts an online update of a model and deletes it when
the update ends; a row left by a worker that stopped sending heartbeats (killed) is
turned into the model's ``online_state.last_error`` by the workers' recovery sweep.

Revision ID: 0013_online_update_run
Revises: 0012_imported_models
Create Date: 2026-12-05 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_online_update_run"
down_revision = "0012_imported_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_update_run",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_name"], ["registered_model.name"]),
        sa.PrimaryKeyConstraint("model_name", "worker_id"),
    )


def downgrade() -> None:
    op.drop_table("online_update_run")
