"""The outbox's ids follow commit order without a transaction holding the outbox lock
while its client is busy (PostgreSQL: the events move into `events` during the COMMIT)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from dashboard.extensions import db
from dashboard.models import OutboxEvent
from dashboard.models.event import pending_events
from dashboard.models.types import utcnow
from dashboard.schemas.fields import format_datetime
from dashboard.services import outbox


def _pending_row(company_id: int, note: str) -> dict:
    """The row `outbox` writes for a transaction with one event."""
    return {
        "types": ["connector.created"],
        "companies": [company_id],
        "created": [utcnow()],
        "data": [json.dumps({"note": note})],
    }


def _notes() -> list[str]:
    """The notes of this module's events, by id (the test servers add events of their own)."""
    datas = db.session.scalars(select(OutboxEvent.data).order_by(OutboxEvent.id))
    return [note for data in datas if (note := json.loads(data).get("note"))]


def test_ids_follow_commit_order_and_a_waiting_transaction_blocks_no_other(app, world, backend):
    if backend != "postgresql":
        pytest.skip("SQLite writes one transaction at a time; no lock to hold")
    with app.app_context():
        slow = db.engine.connect()  # a transaction whose client stalls before its COMMIT
        try:
            slow.begin()
            slow.execute(pending_events.insert(), _pending_row(world.company_a, "first"))
            # Meanwhile another commits its event: it must not wait for the stalled one
            # (a lock taken at the INSERT made it wait until that one's COMMIT).
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
            outbox.emit(None, "connector.created", world.company_a, {"note": "second"})
            db.session.commit()
            slow.commit()
        finally:
            slow.close()
        assert _notes() == ["second", "first"]  # committed second, numbered second
        assert db.session.scalar(select(func.count()).select_from(pending_events)) == 0


def test_a_rolled_back_transaction_leaves_no_event_and_nothing_pending(app, world):
    """Also when the event was the transaction's only change (the session had begun no
    transaction in the database: its rollback once kept the event for the next commit)."""
    with app.app_context():
        outbox.emit(None, "connector.created", world.company_a, {"note": "gone"})
        db.session.flush()
        db.session.rollback()
        outbox.emit(None, "connector.created", world.company_a, {"note": "kept"})
        db.session.commit()
        assert _notes() == ["kept"]
        assert db.session.scalar(select(func.count()).select_from(pending_events)) == 0


def test_times_are_rfc_3339_with_a_four_digit_year():
    """strftime's %Y writes the year 497 as "497"; an event's times keep four digits."""
    moment = datetime(497, 5, 14, 10, 39, 32, 654321, tzinfo=UTC)
    assert outbox.iso(moment) == "0497-05-14T10:39:32.654Z"
    assert outbox.iso(datetime(2026, 11, 29, 20, 1, 2, tzinfo=UTC)) == "2026-11-29T20:01:02.000Z"
    assert outbox.iso(None) is None
    assert format_datetime(moment) == "0497-05-14T10:39:32Z"
