"""A charge point: a station with an OCPP identity and one or more connectors."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.company import Company
from dashboard.models.types import UTCDateTime, utcnow

REGISTRATION_STATUSES = ("Accepted", "Pending", "Rejected")


def _key_digest(salt: bytes, key: bytes) -> str:
    return hmac.new(salt, key, hashlib.sha256).hexdigest()


def auth_key_matches(auth_key_hash: str | None, presented: bytes) -> bool:
    """Whether `presented` is the key kept as `auth_key_hash` (a charge point's), sent
    either as raw bytes or as its hex text. Compared in constant time."""
    if not auth_key_hash:
        return False
    salt_hex, digest = auth_key_hash.split("$", 1)
    salt = bytes.fromhex(salt_hex)
    candidates = [presented]
    with contextlib.suppress(UnicodeDecodeError, ValueError):  # not hex text: raw only
        candidates.append(bytes.fromhex(presented.decode("ascii")))
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(_key_digest(salt, candidate), digest)
    return matched


class ChargePoint(db.Model):
    """A charge point, owned by a company, known to OCPP by its identity."""

    __tablename__ = "chargepoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT"), index=True
    )
    # Reported by BootNotification.
    vendor: Mapped[str | None] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(20))
    serial_number: Mapped[str | None] = mapped_column(String(25))
    charge_box_serial_number: Mapped[str | None] = mapped_column(String(25))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    iccid: Mapped[str | None] = mapped_column(String(20))
    imsi: Mapped[str | None] = mapped_column(String(20))
    meter_type: Mapped[str | None] = mapped_column(String(25))
    meter_serial_number: Mapped[str | None] = mapped_column(String(25))
    # Security profile 1: "salt$hmac-sha256(key)" in hex; the key itself is never stored.
    auth_key_hash: Mapped[str | None] = mapped_column(String(100))
    registration_status: Mapped[str] = mapped_column(String(16), default="Accepted")
    # Status of the main controller (StatusNotification with connectorId 0).
    status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    last_boot: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest DiagnosticsStatusNotification and FirmwareStatusNotification, and when.
    diagnostics_status: Mapped[str | None] = mapped_column(String(16))
    diagnostics_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    firmware_status: Mapped[str | None] = mapped_column(String(24))
    firmware_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while an OCPP connection is open (by whichever worker holds it), else None.
    connected_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the sweep when a connected charge point fell silent (stale), cleared when it
    # is heard again or disconnects: the moment it went stale.
    stale_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    company: Mapped[Company] = relationship(lazy="joined")

    def set_auth_key(self, key_hex: str | None) -> None:
        """Keep a salted hash of the AuthorizationKey (hex text), or clear it with None."""
        if key_hex is None:
            self.auth_key_hash = None
            return
        salt = secrets.token_bytes(16)
        self.auth_key_hash = f"{salt.hex()}${_key_digest(salt, bytes.fromhex(key_hex))}"

    def check_auth_key(self, presented: bytes) -> bool:
        """Whether `presented` is the key (see `auth_key_matches`)."""
        return auth_key_matches(self.auth_key_hash, presented)

    @property
    def has_auth_key(self) -> bool:
        """Whether the charge point must authenticate with HTTP Basic auth."""
        return self.auth_key_hash is not None

    def __repr__(self) -> str:
        return f"<ChargePoint {self.id} {self.identity!r}>"
