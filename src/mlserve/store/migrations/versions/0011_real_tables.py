"""training_job.report and model_version.report: what a training job decided

Which columns a job used and why (id-like and constant columns are left out by
default), how each feature is encoded, and the leaderboard of an ``algorithm: "auto"``
job (:class:`mlserve.store.documents.TrainingReport`). NULL for everything before.

Revision ID: 0011_real_tables
Revises: 0010_traffic_policies
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_real_tables"
down_revision = "0010_traffic_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("training_job", "model_version"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("report", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    for table in ("training_job", "model_version"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("report")
