"""Events for integrations, through the outbox.

A service that changes something calls `emit(...)`; the event is written to the `events`
table when the session commits, in the same transaction as the change: an event is never
lost (it commits with its change) and never told for a change that rolled back (it rolls
back with it). Webhooks (`services.webhooks`) and the event stream (`/api/v1/events`) read
from there.

Ids are given in commit order, so a reader that has seen id N has seen every event before
it and can resume from N. On PostgreSQL, whose sequence hands out ids when rows are
inserted, not when they commit, a transaction's events wait in `events_pending` (one row
of arrays) and a deferred trigger moves them into `events` during the COMMIT, under a
transaction-level advisory lock held until the commit ends: the events of two
transactions never interleave, and a lower id never becomes visible after a higher one.
The lock is taken and released inside the server's COMMIT, so a client whose worker is
busy never holds it while its next statement waits (when the insert took it, before the
COMMIT, every other commit of the fleet queued behind such a client). SQLite has one
writer at a time.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.live.events import publish_after_commit
from dashboard.models import OutboxEvent, User
from dashboard.models.event import pending_events
from dashboard.models.types import utcnow
from dashboard.services.permissions import require
from dashboard.services.visibility import scoped

_PENDING = "plugboard_outbox"
# The live-bus event that tells deliverers and streams of every process to look again.
WAKE = "outbox"

EVENT_TYPES = (
    "connector.status_changed",
    "connector.created",
    "connector.updated",
    "connector.deleted",
    "chargepoint.connected",
    "chargepoint.disconnected",
    "chargepoint.stale",
    "chargepoint.booted",
    "incident.opened",
    "incident.acknowledged",
    "incident.resolved",
    "command.completed",
    "transaction.started",
    "transaction.ended",
)


def _plain(value):
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def iso(moment: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 UTC with a Z, to the millisecond."""
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"  # 4-digit year


def emit(session: Session | None, event_type: str, company_id: int | None, data: dict) -> None:
    """Queue an event of `event_type` about company `company_id`: it is written when the
    session (the request's, by default) commits, and dropped if it rolls back."""
    assert event_type in EVENT_TYPES, event_type
    session = session or db.session()  # the Session itself, not its scoped proxy
    if not session.in_transaction():  # begun, so that a rollback (which drops it) is seen
        session.begin()
    session.info.setdefault(_PENDING, []).append(
        {
            "type": event_type,
            "company_id": company_id,
            "created": utcnow(),
            "data": json.dumps(data, default=_plain, separators=(",", ":")),
        }
    )


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One row of arrays for the whole transaction: a batch of hundreds of
        # StatusNotifications costs one statement. The COMMIT moves them into `events`
        # in commit order (the trigger of `models.event.pending_events`).
        session.execute(
            insert(pending_events),
            {
                "types": [row["type"] for row in rows],
                "companies": [row["company_id"] for row in rows],
                "created": [row["created"] for row in rows],
                "data": [row["data"] for row in rows],
            },
        )
    else:  # one process writes (and SQLite writes one transaction at a time)
        session.execute(insert(OutboxEvent.__table__), rows)
    publish_after_commit(session, {"type": WAKE})


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


def as_dict(row: OutboxEvent) -> dict:
    """The event as it is sent: `id`, `type`, `timestamp`, `company_id`, `data`."""
    return {
        "id": row.id,
        "type": row.type,
        "timestamp": iso(row.created),
        "company_id": row.company_id,
        "data": json.loads(row.data),
    }


def events_after(user: User, after: int, limit: int, types: list[str] | None = None):
    """The events `user` may see with an id above `after`, oldest first, at most `limit`."""
    require(user, "read.event")
    query = select(OutboxEvent).where(OutboxEvent.id > after)
    if types:
        query = query.where(OutboxEvent.type.in_(types))
    query = scoped(query, OutboxEvent.company_id, user)
    return list(db.session.scalars(query.order_by(OutboxEvent.id).limit(limit)))


def last_event_id() -> int:
    """The id of the newest event (0 when there is none)."""
    return db.session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).limit(1)) or 0


def prune(older_than: datetime) -> int:
    """Remove the events and the webhook delivery log rows older than `older_than`;
    returns how many events went."""
    from dashboard.models import WebhookDelivery

    removed = 0
    for model in (OutboxEvent, WebhookDelivery):
        # Ids follow time: the first row young enough, found along the primary key (past
        # exactly the rows to delete), bounds what goes; no index on `created` is needed.
        first_kept = (
            select(model.id)
            .where(model.created >= older_than)
            .order_by(model.id)
            .limit(1)
            .scalar_subquery()
        )
        newest = select(func.max(model.id)).scalar_subquery()
        result = db.session.execute(
            delete(model).where(model.id < func.coalesce(first_kept, newest + 1))
        )
        if model is OutboxEvent:
            removed = result.rowcount or 0
    return removed
