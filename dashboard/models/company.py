"""A company: owns charge points; its users see only what it owns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.extensions import db
from dashboard.models.types import UTCDateTime, utcnow


class Company(db.Model):
    """An owner of charge points."""

    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # How its charge points authorize id tags: "open" (every tag Accepted, unknown ones
    # remembered as seen) or "list" (only its registered, valid tags).
    authorization_mode: Mapped[str] = mapped_column(String(8), default="open")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Company {self.id} {self.name!r}>"
