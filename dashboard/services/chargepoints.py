"""Charge point operations."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from flask import current_app
from sqlalchemy import and_, any_, bindparam, case, func, or_, select, text, tuple_, update

from dashboard.extensions import BinaryArray, among, db, unnest
from dashboard.live.events import publish_after_commit
from dashboard.models import ChargePoint, Company, ConnectivityEvent, Connector, User
from dashboard.models.types import utcnow
from dashboard.services import incidents, uptime
from dashboard.services.errors import Conflict, NotFound
from dashboard.services.outbox import emit
from dashboard.services.pagination import Page, ordering, paginate
from dashboard.services.permissions import require
from dashboard.services.visibility import chargepoints_visible_to


def get_chargepoint(user: User, cp_id: int) -> ChargePoint:
    """The charge point `cp_id`, if `user` may see it; NotFound otherwise."""
    require(user, "read.chargepoint")
    return visible_chargepoint(user, cp_id)


def visible_chargepoint(user: User, cp_id: int) -> ChargePoint:
    """The charge point `cp_id` within `user`'s company policy, without a permission check:
    for operations that hold their own (a connector's create, say)."""
    chargepoint = db.session.scalar(chargepoints_visible_to(user).where(ChargePoint.id == cp_id))
    if chargepoint is None:
        raise NotFound(f"Charge point {cp_id} not found")
    return chargepoint


CHARGEPOINT_SORTS = {
    "identity": (ChargePoint.identity,),
    "name": (ChargePoint.name, ChargePoint.identity),
    "company": (Company.name, ChargePoint.identity),
    "last_seen": (ChargePoint.last_seen.desc(), ChargePoint.identity),
}
CONNECTION_STATES = ("online", "stale", "offline")


def list_chargepoints(
    user: User,
    *,
    company_id: int | None = None,
    text: str | None = None,
    connection: str | None = None,
    sort: str = "identity",
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """A page of the charge points `user` may see, filtered by company, by `text` (in the
    identity or the name) and by connection state, sorted by one of CHARGEPOINT_SORTS
    ("-key": reversed)."""
    require(user, "read.chargepoint")
    query = chargepoints_visible_to(user).join(Company, ChargePoint.company_id == Company.id)
    if company_id is not None:
        query = query.where(ChargePoint.company_id == company_id)
    if text:
        query = query.where(text_matches(text, ChargePoint.identity, ChargePoint.name))
    if connection is not None:
        query = query.where(_connection_condition(connection))
    return paginate(query.order_by(*ordering(CHARGEPOINT_SORTS, sort)), page, per_page)


def text_matches(text: str, *columns):
    """A condition: `text` appears, case-insensitively, in one of `columns`."""
    pattern = f"%{_escape_like(text.lower())}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visible_company(user: User, company_id: int) -> Company:
    """The company `company_id`, if `user` may see it (a superadmin: any); NotFound
    otherwise."""
    company = db.session.get(Company, company_id)
    if company is None or not (user.is_superadmin or user.company_id == company_id):
        raise NotFound(f"Company {company_id} not found")
    return company


def create_chargepoint(
    user: User,
    *,
    identity: str,
    company_id: int,
    name: str | None = None,
    auth_key: str | None = None,
    registration_status: str = "Accepted",
) -> ChargePoint:
    """Register a charge point under `identity` for a company."""
    require(user, "create.chargepoint")
    visible_company(user, company_id)
    taken = db.session.scalar(select(ChargePoint.id).where(ChargePoint.identity == identity))
    if taken is not None:
        raise Conflict(f"A charge point with identity '{identity}' already exists")
    chargepoint = ChargePoint(
        identity=identity,
        name=name or identity,
        company_id=company_id,
        registration_status=registration_status,
    )
    chargepoint.set_auth_key(auth_key)
    db.session.add(chargepoint)
    db.session.flush()
    _announce(chargepoint, "created")
    return chargepoint


_UNSET = object()


def update_chargepoint(
    user: User,
    cp_id: int,
    *,
    name: str | None = None,
    company_id: int | None = None,
    auth_key: object = _UNSET,
    registration_status: str | None = None,
) -> ChargePoint:
    """Change a charge point; `auth_key=None` removes its key, leaving it out keeps it."""
    require(user, "update.chargepoint")
    chargepoint = visible_chargepoint(user, cp_id)
    if name is not None:
        chargepoint.name = name
    previous_company_id = None
    if company_id is not None and company_id != chargepoint.company_id:
        visible_company(user, company_id)
        previous_company_id = chargepoint.company_id
        chargepoint.company_id = company_id
    if auth_key is not _UNSET:
        chargepoint.set_auth_key(auth_key)
    if registration_status is not None:
        chargepoint.registration_status = registration_status
    db.session.flush()
    # A move is told to the company it left too: its pages drop the charge point.
    _announce_ids(chargepoint.id, chargepoint.company_id, "updated", previous_company_id)
    return chargepoint


def delete_chargepoint(user: User, cp_id: int) -> None:
    """Delete a charge point with its connectors and their status history."""
    require(user, "delete.chargepoint")
    chargepoint = visible_chargepoint(user, cp_id)
    _announce(chargepoint, "deleted")
    # The database cascades to connectors and history (ON DELETE CASCADE).
    db.session.delete(chargepoint)
    db.session.flush()


def _announce(chargepoint: ChargePoint, action: str) -> None:
    _announce_ids(chargepoint.id, chargepoint.company_id, action)


def _announce_ids(
    cp_id: int, company_id: int, action: str, previous_company_id: int | None = None
) -> None:
    event = {"type": "chargepoint", "action": action, "cp_id": cp_id, "company_id": company_id}
    if previous_company_id is not None:
        event["previous_company_id"] = previous_company_id
    publish_after_commit(db.session, event)


def stale_after() -> timedelta:
    """How long a connected charge point may stay silent before it shows as stale."""
    config = current_app.config
    return timedelta(seconds=config["OCPP_HEARTBEAT_INTERVAL"] * config["OCPP_STALE_FACTOR"])


def connection_state(chargepoint: ChargePoint, now: datetime | None = None) -> str:
    """Whether the charge point is "online", "stale" (connected, but silent for longer than
    OCPP_STALE_FACTOR heartbeat intervals) or "offline". Computed when read: no timer
    writes it."""
    if chargepoint.connected_since is None:
        return "offline"
    last = chargepoint.last_seen or chargepoint.connected_since
    return "stale" if (now or utcnow()) - last > stale_after() else "online"


def _connection_condition(state: str):
    """The SQL form of `connection_state(...) == state`."""
    if state == "offline":
        return ChargePoint.connected_since.is_(None)
    recent = func.coalesce(ChargePoint.last_seen, ChargePoint.connected_since) >= (
        utcnow() - stale_after()
    )
    connected = ChargePoint.connected_since.is_not(None)
    return and_(connected, recent) if state == "online" else and_(connected, ~recent)


def connection_counts() -> dict[str, int]:
    """How many charge points are online, stale and offline (one query)."""
    state = case(
        (_connection_condition("offline"), "offline"),
        (_connection_condition("online"), "online"),
        else_="stale",
    )
    counts = dict.fromkeys(CONNECTION_STATES, 0)
    for name, count in db.session.execute(select(state, func.count()).group_by(state)):
        counts[name] = count
    return counts


def connector_counts(cp_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each charge point, how many of its connectors are in each status (one query)."""
    if not cp_ids:
        return {}
    rows = db.session.execute(
        select(Connector.connector_cp_id, Connector.connector_status, func.count())
        .where(Connector.connector_cp_id.in_(cp_ids))
        .group_by(Connector.connector_cp_id, Connector.connector_status)
    )
    counts: dict[int, dict[str, int]] = {cp_id: {} for cp_id in cp_ids}
    for cp_id, status, count in rows:
        counts[cp_id][status] = count
    return counts


def record_connected(*cp_ids: int) -> datetime:
    """Mark the charge points connected now; returns the mark to give back on disconnect.
    One UPDATE for all, no read: a whole fleet may reconnect at once, and the ingest batch
    marks every charge point that connected meanwhile together. The announcements name the
    company each belongs to now (the UPDATE returns it)."""
    now = utcnow()
    rows = db.session.execute(
        update(ChargePoint)
        .where(among(ChargePoint.id, cp_ids))
        .values(connected_since=now, last_seen=now, stale_since=None)
        .returning(ChargePoint.id, ChargePoint.company_id, ChargePoint.identity)
        .execution_options(synchronize_session=False)
    ).all()
    for cp_id, company_id, identity in sorted(rows):
        _announce_ids(cp_id, company_id, "connected")
        emit(None, "chargepoint.connected", company_id, _cp_data(cp_id, identity))
        incidents.on_connected(cp_id, now)
    return now


@lru_cache(maxsize=1)
def _disconnect_arrays():
    """The UPDATE of `record_disconnections` on PostgreSQL, its marks as two arrays: the
    same statement whatever their number (as a list of pairs, 500 of them took 60 ms)."""
    table = ChargePoint.__table__
    arrays, binds = unnest(table, ("id", "connected_since"))
    return text(
        f"UPDATE {table.name} SET connected_since = NULL, stale_since = NULL, updated = :now "
        f"FROM {arrays} AS m(id, since) "
        f"WHERE {table.name}.id = m.id AND {table.name}.connected_since = m.since "
        f"RETURNING {table.name}.id, {table.name}.company_id, {table.name}.identity"
    ).bindparams(*binds, bindparam("now", type_=table.c.updated.type))


def record_disconnections(marks: list[tuple[int, datetime]]) -> None:
    """Mark charge points disconnected, each (cp_id, the mark its connection got) unless a
    newer connection has marked it since: one UPDATE for all (a worker stopping for a
    deploy marks thousands at once). The announcements name the company each belongs to
    now, not when it connected."""
    now = utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        ids, since = zip(*marks, strict=True) if marks else ((), ())
        rows = db.session.execute(
            _disconnect_arrays(), {"id": list(ids), "connected_since": list(since), "now": now}
        ).all()
    else:
        rows = db.session.execute(
            update(ChargePoint)
            .where(tuple_(ChargePoint.id, ChargePoint.connected_since).in_(marks))
            .values(connected_since=None, stale_since=None)
            .returning(ChargePoint.id, ChargePoint.company_id, ChargePoint.identity)
            .execution_options(synchronize_session=False)
        ).all()
    rows = sorted(rows)
    for cp_id, company_id, identity in rows:
        _announce_ids(cp_id, company_id, "disconnected")
        emit(None, "chargepoint.disconnected", company_id, _cp_data(cp_id, identity))
    incidents.on_disconnected([(cp_id, company_id) for cp_id, company_id, _ in rows], now)


def _cp_data(cp_id: int, identity: str, **more) -> dict:
    return {"chargepoint_id": cp_id, "identity": identity, **more}


def record_seen(cp_id: int, moment: datetime | None = None) -> None:
    """Any message proves the charge point alive (OCPP 1.6 §4.6): "last seen" is now."""
    db.session.execute(
        update(ChargePoint)
        .where(ChargePoint.id == cp_id)
        .values(last_seen=moment or utcnow())
        .execution_options(synchronize_session=False)
    )


BOOT_FIELDS = {
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serial_number",
    "chargeBoxSerialNumber": "charge_box_serial_number",
    "firmwareVersion": "firmware_version",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meter_type",
    "meterSerialNumber": "meter_serial_number",
}


def record_boot(chargepoint: ChargePoint, boot: dict) -> str:
    """Store what a BootNotification reports; returns the registration status to answer.
    Only an Accepted boot registers the charge point (its later calls are then allowed)."""
    for ocpp_name, attribute in BOOT_FIELDS.items():
        setattr(chargepoint, attribute, boot.get(ocpp_name))
    if chargepoint.registration_status == "Accepted":
        chargepoint.last_boot = utcnow()
    _announce(chargepoint, "booted")
    emit(
        None,
        "chargepoint.booted",
        chargepoint.company_id,
        _cp_data(
            chargepoint.id,
            chargepoint.identity,
            registration_status=chargepoint.registration_status,
            vendor=chargepoint.vendor,
            model=chargepoint.model,
            firmware_version=chargepoint.firmware_version,
        ),
    )
    return chargepoint.registration_status


@lru_cache(maxsize=2)
def _admissions_query(dialect: str):
    """The read of `admissions`, built once per dialect: its identities are one bound
    array on PostgreSQL (`= ANY`), an expanding IN elsewhere."""
    table = ChargePoint.__table__
    if dialect == "postgresql":
        asked = table.c.identity == any_(
            bindparam("identities", type_=BinaryArray(table.c.identity.type))
        )
    else:
        asked = table.c.identity.in_(bindparam("identities", expanding=True))
    return select(
        table.c.identity,
        table.c.id,
        table.c.auth_key_hash,
        table.c.registration_status,
        table.c.last_boot,
    ).where(asked)


def admissions(identities) -> dict:
    """What admitting a connection of each charge point of `identities` needs to know of
    it, by identity (an identity nobody registered is left out): a row of `identity`,
    `id`, `auth_key_hash`, `registration_status` and `last_boot` (`is_registered` takes
    it). One read for all, without a transaction, ORM objects or the session, on a
    connection given back at once: a fleet reconnecting at once is admitted thousands at a
    time (ocpp16/admissions.py gathers the handshakes of a process into one read). Under
    gevent on PostgreSQL, a read per handshake cost 0.44–0.60 ms of CPU (loops of 3,000);
    gathered, 0.71 ms for a lone one, 0.23 ms each with 3 asking at once, 0.09 with 10,
    0.05 with 50 (bench: greenlets asking at once, 29 November)."""
    identities = set(identities)
    if not identities:
        return {}
    query = _admissions_query(db.engine.dialect.name)
    with db.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = autocommit.execute(query, {"identities": list(identities)})
        return {row.identity: row for row in rows}


def is_registered(chargepoint: ChargePoint) -> bool:
    """Whether the charge point may send calls other than BootNotification (errata 3.10);
    `chargepoint` may be a row of `admissions`."""
    return chargepoint.registration_status == "Accepted" and chargepoint.last_boot is not None


def record_chargepoint_status(
    chargepoint: ChargePoint, status: str, error_code: str, event_time: datetime | None = None
) -> None:
    """The status of the charge point itself (StatusNotification for connectorId 0), kept
    in its log at the event's time (the uptime of its ports depends on it)."""
    previous = chargepoint.status
    chargepoint.status = status
    chargepoint.error_code = error_code
    at = event_time or utcnow()
    db.session.add(
        ConnectivityEvent(
            cp_id=chargepoint.id, kind="status", at=at, status=status, error_code=error_code
        )
    )
    uptime.touch(chargepoint.id, at)
    db.session.flush()
    _announce(chargepoint, "status")
    incidents.on_chargepoint_status(chargepoint, previous, status, error_code)
