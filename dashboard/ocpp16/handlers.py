"""What Plugboard answers to each CALL a charge point sends. Each CALL is one transaction:
validated, handled through the services, committed, answered."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import NoReturn

from flask import current_app

from dashboard.extensions import commit, db
from dashboard.metrics import count_ocpp_message
from dashboard.models import ChargePoint
from dashboard.models.types import utcnow
from dashboard.ocpp16 import frames
from dashboard.ocpp16.frames import Frame, OcppError
from dashboard.ocpp16.ingest import BOOT, METER, SEEN, batcher
from dashboard.ocpp16.validation import KNOWN_ACTIONS, parse_datetime, validate
from dashboard.schemas.fields import format_datetime
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services import charging
from dashboard.services.status import CHARGEPOINT_STATUSES

log = logging.getLogger(__name__)

# "Last seen" is written at most this often for frames other than Heartbeat (whose only
# purpose is to say "alive"): one write per second per charge point instead of one per
# frame, while staleness is judged in heartbeat intervals (minutes).
LAST_SEEN_RESOLUTION = 1.0


def _chargepoint(connection) -> ChargePoint:
    chargepoint = db.session.get(ChargePoint, connection.cp_id)
    if chargepoint is None:  # deleted while connected
        _gone(connection)
    return chargepoint


def _gone(connection) -> NoReturn:
    connection.close(1008, "charge point removed")
    raise OcppError(frames.SECURITY_ERROR, "This charge point is no longer registered")


def boot_notification(connection, frame: Frame) -> dict:
    """Store the charge point's description (in the batch of this process's frequent
    messages: a fleet reconnecting boots at once); answer its registration status."""
    booted = batcher().submit(connection.cp_id, BOOT, payload=frame.payload)
    if booted is None:  # deleted while connected
        _gone(connection)
    status, connection.registered = booted
    connection.last_seen_written = time.monotonic()  # the batch wrote it
    # After a boot, every connector's status is due again (see FreshStatuses).
    connection.reported.clear()
    connection.settle_from = time.monotonic()
    config = current_app.config
    interval = (
        config["OCPP_HEARTBEAT_INTERVAL"]
        if status == "Accepted"
        else config["OCPP_BOOT_RETRY_INTERVAL"]
    )
    return {"status": status, "currentTime": format_datetime(utcnow()), "interval": interval}


def heartbeat(connection, frame: Frame) -> dict:
    """The current time; "last seen" is written now, whatever its resolution (in the
    batch of this process's frequent messages)."""
    batcher().submit(connection.cp_id, SEEN)
    connection.last_seen_written = time.monotonic()
    return {"currentTime": format_datetime(utcnow())}


def status_notification(connection, frame: Frame) -> dict:
    """Move a connector's status (or the charge point's, for connectorId 0). Always `{}`:
    an unexpected transition is recorded and flagged, never refused (§4.9)."""
    payload = frame.payload
    connector_id = payload["connectorId"]
    if connector_id == 0:
        if payload["status"] not in CHARGEPOINT_STATUSES:
            raise OcppError(
                frames.PROPERTY_CONSTRAINT_VIOLATION,
                f"connectorId 0 (the charge point) takes only {', '.join(CHARGEPOINT_STATUSES)}",
                {"field": "status"},
            )
        chargepoint_service.record_chargepoint_status(
            _chargepoint(connection),
            payload["status"],
            payload["errorCode"],
            _event_time(connection, payload.get("timestamp")),
        )
        return {}
    config = current_app.config
    if connector_id > config["OCPP_MAX_CONNECTORS"]:
        log.warning(
            "%s: StatusNotification for connector %s refused (OCPP_MAX_CONNECTORS is %s)",
            connection.identity,
            connector_id,
            config["OCPP_MAX_CONNECTORS"],
        )
        raise OcppError(
            frames.PROPERTY_CONSTRAINT_VIOLATION,
            f"connectorId must be at most {config['OCPP_MAX_CONNECTORS']} here",
            {"field": "connectorId"},
        )
    batcher().submit(
        connection.cp_id,
        connector_id=connector_id,
        status=payload["status"],
        error_code=payload["errorCode"],
        message_id=frame.message_id,
        event_time=_event_time(connection, payload.get("timestamp")),
        info=payload.get("info"),
        vendor_id=payload.get("vendorId"),
        vendor_error_code=payload.get("vendorErrorCode"),
    )
    connection.last_seen_written = time.monotonic()  # the batch wrote it
    connection.reported.add(connector_id)
    return {}


def _event_time(connection, timestamp: str | None) -> datetime | None:
    """The time the charge point gives an event, or None (the time of receipt). A time
    further ahead than OCPP_MAX_FUTURE_SECONDS is a wrong clock: taken as received, or that
    one message would hold the connector's state until its date, refusing every true one
    as older."""
    if not timestamp:
        return None
    moment = parse_datetime(timestamp)
    ahead = (moment - utcnow()).total_seconds()
    if ahead > current_app.config["OCPP_MAX_FUTURE_SECONDS"]:
        log.warning(
            "%s: timestamp %s is %d s ahead of this server; taken as received",
            connection.identity,
            timestamp,
            ahead,
        )
        return None
    return moment


def _connector_number(payload: dict, *, allow_zero: bool) -> int:
    """connectorId, within 1 (or 0) to OCPP_MAX_CONNECTORS; PropertyConstraintViolation
    otherwise."""
    number = payload["connectorId"]
    highest = current_app.config["OCPP_MAX_CONNECTORS"]
    if number > highest or (number == 0 and not allow_zero):
        lowest = 0 if allow_zero else 1
        raise OcppError(
            frames.PROPERTY_CONSTRAINT_VIOLATION,
            f"connectorId must be from {lowest} to {highest} here",
            {"field": "connectorId"},
        )
    return number


def _meter_values(items: list[dict]) -> list[tuple[datetime, list[dict]]]:
    return [(parse_datetime(item["timestamp"]), item["sampledValue"]) for item in items]


def authorize(connection, frame: Frame) -> dict:
    """The tag's idTagInfo, by the charge point's company's tags and mode."""
    chargepoint = _chargepoint(connection)
    return {"idTagInfo": charging.id_tag_info(chargepoint, frame.payload["idTag"])}


def start_transaction(connection, frame: Frame) -> dict:
    """A transactionId, always (the same one for the same message sent again), and the
    tag's idTagInfo: the charge point stops a transaction whose tag is not Accepted."""
    payload = frame.payload
    transaction, info = charging.start_transaction(
        _chargepoint(connection),
        connector_id=_connector_number(payload, allow_zero=False),
        id_tag=payload["idTag"],
        meter_start=payload["meterStart"],
        timestamp=parse_datetime(payload["timestamp"]),
        reservation_id=payload.get("reservationId"),
    )
    return {"transactionId": transaction.id, "idTagInfo": info}


def stop_transaction(connection, frame: Frame) -> dict:
    """Closes the transaction (a stop sent again, or for an id never given, is answered
    all the same); idTagInfo when the stop names a tag."""
    payload = frame.payload
    info = charging.stop_transaction(
        _chargepoint(connection),
        transaction_id=payload["transactionId"],
        meter_stop=payload["meterStop"],
        timestamp=parse_datetime(payload["timestamp"]),
        reason=payload.get("reason"),
        id_tag=payload.get("idTag"),
        transaction_data=_meter_values(payload.get("transactionData", [])),
    )
    return {} if info is None else {"idTagInfo": info}


def meter_values(connection, frame: Frame) -> dict:
    """Stores every sampled value (in the batch of this process's frequent messages);
    `{}` once committed."""
    payload = frame.payload
    batcher().submit(
        connection.cp_id,
        METER,
        connector_id=_connector_number(payload, allow_zero=True),
        transaction_id=payload.get("transactionId"),
        meter_values=_meter_values(payload["meterValue"]),
    )
    connection.last_seen_written = time.monotonic()  # the batch wrote it
    return {}


def data_transfer(connection, frame: Frame) -> dict:
    """Recorded; Accepted for a vendor listed in OCPP_DATA_TRANSFER_VENDORS, else
    UnknownVendorId. Never an error."""
    payload = frame.payload
    data = payload.get("data")
    status = charging.record_data_transfer(
        _chargepoint(connection),
        payload["vendorId"],
        payload.get("messageId"),
        data if data is None or isinstance(data, str) else json.dumps(data),
    )
    return {"status": status}


def diagnostics_status_notification(connection, frame: Frame) -> dict:
    """The latest diagnostics status, kept on the charge point."""
    charging.record_diagnostics_status(_chargepoint(connection), frame.payload["status"])
    return {}


def firmware_status_notification(connection, frame: Frame) -> dict:
    """The latest firmware status, kept on the charge point."""
    charging.record_firmware_status(_chargepoint(connection), frame.payload["status"])
    return {}


HANDLERS = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
}


