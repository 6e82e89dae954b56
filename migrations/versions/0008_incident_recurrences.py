"""incidents.recurrences: how often a condition began again while its row was unresolved,
so that a sweep ends only the condition as it read it (a charge point that disconnected
again while the sweep wrote stays offline with its incident).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(
            sa.Column("recurrences", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("recurrences")
