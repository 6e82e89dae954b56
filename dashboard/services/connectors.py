"""Connector operations, and `apply_status`: the one path for every status change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Select, bindparam, func, inspect, select, text, tuple_
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstanceState, Session, contains_eager
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.exc import StaleDataError

from dashboard.extensions import db, insert_all, unnest
from dashboard.live.events import publish_after_commit
from dashboard.models import ChargePoint, Company, Connector, ConnectorStatusHistory, User
from dashboard.models.types import utcnow
from dashboard.services import incidents, uptime
from dashboard.services.chargepoints import text_matches, visible_chargepoint
from dashboard.services.errors import Conflict, NotFound
from dashboard.services.outbox import emit
from dashboard.services.pagination import Page, ordering, paginate
from dashboard.services.permissions import require
from dashboard.services.status import is_expected_transition
from dashboard.services.visibility import connectors_visible_to

# A CALL without timestamp repeated within this window, same id and content, is a retry.
RETRY_WINDOW = timedelta(minutes=10)

# Fields a create or an update may set directly; status and error code go through
# apply_status so that each change leaves its history row.
SPEC_FIELDS = ("connector_type", "connector_enabled", "connector_max_volt", "connector_max_amp")


def list_connectors(user: User, cp_id: int) -> list[Connector]:
    """The connectors of charge point `cp_id`, by number; NotFound if `user` may not see it."""
    require(user, "read.connector")
    query = _of_chargepoint(connectors_visible_to(user))
    connectors = list(db.session.scalars(query, {"cp_id": cp_id}))
    if not connectors:  # none, or a charge point the user may not see: tell which
        visible_chargepoint(user, cp_id)
    return connectors


@lru_cache(maxsize=4096)
def _of_chargepoint(visible: Select) -> Select:
    """The connectors of charge point :cp_id among `visible`, built once per scope (the
    visibility helper gives the same statement object for the same scope)."""
    return visible.where(Connector.connector_cp_id == bindparam("cp_id")).order_by(
        Connector.connector_id
    )


@dataclass
class ConnectorFilters:
    """What the all-connectors list can be narrowed to; None means any."""

    status: str | None = None
    error_code: str | None = None
    connector_type: str | None = None
    enabled: bool | None = None
    company_id: int | None = None
    text: str | None = None


CONNECTOR_SORTS = {
    "chargepoint": (ChargePoint.identity, Connector.connector_id),
    "status": (Connector.connector_status, ChargePoint.identity, Connector.connector_id),
    "type": (Connector.connector_type, ChargePoint.identity, Connector.connector_id),
    "updated": (Connector.connector_updated.desc(), ChargePoint.identity),
    "company": (Company.name, ChargePoint.identity, Connector.connector_id),
}


def _search(user: User, filters: ConnectorFilters, sort: str):
    require(user, "read.connector")
    query = connectors_visible_to(user).options(contains_eager(Connector.chargepoint))
    if sort == "company":  # the join costs on every page: only when sorting needs it
        query = query.join(Company, ChargePoint.company_id == Company.id)
    conditions = {
        "status": Connector.connector_status,
        "error_code": Connector.connector_error_code,
        "connector_type": Connector.connector_type,
        "enabled": Connector.connector_enabled,
        "company_id": ChargePoint.company_id,
    }
    for name, column in conditions.items():
        value = getattr(filters, name)
        if value is not None:
            query = query.where(column == value)
    if filters.text:
        # The charge point's identity or name: a condition on one table, which the
        # database applies before the join (with the connector's info too, it could not).
        query = query.where(text_matches(filters.text, ChargePoint.identity, ChargePoint.name))
    return query.order_by(*ordering(CONNECTOR_SORTS, sort))


def search_connectors(
    user: User,
    filters: ConnectorFilters,
    *,
    sort: str = "chargepoint",
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """A page of every connector `user` may see, narrowed by `filters`, each with its
    charge point (and company) loaded in the same query."""
    return paginate(_search(user, filters, sort), page, per_page)


def iter_connectors(user: User, filters: ConnectorFilters, *, sort: str = "chargepoint"):
    """All the connectors `search_connectors` would page through, streamed (for exports).
    Closing the generator early closes the database cursor too."""
    result = db.session.scalars(_search(user, filters, sort).execution_options(yield_per=500))
    try:
        yield from result
    finally:
        result.close()


def get_connector(user: User, cp_id: int, connector_id: int) -> Connector:
    """Connector `connector_id` of charge point `cp_id`, if `user` may see it."""
    require(user, "read.connector")
    return _visible_connector(user, cp_id, connector_id)


def _visible_connector(user: User, cp_id: int, connector_id: int) -> Connector:
    connector = db.session.scalar(
        connectors_visible_to(user).where(
            Connector.connector_cp_id == cp_id, Connector.connector_id == connector_id
        )
    )
    if connector is None:
        raise NotFound(f"Connector {connector_id} of charge point {cp_id} not found")
    return connector


def create_connector(
    user: User,
    *,
    connector_id: int,
    connector_cp_id: int,
    connector_status: str = "Available",
    connector_error_code: str = "NoError",
    source: str,
    **spec: object,
) -> Connector:
    """Add connector number `connector_id` to charge point `connector_cp_id`; its first
    status is recorded in the history like any later one."""
    require(user, "create.connector")
    chargepoint = visible_chargepoint(user, connector_cp_id)
    if db.session.get(Connector, (connector_id, connector_cp_id)) is not None:
        raise _duplicate(connector_id, connector_cp_id)
    connector = _register(chargepoint, connector_id, spec)
    apply_status(
        connector,
        status=connector_status,
        error_code=connector_error_code,
        source=source,
        user=user,
    )
    try:
        db.session.flush()
    except IntegrityError as exc:  # created by someone else in the meantime
        db.session.rollback()
        raise _duplicate(connector_id, connector_cp_id) from exc
    return connector


def _register(chargepoint: ChargePoint, connector_id: int, spec: dict) -> Connector:
    connector = Connector(
        connector_id=connector_id, connector_cp_id=chargepoint.id, chargepoint=chargepoint
    )
    _set_spec(connector, spec)
    db.session.add(connector)
    return connector


def _duplicate(connector_id: int, cp_id: int) -> Conflict:
    return Conflict(f"Connector {connector_id} already exists on charge point {cp_id}")


def _set_spec(connector: Connector, spec: dict) -> None:
    unknown = set(spec) - set(SPEC_FIELDS)
    if unknown:
        raise TypeError(f"not connector fields: {sorted(unknown)}")
    for name, value in spec.items():
        setattr(connector, name, value)


def update_connector(
    user: User,
    cp_id: int,
    connector_id: int,
    *,
    source: str,
    connector_status: str | None = None,
    connector_error_code: str | None = None,
    **spec: object,
) -> Connector:
    """Change a connector's specification and, through apply_status, its status."""
    require(user, "update.connector")
    connector = _visible_connector(user, cp_id, connector_id)
    _set_spec(connector, spec)
    if db.session.is_modified(connector):
        emit(
            None,
            "connector.updated",
            connector.chargepoint.company_id,
            connector_data(connector, connector.connector_status, connector.connector_error_code),
        )
    status = connector_status or connector.connector_status
    error_code = connector_error_code or connector.connector_error_code
    if (status, error_code) != (connector.connector_status, connector.connector_error_code):
        apply_status(connector, status=status, error_code=error_code, source=source, user=user)
    elif db.session.is_modified(connector):
        connector.connector_updated = utcnow()
        announce(connector, "updated")
    db.session.flush()
    return connector


