"""Charge point operations."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update

from dashboard.extensions import db
from dashboard.live.events import publish_after_commit
from dashboard.models import ChargePoint, Company, User
from dashboard.models.types import utcnow
from dashboard.services.errors import Conflict, NotFound
from dashboard.services.pagination import Page, paginate
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


def list_chargepoints(
    user: User,
    *,
    company_id: int | None = None,
    text: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """A page of the charge points `user` may see, by identity, filtered by company and by
    `text` (in the identity or the name)."""
    require(user, "read.chargepoint")
    query = chargepoints_visible_to(user)
    if company_id is not None:
        query = query.where(ChargePoint.company_id == company_id)
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        query = query.where(
            or_(
                func.lower(ChargePoint.identity).like(pattern, escape="\\"),
                func.lower(ChargePoint.name).like(pattern, escape="\\"),
            )
        )
    return paginate(query.order_by(ChargePoint.identity), page, per_page)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _visible_company(user: User, company_id: int) -> Company:
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
    _visible_company(user, company_id)
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
    if company_id is not None and company_id != chargepoint.company_id:
        _visible_company(user, company_id)
        chargepoint.company_id = company_id
    if auth_key is not _UNSET:
        chargepoint.set_auth_key(auth_key)
    if registration_status is not None:
        chargepoint.registration_status = registration_status
    db.session.flush()
    _announce(chargepoint, "updated")
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


def _announce_ids(cp_id: int, company_id: int, action: str) -> None:
    publish_after_commit(
        db.session,
        {"type": "chargepoint", "action": action, "cp_id": cp_id, "company_id": company_id},
    )


def connection_state(chargepoint: ChargePoint, now: datetime | None = None) -> str:
    """ "online", "stale" (connected, but silent for longer than OCPP_STALE_FACTOR heartbeat
    intervals) or "offline". Computed when read: no timer writes it."""
    if chargepoint.connected_since is None:
        return "offline"
    config = current_app.config
    silence = timedelta(seconds=config["OCPP_HEARTBEAT_INTERVAL"] * config["OCPP_STALE_FACTOR"])
    last = chargepoint.last_seen or chargepoint.connected_since
    return "stale" if (now or utcnow()) - last > silence else "online"


def record_connected(chargepoint: ChargePoint) -> datetime:
    """Mark `chargepoint` connected now; returns the mark to give back on disconnect."""
    now = utcnow()
    chargepoint.connected_since = now
    chargepoint.last_seen = now
    db.session.flush()
    _announce(chargepoint, "connected")
    return now


def record_disconnected(cp_id: int, company_id: int, since: datetime) -> None:
    """Mark the charge point disconnected, unless a newer connection has marked it since."""
    result = db.session.execute(
        update(ChargePoint)
        .where(ChargePoint.id == cp_id, ChargePoint.connected_since == since)
        .values(connected_since=None)
    )
    if result.rowcount:
        _announce_ids(cp_id, company_id, "disconnected")


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
    db.session.flush()
    _announce(chargepoint, "booted")
    return chargepoint.registration_status


def is_registered(chargepoint: ChargePoint) -> bool:
    """Whether the charge point may send calls other than BootNotification (errata 3.10)."""
    return chargepoint.registration_status == "Accepted" and chargepoint.last_boot is not None


def record_chargepoint_status(chargepoint: ChargePoint, status: str, error_code: str) -> None:
    """The status of the charge point itself (StatusNotification for connectorId 0)."""
    chargepoint.status = status
    chargepoint.error_code = error_code
    db.session.flush()
    _announce(chargepoint, "status")
