"""Connector schemas: the request bodies and the `Connector` object of the specification."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dashboard.schemas.fields import (
    DecimalString,
    StrictBoolean,
    StrictInteger,
    StrictString,
    UTCDateTime,
    format_datetime,
)
from dashboard.services.chargepoints import CONNECTION_STATES, connection_state
from dashboard.services.status import ERROR_CODES, STATUSES

# PostgreSQL's integer: the largest id any key column can hold.
MAX_ID = 2**31 - 1

_connector_number = validate.Range(
    min=1, max=MAX_ID, error="Must be a whole number from 1 to {max}."
)
_cp_id = validate.Range(min=1, max=MAX_ID, error="Must be a charge point id from 1 to {max}.")
_status = validate.OneOf(STATUSES, error="Must be one of the OCPP 1.6 statuses: {choices}.")
_error_code = validate.OneOf(
    ERROR_CODES, error="Must be one of the OCPP 1.6 error codes: {choices}."
)
_type = validate.Length(max=32)


class ConnectorSchema(Schema):
    """A connector as the API returns it (the specification's `Connector`)."""

    connector_id = fields.Integer()
    connector_cp_id = fields.Integer()
    connector_type = fields.String(allow_none=True)
    connector_status = fields.String()
    connector_error_code = fields.String()
    connector_enabled = fields.Boolean()
    connector_max_volt = DecimalString(allow_none=True)
    connector_max_amp = DecimalString(allow_none=True)
    connector_created = UTCDateTime()
    connector_updated = UTCDateTime()
    # Whether connector_status is current: "online" when its charge point is connected;
    # "stale" or "offline" make it the last status known, reported before `last_seen`.
    chargepoint_connection = fields.Function(
        lambda connector: connection_state(connector.chargepoint),
        metadata={"enum": list(CONNECTION_STATES)},
    )
    # When the charge point last reported this status (None: never, over OCPP).
    status_reported_at = UTCDateTime(attribute="status_reported", allow_none=True)
    # The session going on, if any: its transactionId, the energy it has delivered (Wh)
    # and the power now (W), from the latest meter values.
    transaction_id = fields.Integer(allow_none=True)
    session_energy_wh = DecimalString(allow_none=True)
    power_w = DecimalString(allow_none=True)
    chargepoint_last_seen = fields.Function(
        lambda connector: (
            format_datetime(connector.chargepoint.last_seen)
            if connector.chargepoint.last_seen
            else None
        ),
        metadata={"type": "string", "format": "date-time", "nullable": True},
    )


class ConnectorCreateSchema(Schema):
    """`ConnectorCreateRequest`: status, error code and enabled have the spec's defaults."""

    connector_id = StrictInteger(required=True, validate=_connector_number)
    connector_cp_id = StrictInteger(required=True, validate=_cp_id)
    connector_type = StrictString(allow_none=True, validate=_type)
    connector_status = fields.String(load_default="Available", validate=_status)
    connector_error_code = fields.String(load_default="NoError", validate=_error_code)
    connector_enabled = StrictBoolean(load_default=True)
    connector_max_volt = DecimalString(allow_none=True)
    connector_max_amp = DecimalString(allow_none=True)


class ConnectorUpdateSchema(Schema):
    """`ConnectorUpdateRequest`: the charge point id names the connector; the rest is optional."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)
    connector_type = StrictString(allow_none=True, validate=_type)
    connector_status = fields.String(validate=_status)
    connector_error_code = fields.String(validate=_error_code)
    connector_enabled = StrictBoolean()
    connector_max_volt = DecimalString(allow_none=True)
    connector_max_amp = DecimalString(allow_none=True)


class ConnectorDeleteSchema(Schema):
    """`ConnectorDeleteRequest`."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)


class ConnectorHistorySchema(Schema):
    """One status change of a connector."""

    history_id = fields.Integer(attribute="id")
    connector_id = fields.Integer()
    connector_cp_id = fields.Integer()
    status = fields.String()
    previous_status = fields.String(allow_none=True)
    error_code = fields.String()
    info = fields.String(allow_none=True)
    vendor_id = fields.String(allow_none=True)
    vendor_error_code = fields.String(allow_none=True)
    event_time = UTCDateTime()
    received = UTCDateTime()
    source = fields.String()
    user_id = fields.Integer(allow_none=True)
    user_email = fields.Function(lambda row: row.user.email if row.user else None)
    unexpected = fields.Boolean()
    applied = fields.Boolean()