def delete_connector(user: User, cp_id: int, connector_id: int) -> None:
    """Delete a connector and its status history."""
    require(user, "delete.connector")
    connector = _visible_connector(user, cp_id, connector_id)
    announce(connector, "deleted")
    emit(
        None,
        "connector.deleted",
        connector.chargepoint.company_id,
        {"chargepoint_id": cp_id, "connector_id": connector_id},
    )
    db.session.delete(connector)
    db.session.flush()


def connector_history(
    user: User, cp_id: int, connector_id: int, *, page: int = 1, per_page: int = 20
) -> Page:
    """A page of a connector's status history, newest first."""
    require(user, "read.connector")
    _visible_connector(user, cp_id, connector_id)
    query = (
        select(ConnectorStatusHistory)
        .where(
            ConnectorStatusHistory.connector_cp_id == cp_id,
            ConnectorStatusHistory.connector_id == connector_id,
        )
        .order_by(ConnectorStatusHistory.event_time.desc(), ConnectorStatusHistory.id.desc())
    )
    return paginate(query, page, per_page)


def apply_status(
    connector: Connector,
    *,
    status: str,
    error_code: str,
    source: str,
    user: User | None = None,
    info: str | None = None,
    vendor_id: str | None = None,
    vendor_error_code: str | None = None,
    event_time: datetime | None = None,
    message_id: str | None = None,
) -> None:
    """Record a status event of `connector` and, unless it is older than the state already
    applied, make it the connector's state. Writes the history row in the caller's
    transaction and publishes the change after the commit.

    Only OCPP events carry the charge point's clock, so only they are compared with the
    event time last applied; a change from the API or a page always applies.
    """
    now = utcnow()
    is_new = inspect(connector).pending or inspect(connector).transient
    previous = None if is_new else connector.connector_status
    stale = (
        source == "ocpp"
        and event_time is not None
        and connector.status_timestamp is not None
        and event_time < connector.status_timestamp
    )
    applied = not stale
    unexpected = applied and not is_expected_transition(previous, status)
    at = event_time or now
    # A plain row, written with the others of its flush in one statement (below): an ORM
    # object per history row cost a quarter of an ingest batch (bench/ingest_batch.py).
    _queue_history(
        db.session,
        {
            "connector_id": connector.connector_id,
            "connector_cp_id": connector.connector_cp_id,
            "status": status,
            "error_code": error_code,
            "previous_status": previous,
            "info": info,
            "vendor_id": vendor_id,
            "vendor_error_code": vendor_error_code,
            "event_time": at,
            "received": now,
            "source": source,
            "user_id": user.id if user is not None else None,
            "unexpected": unexpected,
            "applied": applied,
            "message_id": message_id,
        },
    )
    uptime.touch(connector.connector_cp_id, at, now)
    if source == "ocpp":
        connector.status_reported = now
    company_id = connector.chargepoint.company_id
    if is_new:
        emit(None, "connector.created", company_id, connector_data(connector, status, error_code))
    emit(
        None,
        "connector.status_changed",
        company_id,
        {
            "chargepoint_id": connector.connector_cp_id,
            "connector_id": connector.connector_id,
            "previous_status": previous,
            "status": status,
            "error_code": error_code,
            "info": info,
            "vendor_error_code": vendor_error_code,
            "timestamp": at,
            "source": source,
            "unexpected": unexpected,
            "late": stale,
        },
    )
    if stale:
        return
    incidents.on_status(connector, previous, status, error_code, source, at)
    was = ("", "") if is_new else (previous, connector.connector_error_code)
    connector.connector_status = status
    connector.connector_error_code = error_code
    connector.info = info
    connector.vendor_id = vendor_id
    connector.vendor_error_code = vendor_error_code
    connector.connector_updated = now
    if is_new:
        connector.connector_created = now
    if source == "ocpp":
        connector.status_timestamp = at
    announce(connector, "created" if is_new else "updated", was)


