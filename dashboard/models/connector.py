"""Connectors (charging plugs) and their status history.

Column names follow the API specification (`connector_id`, `connector_cp_id`, ...), so the
table, the model and the JSON speak the same words.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.chargepoint import ChargePoint
from dashboard.models.types import ExactDecimal, UTCDateTime, utcnow
from dashboard.models.user import User

HISTORY_SOURCES = ("ocpp", "api", "ui", "cli")


class Connector(db.Model):
    """A charging plug, identified by its number within a charge point."""

    __tablename__ = "connectors"

    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    connector_cp_id: Mapped[int] = mapped_column(
        ForeignKey("chargepoints.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    connector_type: Mapped[str | None] = mapped_column(String(32))
    connector_status: Mapped[str] = mapped_column(String(16), default="Available")
    connector_error_code: Mapped[str] = mapped_column(String(32), default="NoError")
    connector_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    connector_max_volt: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    connector_max_amp: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    info: Mapped[str | None] = mapped_column(String(50))
    vendor_id: Mapped[str | None] = mapped_column(String(255))
    vendor_error_code: Mapped[str | None] = mapped_column(String(50))
    # Event time of the status last applied; an older event must not overwrite it.
    status_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the charge point last reported this connector's status (time of receipt).
    status_reported: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The session going on (its transactionId), and the latest energy register (Wh) and
    # power (W) sampled, with their time: lists show them without scanning samples.
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    energy_wh: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    power_w: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    meter_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Energy delivered in the session going on (the register minus its meterStart).
    session_energy_wh: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    connector_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    connector_updated: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    chargepoint: Mapped[ChargePoint] = relationship()

    __table_args__ = (Index("ix_connectors_status", "connector_status"),)

    def __repr__(self) -> str:
        return f"<Connector {self.connector_cp_id}/{self.connector_id} {self.connector_status}>"


class ConnectorStatusHistory(db.Model):
    """One row per status change of a connector, whatever its source."""

    __tablename__ = "connector_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_id: Mapped[int] = mapped_column(Integer)
    connector_cp_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str] = mapped_column(String(32))
    previous_status: Mapped[str | None] = mapped_column(String(16))
    info: Mapped[str | None] = mapped_column(String(50))
    vendor_id: Mapped[str | None] = mapped_column(String(255))
    vendor_error_code: Mapped[str | None] = mapped_column(String(50))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A transition outside the OCPP 1.6 table (§4.9): accepted, but flagged.
    unexpected: Mapped[bool] = mapped_column(Boolean, default=False)
    # An event older than the state already applied: kept here, not applied.
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    # OCPP message id, so that a retried CALL is answered without a second row.
    message_id: Mapped[str | None] = mapped_column(String(36))

    # Declared so that the unit of work inserts a new connector before its first row.
    connector: Mapped[Connector] = relationship()
    user: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        ForeignKeyConstraint(
            ["connector_id", "connector_cp_id"],
            ["connectors.connector_id", "connectors.connector_cp_id"],
            ondelete="CASCADE",
        ),
        Index("ix_history_connector_time", "connector_cp_id", "connector_id", "event_time"),
        Index("ix_history_message", "connector_cp_id", "message_id"),
    )
