"""Calls from Plugboard to a charge point (ChangeAvailability, UnlockConnector): checked
like any operation, sent over the charge point's live connection, answered with the
charge point's reply."""

from __future__ import annotations

from flask import current_app
from simple_websocket import ConnectionClosed

from dashboard.extensions import db
from dashboard.live.events import current_bus
from dashboard.live.redis_bus import BusUnavailable
from dashboard.models import ChargePoint, User
from dashboard.ocpp16 import registry, remote
from dashboard.ocpp16.connection import CallFailed, CallTimeout
from dashboard.services.chargepoints import visible_chargepoint
from dashboard.services.connectors import get_connector
from dashboard.services.errors import (
    ServiceUnavailable,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from dashboard.services.permissions import require


def change_availability(user: User, cp_id: int, connector_id: int, kind: str) -> dict:
    """ChangeAvailability to Operative or Inoperative; connector_id 0 is the whole charge
    point. Returns the charge point's answer ({"status": Accepted|Rejected|Scheduled})."""
    if connector_id == 0:
        require(user, "update.chargepoint")
        chargepoint = visible_chargepoint(user, cp_id)
    else:
        require(user, "update.connector")
        chargepoint = get_connector(user, cp_id, connector_id).chargepoint
    return _call(chargepoint, "ChangeAvailability", {"connectorId": connector_id, "type": kind})


def unlock_connector(user: User, cp_id: int, connector_id: int) -> dict:
    """UnlockConnector; returns {"status": Unlocked|UnlockFailed|NotSupported}."""
    require(user, "update.connector")
    chargepoint = get_connector(user, cp_id, connector_id).chargepoint
    return _call(chargepoint, "UnlockConnector", {"connectorId": connector_id})


def _call(chargepoint: ChargePoint, action: str, payload: dict) -> dict:
    identity = chargepoint.identity
    connection = registry.get(identity)
    elsewhere = current_bus() is not None and chargepoint.connected_since is not None
    if connection is None and not elsewhere:
        raise Unavailable(f"Charge point {identity} is offline")
    # Nothing was written: release the database connection while the charge point thinks.
    db.session.rollback()
    timeout = current_app.config["OCPP_CALL_TIMEOUT"]
    try:
        if connection is not None:
            return connection.call(action, payload, timeout=timeout)
        return remote.call(identity, action, payload, timeout)  # held by another process
    except CallTimeout as exc:
        raise UpstreamTimeout(f"Charge point {identity} did not answer {action} in time") from exc
    except CallFailed as exc:
        raise UpstreamError(
            f"Charge point {identity} answered {action} with {exc.code}: {exc.description}"
        ) from exc
    except ConnectionClosed as exc:
        raise Unavailable(f"Charge point {identity} is offline") from exc
    except BusUnavailable as exc:
        raise ServiceUnavailable(
            f"Charge point {identity} is connected to another worker or host, which cannot "
            "be reached now (Redis is unavailable); try again shortly"
        ) from exc
