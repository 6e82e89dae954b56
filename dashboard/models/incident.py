"""Incidents (a connector faulted, a charge point offline, ...), the rules that open them,
and the connection log of each charge point."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.chargepoint import ChargePoint
from dashboard.models.event import EventId
from dashboard.models.types import UTCDateTime, utcnow
from dashboard.models.user import User

# What an incident is about.
KINDS = ("faulted", "offline", "unavailable", "flapping")
# "pending": the condition holds, its hold-down has not passed (shown nowhere; deleted if
# the condition ends in time); "open"; "resolved".
STATES = ("pending", "open", "resolved")


class Incident(db.Model):
    """One condition of one connector or charge point, from when it began to when it
    ended. At most one row per (kind, subject) that is not resolved: the unique index
    below makes duplicates impossible, whichever process or host sees the condition."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(10))
    # "<cp_id>" or "<cp_id>/<connector_id>": what the condition is about.
    subject: Mapped[str] = mapped_column(String(24))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    connector_id: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(300))
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when the condition began
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    acknowledgement_note: Mapped[str | None] = mapped_column(String(500))
    # How often the condition began again while this row was unresolved (a charge point
    # disconnecting again before a sweep saw it back): a sweep ends only the condition as
    # it read it, the count unchanged (services.incidents._end_all).
    recurrences: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    chargepoint: Mapped[ChargePoint] = relationship(lazy="joined")
    acknowledged_by: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        Index(
            "uq_incidents_unresolved",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_incidents_state_since", "state", "since"),
        Index("ix_incidents_cp", "cp_id", "opened_at"),
        Index("ix_incidents_company", "company_id", "opened_at"),
    )

    @property
    def duration_seconds(self) -> int | None:
        """How long the condition lasted (so far, while open), from its beginning."""
        end = self.resolved_at or utcnow()
        return int((end - self.since).total_seconds())


class IncidentRule(db.Model):
    """An operator's setting of one rule: the default (company_id None) or one company's
    override. A rule without a row has the built-in default (`services.incidents`)."""

    __tablename__ = "incident_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The hold-down (faulted, offline, unavailable) or the window (flapping), in seconds.
    seconds: Mapped[int] = mapped_column(Integer)
    # Flapping: more than this many connections within the window.
    threshold: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("uq_incident_rules_kind_company", "kind", "company_id", unique=True),)


class ConnectivityEvent(db.Model):
    """The log of a charge point: when it connected, disconnected, went stale or came back
    (heard again), and its own statuses (StatusNotification for connectorId 0, kind
    "status"): what "was this port usable at that minute?" is answered from."""

    __tablename__ = "connectivity_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str | None] = mapped_column(String(16))  # kind "status"
    error_code: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_connectivity_cp_at", "cp_id", "at"),)


class JobMark(db.Model):
    """When a periodic job (the e-mail digest, pruning) last ran, kept across restarts."""

    __tablename__ = "job_marks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
