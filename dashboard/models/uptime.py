"""Uptime of charging ports (connectors): operators' exclusions of out-time, the daily
aggregates that make reports over months fast, and the marks of days to aggregate again."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.chargepoint import ChargePoint
from dashboard.models.types import UTCDateTime, utcnow
from dashboard.models.user import User

# Why out-time is excluded from the NEVI uptime (23 CFR 680.116(b)(3)).
EXCLUSION_CAUSES = {
    "maintenance": "Scheduled maintenance",
    "utility": "Electric utility service interruption",
    "vandalism": "Vandalism",
    "natural_disaster": "Natural disaster",
    "vehicle": "Failure of the vehicle",
}


class UptimeExclusion(db.Model):
    """Out-time of a port (or of every port of a charge point) that does not count against
    its uptime, with its cause, the reason given, who recorded it and when. An exclusion
    without an end lasts until it is ended (maintenance ends when the charge point is made
    Operative again)."""

    __tablename__ = "uptime_exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    # None: every port of the charge point.
    connector_id: Mapped[int | None] = mapped_column(Integer)
    starts: Mapped[datetime] = mapped_column(UTCDateTime)
    ends: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    chargepoint: Mapped[ChargePoint] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_uptime_exclusions_cp", "cp_id", "starts"),)


class UptimeDay(db.Model):
    """One port's uptime arithmetic for one UTC day, computed from the history once the
    day is over (and again when late history arrives): a report over months adds these."""

    __tablename__ = "uptime_days"

    cp_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seconds: Mapped[float] = mapped_column(Float)  # of the day the port existed
    outage_seconds: Mapped[float] = mapped_column(Float)
    excluded_seconds: Mapped[float] = mapped_column(Float)
    outages: Mapped[int] = mapped_column(Integer)  # that began this day
    starts_out: Mapped[bool] = mapped_column(default=False)  # in an outage begun earlier
    # The cause of the outage at the day's end ("" when up): when a recomputation changes
    # it, the next day is recomputed too.
    end_state: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (
        ForeignKeyConstraint(
            ["connector_id", "cp_id"],
            ["connectors.connector_id", "connectors.connector_cp_id"],
            ondelete="CASCADE",
        ),
    )


class UptimeDirty(db.Model):
    """A day of a charge point whose aggregates are to be computed again: history dated
    that day arrived after the day was over (a late event), or an exclusion changed."""

    __tablename__ = "uptime_dirty"

    cp_id: Mapped[int] = mapped_column(
        ForeignKey("chargepoints.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