# History rows (dicts of its columns) queued on a session and not written yet; those a
# flush writes once it has inserted the new connectors they belong to (below).
_HISTORY, _FLUSHING_HISTORY = "plugboard_history", "plugboard_history_flushing"


def _queue_history(session: Session, row: dict) -> None:
    session.info.setdefault(_HISTORY, []).append(row)


@sa_event.listens_for(Session, "before_flush")
def _take_history(session: Session, flush_context, instances) -> None:
    """The history rows queued since the last flush are written in one statement (on
    PostgreSQL one of arrays, elsewhere an executemany), in the order they were queued
    (ids follow it): now, or, when new connectors are among what the flush inserts, once
    it has (`_write_history`)."""
    if not session.info.get(_HISTORY):
        return
    if any(isinstance(new, Connector) for new in session.new):
        session.info.setdefault(_FLUSHING_HISTORY, []).extend(session.info.pop(_HISTORY))
    else:
        _insert_history(session, _HISTORY)


@sa_event.listens_for(Session, "after_flush")
def _write_history(session: Session, flush_context) -> None:
    _insert_history(session, _FLUSHING_HISTORY)


@sa_event.listens_for(Session, "before_commit")
def _write_history_left(session: Session) -> None:
    """The commit's flush comes after this, and a flush with nothing else to do does not
    run (nor its before_flush): the rows still queued are written now, after the new
    connectors they may belong to."""
    if session.info.get(_HISTORY):
        session.flush()  # writes them, unless the session held nothing else to write
        _insert_history(session, _HISTORY)


