"""The outbox: every event for integrations (webhooks, the event stream), written in the
same transaction as the change it describes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
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
