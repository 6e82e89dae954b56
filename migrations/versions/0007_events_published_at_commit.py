"""Events are moved into the outbox during the COMMIT (PostgreSQL): a transaction's events
wait in `events_pending`, and a deferred trigger takes the outbox lock and inserts them
into `events` as it commits, so that ids follow commit order without a client holding the
lock between its INSERT and its COMMIT.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dashboard.models.types  # noqa: F401  (custom column types)
from dashboard.models.event import PUBLISH_FUNCTION, PUBLISH_TRIGGER

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _array(item):
    return postgresql.ARRAY(item).with_variant(sa.Text(), "sqlite")


def upgrade():
    op.create_table(
        "events_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("types", _array(sa.String(length=40)), nullable=False),
        sa.Column("companies", _array(sa.Integer()), nullable=False),
        sa.Column("created", _array(dashboard.models.types.UTCDateTime()), nullable=False),
        sa.Column("data", _array(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_pending")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PUBLISH_FUNCTION)
        op.execute(PUBLISH_TRIGGER)


def downgrade():
    op.drop_table("events_pending")  # its trigger with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION events_publish()")
