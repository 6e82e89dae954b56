"""The event bus: services announce changes, listeners (the live channel) receive them.

Events are queued on the database session and published only after it commits, so nobody
is told about a change that was rolled back. Without REDIS_URL, events go to the listeners
of this process; with it, through Redis to the listeners of every process
(`configure(...)`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from dashboard.live import redis_bus

log = logging.getLogger(__name__)

# The event type of any committed change to a user, role or token: token caches and open
# browser sockets check again what they trusted.
AUTH_CHANGED = "auth"
# Delivered in this process when Redis is reachable again after an outage: events of other
# processes were missed meanwhile, so whatever was built from them is to be rebuilt.
BUS_RESUMED = "bus.resumed"
# Delivered in this process when it is told to stop (a deploy, a shutdown): open browser
# sockets and event streams end, so that their clients reconnect at once, to another
# process, instead of holding this one until gunicorn's graceful timeout kills them.
STOPPING = "process.stopping"

Listener = Callable[[dict], None]
_listeners: list[Listener] = []
_PENDING = "plugboard_pending_events"


def subscribe(listener: Listener) -> Callable[[], None]:
    """Register `listener` for every published event; returns a function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


_bus = None  # the RedisBus of this process, when REDIS_URL is set


def configure(bus) -> None:
    """Carry events through `bus` (a RedisBus), or within this process when None."""
    global _bus
    _bus = bus
    if bus is not None:
        bus.on(redis_bus.EVENTS, _deliver_message)
        bus.on_reconnect(lambda: deliver({"type": BUS_RESUMED}))


def current_bus():
    """The RedisBus of this process, or None."""
    return _bus


def publish(event: dict) -> None:
    """Send `event` to every listener (see `publish_all`)."""
    publish_all([event])


def publish_all(batch: list[dict]) -> None:
    """Send the events of `batch`, in order, to every listener: through Redis when
    configured, as one message (its listener thread then delivers them here too), else
    now, in this process. A transaction's events travel together: one round trip to Redis
    for a whole batch of StatusNotifications, not one each."""
    if not batch:
        return
    for event in batch:  # the live channel renders an event once, by this id, for all sockets
        event.setdefault("event_id", uuid.uuid4().hex)
    if _bus is not None:
        try:
            _bus.publish(redis_bus.EVENTS, {"events": batch})
            return
        except redis_bus.BusUnavailable as exc:
            redis_bus.outage_log.warn(
                "Redis unavailable (%s): events reach this process's pages only", exc
            )
    for event in batch:
        deliver(event)


def _deliver_message(message: dict) -> None:
    for event in message.get("events", ()):
        deliver(event)


def deliver(event: dict) -> None:
    """Hand `event` to this process's listeners. A failing listener is logged, not fatal."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # a broken listener must not undo a committed change
            log.exception("event listener failed for %s", event.get("type"))


_stopping = False


def stopping() -> None:
    """This process is stopping: tell its listeners (`STOPPING`), now and, through
    `is_stopping`, whoever starts listening later."""
    global _stopping
    _stopping = True
    deliver({"type": STOPPING})


def is_stopping() -> bool:
    return _stopping


def publish_after_commit(session: Session, event: dict) -> None:
    """Queue `event` on `session`; it is published when the session commits."""
    session.info.setdefault(_PENDING, []).append(event)


@sa_event.listens_for(Session, "after_commit")
def _publish_pending(session: Session) -> None:
    publish_all(session.info.pop(_PENDING, []))


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.nested:  # only a savepoint rolled back; the outer one goes on
        return
    session.info.pop(_PENDING, None)
