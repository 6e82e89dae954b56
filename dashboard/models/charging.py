"""Charging sessions: id tags and their authorization, transactions, meter values, and the
DataTransfer messages charge points send."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.chargepoint import ChargePoint
from dashboard.models.company import Company
from dashboard.models.types import ExactDecimal, UTCDateTime, utcnow

# OCPP 1.6 AuthorizationStatus values an operator may give a tag (ConcurrentTx is only
# ever an answer).
IDTAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")
AUTHORIZATION_MODES = ("open", "list")


class IdTag(db.Model):
    """An RFID card or other idToken of a company. `registered` is False for a tag only
    seen (in `open` mode, unknown tags are remembered so that an operator can adopt them)."""

    __tablename__ = "id_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    tag: Mapped[str] = mapped_column(String(20))
    # The tag upper-cased: idTokens are compared case-insensitively (CiString20).
    tag_key: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="Accepted")
    expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_tag: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(200))
    registered: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    company: Mapped[Company] = relationship()

    __table_args__ = (UniqueConstraint("company_id", "tag_key", name="uq_id_tags_company_tag"),)


class Transaction(db.Model):
    """A charging session. `id` is the transactionId Plugboard gave the charge point. An
    orphan is a StopTransaction for an id Plugboard never issued to that charge point: it
    is recorded under an id of its own, with the id the charge point sent."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    # None for an orphan stop (a StopTransaction names no connector).
    connector_id: Mapped[int | None] = mapped_column(Integer)
    id_tag: Mapped[str | None] = mapped_column(String(20))
    id_tag_status: Mapped[str | None] = mapped_column(String(12))
    meter_start: Mapped[int | None] = mapped_column(Integer)
    start_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reservation_id: Mapped[int | None] = mapped_column(Integer)
    meter_stop: Mapped[int | None] = mapped_column(Integer)
    stop_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stop_reason: Mapped[str | None] = mapped_column(String(20))
    stop_id_tag: Mapped[str | None] = mapped_column(String(20))
    orphan: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_id: Mapped[int | None] = mapped_column(Integer)
    # The latest energy register (Wh) and power (W) sampled during the session.
    last_energy_wh: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    last_power_w: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    peak_power_w: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    chargepoint: Mapped[ChargePoint] = relationship()

    __table_args__ = (
        # A StartTransaction sent again (its answer lost) is the same transaction.
        UniqueConstraint(
            "cp_id",
            "connector_id",
            "id_tag",
            "meter_start",
            "start_timestamp",
            name="uq_transactions_start",
        ),
        Index("ix_transactions_cp_start", "cp_id", "start_timestamp"),
        Index("ix_transactions_active", "cp_id", "stop_timestamp"),
    )

    @property
    def active(self) -> bool:
        """Whether the session is still going (not stopped, not an orphan stop)."""
        return self.stop_timestamp is None and not self.orphan

    @property
    def energy_wh(self) -> int | None:
        """Energy delivered: meterStop − meterStart once stopped, else the latest register
        sampled minus meterStart (None when nothing is known)."""
        if self.meter_start is None:
            return None
        if self.meter_stop is not None:
            return self.meter_stop - self.meter_start
        if self.last_energy_wh is not None:
            return int(self.last_energy_wh) - self.meter_start
        return None


class MeterValue(db.Model):
    """One sampled value of a MeterValues message (or of a StopTransaction's
    transactionData), as sent; `normalised` is energy in Wh or power in W."""

    __tablename__ = "meter_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    connector_id: Mapped[int] = mapped_column(Integer)
    # The transactionId as the charge point sent it (it may be one Plugboard never gave).
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    measurand: Mapped[str] = mapped_column(String(48))
    phase: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(12))
    context: Mapped[str | None] = mapped_column(String(24))
    location: Mapped[str | None] = mapped_column(String(8))
    format: Mapped[str | None] = mapped_column(String(12))
    value: Mapped[str] = mapped_column(Text)
    normalised: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    received: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_meter_values_transaction", "cp_id", "transaction_id", "timestamp"),
        Index("ix_meter_values_received", "received"),
    )


class DataTransferMessage(db.Model):
    """A DataTransfer a charge point sent, and what it was answered."""

    __tablename__ = "data_transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    vendor_id: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    received: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
