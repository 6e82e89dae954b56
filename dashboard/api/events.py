"""/api/v1/events: the outbox, company scoped, as a JSON page or a Server-Sent Events
stream that resumes where the client left off."""

from __future__ import annotations

import json
import threading
import time

from flask import Response, current_app, request

from dashboard.api import bp
from dashboard.api.envelope import ApiError, endpoint, int_arg, respond
from dashboard.auth.tokens import user_for_token
from dashboard.extensions import db, reads_only
from dashboard.live import events as bus
from dashboard.models import User
from dashboard.services import outbox
from dashboard.services.outbox import EVENT_TYPES

# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15
# How often a stream checks that its token still holds.
RECHECK_SECONDS = 30
BATCH = 500


def _cursor() -> int:
    """Where to resume: Last-Event-ID (sent by a reconnecting EventSource), else `after`."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not header.isdigit() or len(header) > 18:
            raise ApiError(400, "Last-Event-ID must be an event id (a whole number)")
        return int(header)
    return int_arg("after", default=0, minimum=0, maximum=2**63 - 1)


def _types() -> list[str] | None:
    raw = request.args.get("types", "")
    types = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise ApiError(422, f"Unknown event types: {', '.join(unknown)}")
    return types or None


@bp.get("/events")
@endpoint("read.event")
def list_events(user):
    """Events after an id, oldest first: a page, or a stream.
    ---
    get:
      summary: Events (poll, or stream with Server-Sent Events)
      description: "Permission `read.event`; company policy applies (a company user gets
        their company's events). With `Accept: text/event-stream` the answer is a
        Server-Sent Events stream: each event as `id:`, `event:` (its type) and `data:`
        (the event as JSON), keep-alive comments every 15 s, resumable with the
        `Last-Event-ID` header (or `after`); a stream ends when its server process stops
        (a deploy), and the client reconnects as it would after any drop. Otherwise a
        JSON page: `events`, `last_id` (the `after` of the next page) and `more`.
        `types`: a comma-separated list of event types. Events are kept EVENTS_RETENTION_DAYS (7)."
      tags: [events]
      parameters:
        - {in: query, name: after, schema: {type: integer, minimum: 0, default: 0}}
        - {in: query, name: limit, schema: {type: integer, minimum: 1, maximum: 1000,
           default: 100}}
        - in: query
          name: types
          style: form
          explode: false
          schema:
            type: array
            items:
              type: string
              enum: [connector.status_changed, connector.created, connector.updated,
                connector.deleted, chargepoint.connected, chargepoint.disconnected,
                chargepoint.stale, chargepoint.booted, incident.opened,
                incident.acknowledged, incident.resolved, command.completed,
                transaction.started, transaction.ended]
      responses:
        200:
          description: Events retrieved successfully
          content:
            application/json:
              schema: EventPageResponse
    """
    after = _cursor()
    types = _types()
    if "text/event-stream" in request.headers.get("Accept", ""):
        return _stream(user, after, types)
    limit = int_arg("limit", default=100, minimum=1, maximum=1000)
    rows = outbox.events_after(user, after, limit + 1, types)
    more = len(rows) > limit
    rows = rows[:limit]
    return respond(
        "Events retrieved successfully",
        {
            "events": [outbox.as_dict(row) for row in rows],
            "last_id": rows[-1].id if rows else after,
            "more": more,
        },
    )


def _stream(user, after: int, types: list[str] | None) -> Response:
    app = current_app._get_current_object()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else None
    user_id = user.id
    db.session.remove()  # hold no connection between reads
    wake = threading.Event()
    unsubscribe = bus.subscribe(
        lambda e: wake.set() if e.get("type") in (outbox.WAKE, bus.STOPPING) else None
    )

    def reader() -> User | None:
        """The user as they are now: a token still valid, an account still active, the
        permission still held; else None, and the stream ends."""
        current = user_for_token(token) if token else db.session.get(User, user_id)
        if current is None or current.id != user_id or not current.is_active:
            return None
        return current if current.can("read.event") else None

    def generate():
        cursor = after
        quiet_since = checked = time.monotonic()
        current = None
        try:
            yield "retry: 3000\n\n"
            # Until this process stops (a deploy): the client comes back, to another
            # process, with Last-Event-ID, and misses nothing.
            while not bus.is_stopping():
                with app.app_context():
                    try:
                        reads_only()
                        if current is None or time.monotonic() - checked > RECHECK_SECONDS:
                            current = reader()
                            checked = time.monotonic()
                            if current is None:
                                yield "event: error\ndata: credentials no longer valid\n\n"
                                return
                            db.session.expunge(current)
                        rows = outbox.events_after(current, cursor, BATCH, types)
                        frames = "".join(
                            f"id: {row.id}\nevent: {row.type}\n"
                            f"data: {json.dumps(outbox.as_dict(row), separators=(',', ':'))}\n\n"
                            for row in rows
                        )
                    finally:
                        db.session.remove()
                if rows:
                    cursor = rows[-1].id
                    quiet_since = time.monotonic()
                    yield frames
                    if len(rows) == BATCH:
                        continue
                elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                wake.wait(1.0)
                wake.clear()
        finally:
            unsubscribe()

    response = Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