def handle_call(connection, frame: Frame) -> str:
    """Answer one CALL with a CALLRESULT or a CALLERROR frame. Nothing a charge point sends
    escapes as an exception: the connection and the worker go on."""
    try:
        handler = HANDLERS.get(frame.action)
        if handler is None:
            if frame.action in KNOWN_ACTIONS:
                raise OcppError(frames.NOT_SUPPORTED, f"{frame.action} is not supported here")
            raise OcppError(frames.NOT_IMPLEMENTED, f"Unknown action {frame.action!r}")
        validate(frames.CALL, frame.action, frame.payload)
        if frame.action != "BootNotification" and not connection.registered:
            raise OcppError(
                frames.SECURITY_ERROR,
                "Send a BootNotification and be Accepted before any other call",
            )
        result = handler(connection, frame)
        _record_seen(connection)
        commit()
        count_ocpp_message(frame.action, "ok")
        return frames.call_result(frame.message_id, result)
    except OcppError as error:
        db.session.rollback()
        record_alive(connection)
        count_ocpp_message(frame.action, error.code)
        return frames.call_error(frame.message_id, error)
    except Exception:
        db.session.rollback()
        log.exception("%s: %s failed", connection.identity, frame.action)
        error = OcppError(frames.INTERNAL_ERROR, "The central system could not process this")
        count_ocpp_message(frame.action, error.code)
        return frames.call_error(frame.message_id, error)


def _record_seen(connection) -> None:
    now = time.monotonic()
    if now - connection.last_seen_written >= LAST_SEEN_RESOLUTION:
        chargepoint_service.record_seen(connection.cp_id)
        connection.last_seen_written = now


def record_alive(connection) -> None:
    """Update "last seen" for a frame that is not a successful CALL, in its own transaction."""
    try:
        _record_seen(connection)
        commit()
    except Exception:
        db.session.rollback()
        log.exception("%s: could not record last seen", connection.identity)