def _insert_history(session: Session, key: str) -> None:
    rows = session.info.pop(key, None)
    if rows:
        insert_all(ConnectorStatusHistory.__table__, rows, session.connection())


# The connectors a flush changed, on PostgreSQL: one UPDATE of arrays for all of those that
# changed the same columns (an ingest batch: the status columns, or only the time of the
# report for a late event), instead of the unit of work's statement per connector, which
# cost a tenth of an ingest worker. Only their changed columns are written, as the unit of
# work would (with connector_updated's onupdate), and a connector gone meanwhile fails the
# flush as it would.
_CONNECTOR_KEYS = ("connector_id", "connector_cp_id")
_CONNECTOR_COLUMNS = frozenset(Connector.__table__.c.keys()) - set(_CONNECTOR_KEYS)


@lru_cache(maxsize=32)
def _update_connectors(columns: tuple[str, ...]):
    names = _CONNECTOR_KEYS + columns
    arrays, binds = unnest(Connector.__table__, names)
    return text(
        f"UPDATE connectors SET {', '.join(f'{name} = v.{name}' for name in columns)} "
        f"FROM {arrays} AS v({', '.join(names)}) "
        "WHERE connectors.connector_id = v.connector_id "
        "AND connectors.connector_cp_id = v.connector_cp_id"
    ).bindparams(*binds)


@sa_event.listens_for(Session, "before_flush")
def _write_connectors(session: Session, flush_context, instances) -> None:
    if instances is not None or session.get_bind().dialect.name != "postgresql":
        return
    groups: dict[tuple[str, ...], list[tuple[Connector, dict]]] = {}
    done = []  # (state, dict) of every connector taken here
    for connector in session.dirty:
        if type(connector) is not Connector:
            continue
        state = inspect(connector)
        values = state.dict
        if (
            state.deleted
            or not state.committed_state.keys() <= _CONNECTOR_COLUMNS
            or not state.committed_state.keys() <= values.keys()
        ):
            continue  # a change the unit of work had better write (a new key, a deletion)
        # Its value when loaded (NO_VALUE: not loaded) against its value now: a value set
        # to what it was is no change (get_history's answer, at a fifth of its cost).
        changed = {
            key: values[key]
            for key, was in state.committed_state.items()
            if was is NO_VALUE or was != values[key]
        }
        done.append((state, values))
        if not changed:
            continue
        if "connector_updated" not in changed:
            changed["connector_updated"] = values["connector_updated"] = utcnow()
        groups.setdefault(tuple(sorted(changed)), []).append((connector, changed))
    for columns, members in groups.items():
        values = {
            name: [getattr(connector, name) for connector, _ in members] for name in _CONNECTOR_KEYS
        }
        values.update({name: [changed[name] for _, changed in members] for name in columns})
        updated = session.connection().execute(_update_connectors(columns), values).rowcount
        if updated != len(members):
            raise StaleDataError(
                f"UPDATE of connectors expected to match {len(members)} rows; {updated} matched"
            )
    # Written (or nothing to write): unmodified, as the unit of work leaves what it
    # flushed, so that it does not look at them again (a third of its flush of a batch).
    # The unit of work's own step after a flush, a private one: SQLAlchemy is pinned, and
    # tests/ocpp/test_ingest.py checks that a connector so left is written when changed
    # again.
    InstanceState._commit_all_states(done, session.identity_map)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_history(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_HISTORY, None)
        session.info.pop(_FLUSHING_HISTORY, None)


