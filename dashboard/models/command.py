"""The command log: every call Plugboard made to a charge point, who asked, and how the
charge point answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.extensions import db
from dashboard.models.types import UTCDateTime, utcnow
from dashboard.models.user import User

# How a call ended.
OUTCOMES = ("answered", "error", "timeout", "offline", "unavailable")


class Command(db.Model):
    """One call to a charge point. `source` is "api", "ui" or "system" (Plugboard's own
    calls); `request` and `answer` are JSON as sent and received."""

    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    cp_id: Mapped[int] = mapped_column(ForeignKey("chargepoints.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(40))
    request: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_commands_cp_created", "cp_id", "created"),)
