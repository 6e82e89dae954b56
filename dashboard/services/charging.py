"""Charging sessions, from the charge point's side (OCPP 1.6 Core): authorization of id
tags by each company's mode, transactions started and stopped (idempotent: charge points
resend transaction messages whose answer they did not get), meter values, DataTransfer,
and the diagnostics and firmware status notifications."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import (
    AUTHORIZATION_MODES,
    ChargePoint,
    Company,
    Connector,
    DataTransferMessage,
    IdTag,
    MeterValue,
    Transaction,
)
from dashboard.models.types import DECIMAL_PRECISION, DECIMAL_SCALE, utcnow
from dashboard.schemas.fields import format_datetime
from dashboard.services.chargepoints import text_matches, visible_chargepoint, visible_company
from dashboard.services.connectors import announce as announce_connector
from dashboard.services.errors import Conflict, Invalid, NotFound
from dashboard.services.outbox import emit
from dashboard.services.pagination import Page, ordering, paginate
from dashboard.services.permissions import require
from dashboard.services.visibility import idtags_visible_to, transactions_visible_to

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
# Units as sent, to the factor that brings them to Wh (energy) or W (power).
_ENERGY_UNITS = {"Wh": Decimal(1), "kWh": Decimal(1000)}
_POWER_UNITS = {"W": Decimal(1), "kW": Decimal(1000)}
# What an exact decimal column holds (values beyond it are kept as sent, not normalised).
_LARGEST = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)


# --- Authorization -----------------------------------------------------------------------


def id_tag_info(chargepoint: ChargePoint, tag: str) -> dict:
    """The idTagInfo a charge point gets for `tag`, by its company's tags and mode.

    A registered tag answers its own status (Expired once past its expiry date), in either
    mode. Another tag is Accepted in `open` mode, and remembered as seen (so that an
    operator can adopt it), or Invalid in `list` mode."""
    company = chargepoint.company
    now = utcnow()
    found = db.session.scalar(
        select(IdTag).where(IdTag.company_id == company.id, IdTag.tag_key == tag.upper())
    )
    if found is not None:
        found.last_seen = now
    if found is not None and found.registered:
        status = found.status
        if status == "Accepted" and found.expiry is not None and found.expiry <= now:
            status = "Expired"
        info = {"status": status}
        if found.expiry is not None:
            info["expiryDate"] = format_datetime(found.expiry)
        if found.parent_tag:
            info["parentIdTag"] = found.parent_tag
        return info
    if company.authorization_mode != "open":
        return {"status": "Invalid"}
    if found is None:  # remembered as seen (two workers at once: one fails, retried)
        db.session.add(
            IdTag(
                company_id=company.id,
                tag=tag,
                tag_key=tag.upper(),
                status="Accepted",
                registered=False,
                last_seen=now,
            )
        )
    return {"status": "Accepted"}


# --- Transactions ------------------------------------------------------------------------


def start_transaction(
    chargepoint: ChargePoint,
    *,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    reservation_id: int | None = None,
) -> tuple[Transaction, dict]:
    """A StartTransaction: a new transaction, or the one this same message started before
    (same charge point, connector, tag, meterStart and timestamp). Always a transaction:
    when the tag is not Accepted, the charge point stops it itself."""
    info = id_tag_info(chargepoint, id_tag)
    key = {
        "cp_id": chargepoint.id,
        "connector_id": connector_id,
        "id_tag": id_tag,
        "meter_start": meter_start,
        "start_timestamp": timestamp,
    }
    existing = _started(key)
    if existing is not None:
        return existing, info
    # The unique key makes the same message handled by two workers at once fail once
    # (an InternalError the charge point retries), never store twice.
    transaction = Transaction(
        **key, id_tag_status=info["status"], reservation_id=reservation_id, orphan=False
    )
    db.session.add(transaction)
    db.session.flush()
    emit(None, "transaction.started", chargepoint.company_id, transaction_event(transaction))
    connector = db.session.get(Connector, (connector_id, chargepoint.id))
    if connector is not None:
        connector.transaction_id = transaction.id
        connector.energy_wh = Decimal(meter_start)
        connector.session_energy_wh = Decimal(0)
        connector.power_w = None
        connector.meter_timestamp = timestamp
        announce_connector(connector, "updated")
    return transaction, info


def transaction_event(transaction: Transaction) -> dict:
    """A transaction as its events describe it."""
    energy = (
        None if transaction.meter_stop is None else transaction.meter_stop - transaction.meter_start
    )
    return {
        "transaction_id": transaction.id,
        "chargepoint_id": transaction.cp_id,
        "connector_id": transaction.connector_id,
        "id_tag": transaction.id_tag,
        "id_tag_status": transaction.id_tag_status,
        "meter_start": transaction.meter_start,
        "start_timestamp": transaction.start_timestamp,
        "meter_stop": transaction.meter_stop,
        "stop_timestamp": transaction.stop_timestamp,
        "stop_reason": transaction.stop_reason,
        "energy_wh": energy,
    }


def _started(key: dict) -> Transaction | None:
    return db.session.scalar(select(Transaction).filter_by(**key))


def stop_transaction(
    chargepoint: ChargePoint,
    *,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str | None = None,
    id_tag: str | None = None,
    transaction_data: list[tuple[datetime, list[dict]]] | None = None,
) -> dict | None:
    """A StopTransaction: closes the transaction (once: a resent stop changes nothing).
    One Plugboard never gave this charge point is answered all the same, and recorded as
    an orphan stop. Returns the idTagInfo to answer, when the stop names a tag."""
    info = id_tag_info(chargepoint, id_tag) if id_tag else None
    transaction = db.session.scalar(
        select(Transaction).where(
            Transaction.id == transaction_id,
            Transaction.cp_id == chargepoint.id,
            Transaction.orphan.is_(False),
        )
    )
    if transaction is None:
        _record_orphan(chargepoint, transaction_id, meter_stop, timestamp, reason, id_tag)
        return info
    if transaction.stop_timestamp is not None:
        return info  # stopped already: this is the same stop sent again
    transaction.meter_stop = meter_stop
    transaction.stop_timestamp = timestamp
    transaction.stop_reason = reason or "Local"
    transaction.stop_id_tag = id_tag
    emit(None, "transaction.ended", chargepoint.company_id, transaction_event(transaction))
    if transaction_data:
        record_meter_values(
            chargepoint.id, transaction.connector_id, transaction.id, transaction_data
        )
    connector = db.session.get(Connector, (transaction.connector_id, chargepoint.id))
    if connector is not None and connector.transaction_id == transaction.id:
        connector.transaction_id = None
        connector.energy_wh = Decimal(meter_stop)
        connector.session_energy_wh = None
        connector.power_w = None
        connector.meter_timestamp = timestamp
        announce_connector(connector, "updated")
    return info


def _record_orphan(chargepoint, transaction_id, meter_stop, timestamp, reason, id_tag) -> None:
    seen = db.session.scalar(
        select(Transaction.id).where(
            Transaction.cp_id == chargepoint.id,
            Transaction.orphan.is_(True),
            Transaction.reported_id == transaction_id,
            Transaction.stop_timestamp == timestamp,
        )
    )
    if seen is None:
        db.session.add(
            Transaction(
                cp_id=chargepoint.id,
                orphan=True,
                reported_id=transaction_id,
                meter_stop=meter_stop,
                stop_timestamp=timestamp,
                stop_reason=reason or "Local",
                stop_id_tag=id_tag,
                id_tag=id_tag,
            )
        )


# --- Meter values ------------------------------------------------------------------------


def normalise(measurand: str, unit: str | None, value: str, fmt: str | None) -> Decimal | None:
    """Energy in Wh, power in W, from a sampled value as sent; None for other measurands,
    signed data, other units, and values that are no finite decimal or too large to keep."""
    if fmt == "SignedData":
        return None
    if measurand == ENERGY or measurand.startswith("Energy."):
        factor = _ENERGY_UNITS.get(unit or "Wh")
    elif measurand.startswith("Power."):
        factor = _POWER_UNITS.get(unit or "W")
    else:
        return None
    if factor is None:
        return None
    try:
        number = Decimal(value.strip()) * factor
    except (InvalidOperation, AttributeError):
        return None
    if not number.is_finite() or abs(number) >= _LARGEST:
        return None
    return number.quantize(Decimal(1).scaleb(-DECIMAL_SCALE))


def record_meter_values(
    cp_id: int,
    connector_id: int | None,
    transaction_id: int | None,
    meter_values: list[tuple[datetime, list[dict]]],
) -> int:
    """Store every sampled value of `meter_values` ((time, sampledValue list) pairs), as
    sent and, where it is energy or power, normalised; the latest energy and power go on
    the connector and its transaction. Returns how many values were stored."""
    latest: dict[str, tuple[datetime, Decimal]] = {}
    peak: Decimal | None = None
    stored = 0
    for moment, samples in meter_values:
        for sample in samples:
            measurand = sample.get("measurand") or ENERGY
            number = normalise(measurand, sample.get("unit"), sample["value"], sample.get("format"))
            db.session.add(
                MeterValue(
                    cp_id=cp_id,
                    connector_id=connector_id or 0,
                    transaction_id=transaction_id,
                    timestamp=moment,
                    measurand=measurand,
                    phase=sample.get("phase"),
                    unit=sample.get("unit"),
                    context=sample.get("context"),
                    location=sample.get("location"),
                    format=sample.get("format"),
                    value=sample["value"],
                    normalised=number,
                )
            )
            stored += 1
            total = sample.get("phase") in (None, "")  # a per-phase value is a part
            if number is None or not total or measurand not in (ENERGY, POWER):
                continue
            if measurand not in latest or moment >= latest[measurand][0]:
                latest[measurand] = (moment, number)
            if measurand == POWER and (peak is None or number > peak):
                peak = number
    if latest:
        # Without autoflush: the lookups would otherwise write the samples so far one
        # INSERT at a time; at commit they go in batches (profiled: 33 % of a worker).
        with db.session.no_autoflush:
            _apply_latest(cp_id, connector_id, transaction_id, latest, peak)
    return stored


def _apply_latest(cp_id, connector_id, transaction_id, latest, peak) -> None:
    transaction = None
    if transaction_id is not None:
        transaction = db.session.get(Transaction, transaction_id)
        if transaction is not None and (transaction.cp_id != cp_id or transaction.orphan):
            transaction = None  # an id this charge point was never given
        if transaction is not None:
            if ENERGY in latest:
                transaction.last_energy_wh = latest[ENERGY][1]
            if POWER in latest:
                transaction.last_power_w = latest[POWER][1]
            if peak is not None and (
                transaction.peak_power_w is None or peak > transaction.peak_power_w
            ):
                transaction.peak_power_w = peak
    if not connector_id:
        return  # connector 0: the charge point's main meter
    connector = db.session.get(Connector, (connector_id, cp_id))
    if connector is None:
        return
    newest = max(moment for moment, _ in latest.values())
    if connector.meter_timestamp is not None and newest < connector.meter_timestamp:
        return  # late values (sent again after an outage): kept, not shown as now
    if ENERGY in latest:
        connector.energy_wh = latest[ENERGY][1]
        if connector.transaction_id is not None:
            if transaction is None or transaction.id != connector.transaction_id:
                transaction = db.session.get(Transaction, connector.transaction_id)
            if transaction is not None and transaction.meter_start is not None:
                connector.session_energy_wh = latest[ENERGY][1] - transaction.meter_start
    if POWER in latest:
        connector.power_w = latest[POWER][1]
    connector.meter_timestamp = newest
    announce_connector(connector, "updated")


def prune_meter_values(older_than: datetime) -> int:
    """Delete the sampled values received before `older_than` (transactions stay)."""
    table = MeterValue.__table__
    result = db.session.execute(table.delete().where(table.c.received < older_than))
    return result.rowcount


# --- Other messages ----------------------------------------------------------------------


def record_data_transfer(
    chargepoint: ChargePoint, vendor_id: str, message_id: str | None, data: str | None
) -> str:
    """Keep a DataTransfer; its answer: Accepted for a vendor listed in
    OCPP_DATA_TRANSFER_VENDORS, UnknownVendorId for any other."""
    vendors = current_app.config["OCPP_DATA_TRANSFER_VENDORS"]
    status = "Accepted" if vendor_id in vendors else "UnknownVendorId"
    db.session.add(
        DataTransferMessage(
            cp_id=chargepoint.id,
            vendor_id=vendor_id,
            message_id=message_id,
            data=data,
            status=status,
        )
    )
    return status


def record_diagnostics_status(chargepoint: ChargePoint, status: str) -> None:
    """The latest DiagnosticsStatusNotification, kept on the charge point."""
    chargepoint.diagnostics_status = status
    chargepoint.diagnostics_status_at = utcnow()


def record_firmware_status(chargepoint: ChargePoint, status: str) -> None:
    """The latest FirmwareStatusNotification, kept on the charge point."""
    chargepoint.firmware_status = status
    chargepoint.firmware_status_at = utcnow()


# --- What users read and manage ------------------------------------------------------------


_DELIVERED = (
    func.coalesce(Transaction.meter_stop, Transaction.last_energy_wh) - Transaction.meter_start
)
# Latest start first; most energy first. (Orphan stops have no start: where they sort
# depends on the database.)
TRANSACTION_SORTS = {
    "start": (Transaction.start_timestamp.desc(), Transaction.id.desc()),
    "energy": (_DELIVERED.desc(), Transaction.id.desc()),
}


def list_transactions(user, *, page: int = 1, per_page: int = 20, **filters) -> Page:
    """A page of the transactions `user` may see (see `transactions_query`)."""
    return paginate(transactions_query(user, **filters), page, per_page)


def iter_transactions(user, **filters):
    """Every transaction `list_transactions` would page through, streamed (exports);
    closing the generator early closes the database cursor too."""
    result = db.session.scalars(
        transactions_query(user, **filters).execution_options(yield_per=500)
    )
    try:
        yield from result
    finally:
        result.close()


def transactions_query(
    user,
    *,
    cp_id: int | None = None,
    connector_id: int | None = None,
    id_tag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    active: bool | None = None,
    company_id: int | None = None,
    text: str | None = None,
    sort: str = "start",
):
    """The transactions `user` may see, newest first (or by `sort`, one of
    TRANSACTION_SORTS, "-key" reversed), narrowed by charge point (its id, or `text` in
    its identity or name), connector, tag (case-insensitively), start time (from `since`,
    before `until`), whether still going, and company."""
    require(user, "read.transaction")
    if cp_id is not None:
        visible_chargepoint(user, cp_id)  # 404 for one the user may not see
    query = transactions_visible_to(user)
    conditions = {
        Transaction.cp_id: cp_id,
        Transaction.connector_id: connector_id,
        ChargePoint.company_id: company_id,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if id_tag:  # idTokens compare case-insensitively
        query = query.where(func.upper(Transaction.id_tag) == id_tag.upper())
    if text:
        query = query.where(text_matches(text, ChargePoint.identity, ChargePoint.name))
    if since is not None:
        query = query.where(Transaction.start_timestamp >= since)
    if until is not None:
        query = query.where(Transaction.start_timestamp < until)
    if active is True:
        query = query.where(Transaction.stop_timestamp.is_(None), Transaction.orphan.is_(False))
    elif active is False:
        query = query.where(
            (Transaction.stop_timestamp.is_not(None)) | Transaction.orphan.is_(True)
        )
    return query.order_by(*ordering(TRANSACTION_SORTS, sort))


def get_transaction(user, transaction_id: int) -> Transaction:
    """Transaction `transaction_id`, if `user` may see its charge point."""
    require(user, "read.transaction")
    found = db.session.scalar(transactions_visible_to(user).where(Transaction.id == transaction_id))
    if found is None:
        raise NotFound(f"Transaction {transaction_id} not found")
    return found


def transaction_meter_values(transaction: Transaction) -> list[MeterValue]:
    """The sampled values of `transaction` (those still kept), in time order."""
    if transaction.orphan:
        return []
    return list(
        db.session.scalars(
            select(MeterValue)
            .where(
                MeterValue.cp_id == transaction.cp_id,
                MeterValue.transaction_id == transaction.id,
            )
            .order_by(MeterValue.timestamp, MeterValue.id)
        )
    )


def list_idtags(
    user, *, company_id: int | None = None, text: str | None = None, page=1, per_page=20
) -> Page:
    """A page of the id tags of the companies `user` may see, by tag."""
    require(user, "read.idtag")
    query = idtags_visible_to(user)
    if company_id is not None:
        query = query.where(IdTag.company_id == company_id)
    if text:
        query = query.where(text_matches(text, IdTag.tag, IdTag.note))
    return paginate(query.order_by(IdTag.tag_key, IdTag.company_id), page, per_page)


def get_idtag(user, idtag_id: int, permission: str = "read.idtag") -> IdTag:
    """Id tag `idtag_id`, if `user` may see its company."""
    require(user, permission)
    found = db.session.scalar(idtags_visible_to(user).where(IdTag.id == idtag_id))
    if found is None:
        raise NotFound(f"Id tag {idtag_id} not found")
    return found


def create_idtag(
    user,
    *,
    company_id: int,
    tag: str,
    status: str = "Accepted",
    expiry_date: datetime | None = None,
    parent_tag: str | None = None,
    note: str | None = None,
) -> IdTag:
    """Register `tag` for a company (adopting it if it was only seen)."""
    require(user, "create.idtag")
    visible_company(user, company_id)
    found = db.session.scalar(
        select(IdTag).where(IdTag.company_id == company_id, IdTag.tag_key == tag.upper())
    )
    if found is not None and found.registered:
        raise Conflict(
            f"The tag {tag!r} is registered for this company already",
            {"tag": ["Already registered."]},
        )
    if found is None:
        found = IdTag(company_id=company_id, tag_key=tag.upper())
        db.session.add(found)
    found.tag = tag
    found.status = status
    found.expiry = expiry_date
    found.parent_tag = parent_tag
    found.note = note
    found.registered = True
    db.session.flush()
    return found


_UNSET = object()


def update_idtag(
    user,
    idtag_id: int,
    *,
    status: str | None = None,
    expiry_date: object = _UNSET,
    parent_tag: object = _UNSET,
    note: object = _UNSET,
    registered: bool | None = None,
) -> IdTag:
    """Change an id tag; any change to a tag only seen adopts it (registered)."""
    found = get_idtag(user, idtag_id, "update.idtag")
    if status is not None:
        found.status = status
    for name, value in (("expiry", expiry_date), ("parent_tag", parent_tag), ("note", note)):
        if value is not _UNSET:
            setattr(found, name, value)
    found.registered = True if registered is None else registered
    db.session.flush()
    return found


def delete_idtag(user, idtag_id: int) -> None:
    """Forget an id tag (its transactions keep the tag they were started with)."""
    found = get_idtag(user, idtag_id, "delete.idtag")
    db.session.delete(found)
    db.session.flush()


def set_authorization_mode(user, company_id: int, mode: str) -> Company:
    """How a company's charge points authorize tags: "open" or "list"."""
    require(user, "update.idtag")
    if mode not in AUTHORIZATION_MODES:
        raise Invalid("Invalid mode", {"mode": [f"One of {', '.join(AUTHORIZATION_MODES)}."]})
    company = visible_company(user, company_id)
    company.authorization_mode = mode
    db.session.flush()
    return company