def connector_data(connector: Connector, status: str, error_code: str) -> dict:
    """A connector as its events describe it (the API's field names)."""
    return {
        "chargepoint_id": connector.connector_cp_id,
        "connector_id": connector.connector_id,
        "connector_type": connector.connector_type,
        "connector_status": status,
        "connector_error_code": error_code,
        "connector_enabled": connector.connector_enabled is not False,
        "connector_max_volt": connector.connector_max_volt,
        "connector_max_amp": connector.connector_max_amp,
    }


def announce(connector: Connector, action: str, was: tuple[str, str] | None = None) -> None:
    """Tell the live pages (after the commit) that `connector` was created, updated or
    deleted; `was`: its status and error code before a status event ("" for a connector
    it created), so that a list can tell a row that came to match its filters from one
    that matched already."""
    event = {
        "type": "connector",
        "action": action,
        "cp_id": connector.connector_cp_id,
        "connector_id": connector.connector_id,
        "company_id": connector.chargepoint.company_id,
        "status": connector.connector_status,
        "error_code": connector.connector_error_code,
    }
    if was is not None:
        event["was_status"], event["was_error_code"] = was
    publish_after_commit(db.session, event)


def record_ocpp_status(
    cp_id: int,
    *,
    connector_id: int,
    status: str,
    error_code: str,
    message_id: str,
    event_time: datetime | None = None,
    info: str | None = None,
    vendor_id: str | None = None,
    vendor_error_code: str | None = None,
    recorded: set | None = None,
) -> bool:
    """A StatusNotification from charge point `cp_id` for a connector (> 0). A connector the
    charge point reports but Plugboard does not know yet is registered with defaults. A
    retried CALL (same message id, same content) is recognised and records nothing: returns
    False then (True: recorded). This is the hot path of OCPP ingest: a caller that
    records many at once loads their connectors (with their charge points) in one query
    first, so that the lookup here finds them in the session, and gives `recorded`, what
    `recorded_already` found of them all in one query (the event recorded here joins it,
    should the batch hold it twice)."""
    connector = db.session.get(Connector, (connector_id, cp_id))
    event = status_event(cp_id, connector_id, message_id, status, error_code, event_time)
    if recorded is None:
        recorded = recorded_already([event]) if may_be_retry(connector, event_time) else set()
    if event in recorded:
        return False
    if connector is None:
        connector = _register(db.session.get(ChargePoint, cp_id), connector_id, {})
    apply_status(
        connector,
        status=status,
        error_code=error_code,
        source="ocpp",
        info=info,
        vendor_id=vendor_id,
        vendor_error_code=vendor_error_code,
        event_time=event_time,
        message_id=message_id,
    )
    recorded.add(event)
    return True


def may_be_retry(connector: Connector | None, event_time: datetime | None) -> bool:
    """Whether a StatusNotification for `connector` (None: not registered) stamped
    `event_time` may be one recorded already: a retry carries an event time already
    applied (or none), for a connector that exists; anything else is new, and needs no
    look in the history."""
    return connector is not None and (
        event_time is None
        or connector.status_timestamp is None
        or event_time <= connector.status_timestamp
    )


def status_event(
    cp_id: int,
    connector_id: int,
    message_id: str,
    status: str,
    error_code: str,
    event_time: datetime | None = None,
    **_,
) -> tuple:
    """A StatusNotification (the arguments of `record_ocpp_status`) as `recorded_already`
    compares them."""
    return (cp_id, connector_id, message_id, status, error_code, event_time)


# What `recorded_already` reads of the history.
_RECORDED = (
    "connector_cp_id",
    "connector_id",
    "message_id",
    "status",
    "error_code",
    "event_time",
    "received",
)


