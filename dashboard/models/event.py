"""The outbox: every event for integrations (webhooks, the event stream), written in the
same transaction as the change it describes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import BinaryArray, db
from dashboard.models.types import UTCDateTime, utcnow

# BIGINT on PostgreSQL; SQLite makes only INTEGER PRIMARY KEY its rowid (64-bit anyway).
EventId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(db.Model):
    """One event. Ids grow in commit order (see `services.outbox`): a reader that has seen
    id N has seen every event before it, which is what makes the stream resumable."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    # The company the event belongs to (None: a change seen by superadmins only).
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[str] = mapped_column(Text)  # JSON

    __table_args__ = (
        # No index on `created`: one more index per event costs ingest, and pruning walks
        # the primary key instead (ids follow time).
        Index("ix_events_company_id", "company_id", "id"),
        {"sqlite_autoincrement": True},  # never reuse an id, even after pruning every row
    )


# pg_advisory_xact_lock key of the outbox ("PBOUTBOX" in ASCII): whoever holds it draws
# event ids, so ids follow commit order.
OUTBOX_LOCK = 0x50424F5554424F58


def _array(item):
    """An array column on PostgreSQL; text on SQLite, where the table stays unused."""
    return BinaryArray(item).with_variant(Text(), "sqlite")


# On PostgreSQL, a transaction's events wait here, one row of arrays per transaction,
# until it commits: then the deferred trigger below takes the outbox lock and moves them
# into `events` (ids drawn under the lock), as part of the COMMIT. The lock is held only
# while the server commits: never while a client, between its INSERT and its COMMIT,
# waits for its turn on a busy worker (holding it then made every other commit wait).
pending_events = Table(
    "events_pending",
    db.metadata,
    Column("id", EventId, primary_key=True),
    Column("types", _array(String(40)), nullable=False),
    Column("companies", _array(Integer()), nullable=False),
    Column("created", _array(UTCDateTime()), nullable=False),
    Column("data", _array(Text()), nullable=False),
)

PUBLISH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION events_publish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({OUTBOX_LOCK});
    INSERT INTO events (type, company_id, created, data)
    SELECT t, c, d, x
    FROM unnest(NEW.types, NEW.companies, NEW.created, NEW.data)
        WITH ORDINALITY AS e(t, c, d, x, n)
    ORDER BY n;
    DELETE FROM events_pending WHERE id = NEW.id;
    RETURN NULL;
END
$$
"""
PUBLISH_TRIGGER = """
CREATE CONSTRAINT TRIGGER events_publish AFTER INSERT ON events_pending
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_publish()
"""
for _statement in (PUBLISH_FUNCTION, PUBLISH_TRIGGER):
    sa_event.listen(
        pending_events, "after_create", DDL(_statement).execute_if(dialect="postgresql")
    )
