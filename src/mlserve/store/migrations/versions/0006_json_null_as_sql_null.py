"""model_version.evaluation and .reference: "none" is SQL NULL, never JSON null

Versions registered by online updates before this revision stored JSON ``null`` in
both columns; the ORM now writes SQL NULL (``JSON(none_as_null=True)``), so that
``evaluation IS NOT NULL`` says whether a version has plot data without reading it.
Data only: the schema does not change.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# CAST(... AS TEXT) of a JSON null is the text 'null' on PostgreSQL and SQLite.
STATEMENTS = (
    "UPDATE model_version SET evaluation = NULL WHERE CAST(evaluation AS TEXT) = 'null'",
    "UPDATE model_version SET reference = NULL WHERE CAST(reference AS TEXT) = 'null'",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(sa.text(statement))


def downgrade() -> None:
    """Nothing to undo: SQL NULL and JSON null both read as None."""