@lru_cache(maxsize=1)
def _recorded_pairs():
    """The history rows of (charge point, message id) pairs, on PostgreSQL: the pairs as
    two arrays, joined to the history, an index lookup each (0.4–0.6 ms for 150). Two
    `= ANY` conditions, one per column, made PostgreSQL read every row of the batch's
    charge points (2,000,000 rows of history: 29,718 rows, 33 ms for 150 pairs) or look up
    every combination (10,000,000 rows: 22,500 lookups, 20 ms); the history is kept."""
    table = ConnectorStatusHistory.__table__
    arrays, binds = unnest(table, ("connector_cp_id", "message_id"))
    return (
        text(
            f"SELECT {', '.join(f'h.{name}' for name in _RECORDED)} "
            f"FROM {table.name} AS h JOIN {arrays} AS k(cp_id, message_id) "
            "ON h.connector_cp_id = k.cp_id AND h.message_id = k.message_id"
        )
        .bindparams(*binds)
        .columns(*(table.c[name] for name in _RECORDED))
    )


def recorded_already(events: list[tuple]) -> set[tuple]:
    """Which of `events` (each a `status_event`) were recorded already under their message
    id: one query for all.
    Charge points reuse message ids after a reboot, so the id alone is not enough: the
    content must match too, and an event without a time of its own is the same only when
    it was received within RETRY_WINDOW."""
    if not events:
        return set()
    pairs = sorted({(event[0], event[2]) for event in events})
    if db.session.get_bind().dialect.name == "postgresql":
        cp_ids, message_ids = zip(*pairs, strict=True)
        rows = db.session.execute(
            _recorded_pairs(), {"connector_cp_id": list(cp_ids), "message_id": list(message_ids)}
        )
    else:
        History = ConnectorStatusHistory
        rows = db.session.execute(
            select(*(History.__table__.c[name] for name in _RECORDED)).where(
                tuple_(History.connector_cp_id, History.message_id).in_(pairs)
            )
        )
    recent = utcnow() - RETRY_WINDOW
    found = set()
    for cp_id, connector_id, message_id, status, error_code, event_time, received in rows:
        found.add((cp_id, connector_id, message_id, status, error_code, event_time))
        if received > recent:
            found.add((cp_id, connector_id, message_id, status, error_code, None))
    return found & set(events)


def status_counts() -> dict[tuple[str, int], int]:
    """How many connectors are in each status, per owning company (one query)."""
    rows = db.session.execute(
        select(Connector.connector_status, ChargePoint.company_id, func.count())
        .join(ChargePoint, Connector.connector_cp_id == ChargePoint.id)
        .group_by(Connector.connector_status, ChargePoint.company_id)
    )
    return {(status, company_id): count for status, company_id, count in rows}


def status_segments(
    user: User, cp_id: int, connector_id: int, *, since: datetime, until: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The connector's applied statuses from `since` to `until` as (start, end, status)
    segments, in time order (from its first status, if it came later than `since`)."""
    require(user, "read.connector")
    _visible_connector(user, cp_id, connector_id)
    History = ConnectorStatusHistory
    of_connector = (
        History.connector_cp_id == cp_id,
        History.connector_id == connector_id,
        History.applied.is_(True),
    )
    before = db.session.execute(
        select(History.event_time, History.status)
        .where(*of_connector, History.event_time <= since)
        .order_by(History.event_time.desc(), History.id.desc())
        .limit(1)
    ).first()
    changes = db.session.execute(
        select(History.event_time, History.status)
        .where(*of_connector, History.event_time > since, History.event_time < until)
        .order_by(History.event_time, History.id)
    ).all()
    points = ([(since, before.status)] if before else []) + [tuple(row) for row in changes]
    ends = [start for start, _ in points[1:]] + [until]
    return [(start, end, status) for (start, status), end in zip(points, ends, strict=True)]


def status_share(
    user: User, cp_id: int, connector_id: int, *, since: datetime, until: datetime
) -> dict[str, float]:
    """How much of the time from `since` to `until` the connector spent in each status,
    as fractions (adding up to 1 over the time it existed in that period)."""
    spent: dict[str, float] = {}
    for start, end, status in status_segments(user, cp_id, connector_id, since=since, until=until):
        spent[status] = spent.get(status, 0.0) + max(0.0, (end - start).total_seconds())
    total = sum(spent.values())
    return {status: seconds / total for status, seconds in spent.items()} if total else {}
