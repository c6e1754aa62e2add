"""model_alias.policy: traffic policies on an alias (canary, A/B split, shadow)

NULL for every alias set before: a plain pointer at one version, as before.
prediction_log.shadow_of: a shadow version's answer to the logged live request of that
id (feedback on the live request scores the shadow too); NULL for live answers.

Revision ID: 0010_traffic_policies
Revises: 0009_hardening
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_traffic_policies"
down_revision = "0009_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_alias") as batch:
        batch.add_column(sa.Column("policy", sa.JSON(), nullable=True))
    with op.batch_alter_table("prediction_log") as batch:
        batch.add_column(sa.Column("shadow_of", sa.String(32), nullable=True))
        batch.create_index("ix_prediction_log_shadow_of", ["shadow_of"])


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_index("ix_prediction_log_shadow_of")
        batch.drop_column("shadow_of")
    with op.batch_alter_table("model_alias") as batch:
        batch.drop_column("policy")
