"""Calls from Plugboard to a charge point (OCPP 1.6 Core and TriggerMessage): checked like
any operation, sent over the charge point's live connection (in whichever process holds
it), answered with the charge point's reply (validated against the 1.6 schemas), and
logged, whatever the outcome, in the command log.

A company user may see the charge points of their company but not act on them: a call to
one of those is refused (Forbidden, 403), a call to any other charge point is NotFound
(404), as if it did not exist."""

from __future__ import annotations

import json
import time

from flask import current_app
from simple_websocket import ConnectionClosed
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.live.events import current_bus
from dashboard.live.redis_bus import BusUnavailable
from dashboard.metrics import CALL_SECONDS, known_action
from dashboard.models import ChargePoint, Command, User
from dashboard.ocpp16 import registry, remote
from dashboard.ocpp16.connection import CallFailed, CallTimeout
from dashboard.services import uptime
from dashboard.services.chargepoints import visible_chargepoint
from dashboard.services.connectors import get_connector
from dashboard.services.errors import (
    NotFound,
    ServiceUnavailable,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from dashboard.services.outbox import emit
from dashboard.services.pagination import Page, paginate
from dashboard.services.permissions import require
from dashboard.services.visibility import transactions_visible_to


def _operable(user: User, cp_id: int, permission: str = "update.chargepoint") -> ChargePoint:
    """The charge point `cp_id`, if `user` may act on it: 404 unless visible, then 403
    unless the role holds `permission`."""
    chargepoint = visible_chargepoint(user, cp_id)
    require(user, permission)
    return chargepoint


def change_availability(
    user: User,
    cp_id: int,
    connector_id: int,
    kind: str,
    source: str = "api",
    reason: str | None = None,
) -> dict:
    """ChangeAvailability to Operative or Inoperative; connector_id 0 is the whole charge
    point. Returns the charge point's answer ({"status": Accepted|Rejected|Scheduled}).
    Inoperative with a `reason` is maintenance: once accepted (or scheduled), the port's
    out-time is excluded from its uptime until it is made Operative again."""
    if connector_id == 0:
        chargepoint = _operable(user, cp_id)
    else:
        chargepoint = _operable(user, cp_id, "update.connector")
        get_connector(user, cp_id, connector_id)  # NotFound for no such connector
    payload = {"connectorId": connector_id, "type": kind}
    answer = _call(user, chargepoint, "ChangeAvailability", payload, source)
    if answer.get("status") in ("Accepted", "Scheduled"):
        if kind == "Inoperative" and reason:
            uptime.begin_maintenance(user, cp_id, connector_id, reason)
        elif kind == "Operative":
            uptime.end_maintenance(cp_id, connector_id)
        db.session.commit()
    return answer


def unlock_connector(user: User, cp_id: int, connector_id: int, source: str = "api") -> dict:
    """UnlockConnector; returns {"status": Unlocked|UnlockFailed|NotSupported}."""
    chargepoint = _operable(user, cp_id, "update.connector")
    get_connector(user, cp_id, connector_id)  # NotFound for no such connector
    payload = {"connectorId": connector_id}
    return _call(user, chargepoint, "UnlockConnector", payload, source)


def reset(user: User, cp_id: int, kind: str, source: str = "api") -> dict:
    """Reset Soft or Hard; returns {"status": Accepted|Rejected}."""
    return _call(user, _operable(user, cp_id), "Reset", {"type": kind}, source)


def trigger_message(
    user: User, cp_id: int, requested: str, connector_id: int | None = None, source="api"
) -> dict:
    """TriggerMessage: ask the charge point to send a message now (the message itself
    follows as an ordinary CALL); returns {"status": Accepted|Rejected|NotImplemented}."""
    payload = {"requestedMessage": requested}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    return _call(user, _operable(user, cp_id), "TriggerMessage", payload, source)


def get_configuration(user: User, cp_id: int, keys: list[str], source: str = "api") -> dict:
    """GetConfiguration of `keys` (every key when empty), as
    {"configuration_key": [{"key", "readonly", "value"}], "unknown_key": [...]}."""
    payload = {"key": keys} if keys else {}
    answer = _call(user, _operable(user, cp_id), "GetConfiguration", payload, source)
    return {
        "configuration_key": [
            {"key": item["key"], "readonly": item["readonly"], "value": item.get("value")}
            for item in answer.get("configurationKey", [])
        ],
        "unknown_key": list(answer.get("unknownKey", [])),
    }


def change_configuration(user: User, cp_id: int, key: str, value: str, source="api") -> dict:
    """ChangeConfiguration; returns {"status": Accepted|Rejected|RebootRequired|
    NotSupported}."""
    payload = {"key": key, "value": value}
    return _call(user, _operable(user, cp_id), "ChangeConfiguration", payload, source)


def clear_cache(user: User, cp_id: int, source: str = "api") -> dict:
    """ClearCache (the charge point's authorization cache); returns {"status": ...}."""
    return _call(user, _operable(user, cp_id), "ClearCache", {}, source)


def data_transfer(
    user: User,
    cp_id: int,
    vendor_id: str,
    message_id: str | None = None,
    data: str | None = None,
    source: str = "api",
) -> dict:
    """DataTransfer to the charge point; returns {"status": ..., "data"?: ...}."""
    payload = {"vendorId": vendor_id}
    if message_id is not None:
        payload["messageId"] = message_id
    if data is not None:
        payload["data"] = data
    return _call(user, _operable(user, cp_id), "DataTransfer", payload, source)


def remote_start(
    user: User, cp_id: int, connector_id: int, id_tag: str, source: str = "api"
) -> dict:
    """RemoteStartTransaction on a connector for a tag; returns {"status": ...}. The
    transaction itself follows as a StartTransaction from the charge point."""
    chargepoint = _operable(user, cp_id, "update.connector")
    get_connector(user, cp_id, connector_id)  # NotFound for no such connector
    payload = {"connectorId": connector_id, "idTag": id_tag}
    return _call(user, chargepoint, "RemoteStartTransaction", payload, source)


def remote_stop(user: User, transaction_id: int, source: str = "api") -> dict:
    """RemoteStopTransaction of a transaction going on; returns {"status": ...}."""
    from dashboard.models import Transaction

    transaction = db.session.scalar(
        transactions_visible_to(user).where(Transaction.id == transaction_id)
    )
    if transaction is None:
        raise NotFound(f"Transaction {transaction_id} not found")
    chargepoint = _operable(user, transaction.cp_id, "update.connector")
    if not transaction.active:
        raise Unavailable(f"Transaction {transaction_id} is not going on")
    payload = {"transactionId": transaction.id}
    return _call(user, chargepoint, "RemoteStopTransaction", payload, source)


def list_commands(user: User, cp_id: int, *, page: int = 1, per_page: int = 20) -> Page:
    """A page of the calls made to charge point `cp_id`, newest first."""
    require(user, "read.chargepoint")
    visible_chargepoint(user, cp_id)
    query = (
        select(Command)
        .where(Command.cp_id == cp_id)
        .order_by(Command.created.desc(), Command.id.desc())
    )
    return paginate(query, page, per_page)


def _call(user: User, chargepoint: ChargePoint, action: str, payload: dict, source: str) -> dict:
    """Send the call, log it, and return the answer or raise the service error that says
    what went wrong. The log row is committed here, on its own: a failed call must be
    logged too, while the request's own transaction is rolled back."""
    identity, cp_id, company_id = chargepoint.identity, chargepoint.id, chargepoint.company_id
    connection = registry.get(identity)
    elsewhere = current_bus() is not None and chargepoint.connected_since is not None
    # Nothing was written: release the database connection while the charge point thinks.
    db.session.rollback()
    timeout = current_app.config["OCPP_CALL_TIMEOUT"]
    started = time.monotonic()
    answer, failure, outcome = None, None, "answered"
    try:
        if connection is None and not elsewhere:
            raise ConnectionClosed()
        if connection is not None:
            answer = connection.call(action, payload, timeout=timeout)
        else:
            answer = remote.call(identity, action, payload, timeout)  # another process
    except CallTimeout as exc:
        outcome = "timeout"
        failure = UpstreamTimeout(f"Charge point {identity} did not answer {action} in time")
        failure.__cause__ = exc
    except CallFailed as exc:
        outcome = "error"
        failure = UpstreamError(
            f"Charge point {identity} answered {action} with {exc.code}: {exc.description}"
        )
    except ConnectionClosed:
        outcome = "offline"
        failure = Unavailable(f"Charge point {identity} is offline")
    except BusUnavailable:
        outcome = "unavailable"
        failure = ServiceUnavailable(
            f"Charge point {identity} is connected to another worker or host, which cannot "
            "be reached now (Redis is unavailable); try again shortly"
        )
    _log(
        user,
        (cp_id, identity, company_id),
        action,
        payload,
        answer,
        outcome,
        failure,
        source,
        started,
    )
    if failure is not None:
        raise failure
    return answer


def _log(user, chargepoint, action, payload, answer, outcome, failure, source, started) -> None:
    cp_id, identity, company_id = chargepoint
    CALL_SECONDS.labels(known_action(action), outcome).observe(time.monotonic() - started)
    command = Command(
        cp_id=cp_id,
        action=action,
        request=json.dumps(payload),
        answer=None if answer is None else json.dumps(answer),
        outcome=outcome,
        error=None if failure is None else failure.message[:300],
        source=source,
        user_id=getattr(user, "id", None),
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    db.session.add(command)
    db.session.flush()
    emit(
        None,
        "command.completed",
        company_id,
        {
            "command_id": command.id,
            "chargepoint_id": cp_id,
            "identity": identity,
            "action": action,
            "request": payload,
            "outcome": outcome,
            "answer": answer,
            "error": command.error,
            "source": source,
            "user": getattr(user, "email", None),
            "duration_ms": command.duration_ms,
        },
    )
    db.session.commit()
