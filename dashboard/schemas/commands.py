"""Request bodies of the calls to charge points."""

from __future__ import annotations

import json

from marshmallow import Schema, fields, validate
from ocpp.v16.enums import AvailabilityType

from dashboard.models.command import OUTCOMES
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import StrictInteger, StrictString, UTCDateTime

_kind = validate.OneOf(
    [kind.value for kind in AvailabilityType], error="Must be one of: {choices}."
)
_cp_id = validate.Range(min=1, max=MAX_ID, error="Must be a charge point id from 1 to {max}.")


def _maintenance_reason():
    return StrictString(
        allow_none=True,
        validate=validate.Length(max=300),
        metadata={
            "description": "With Inoperative: maintenance. Once the charge point accepts, "
            "the out-time until it is made Operative again is excluded from uptime."
        },
    )


class ConnectorAvailabilitySchema(Schema):
    """ChangeAvailability of one connector."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)
    type = fields.String(required=True, validate=_kind)
    reason = _maintenance_reason()


class ConnectorUnlockSchema(Schema):
    """UnlockConnector."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)


class ChargePointAvailabilitySchema(Schema):
    """ChangeAvailability of the whole charge point (connectorId 0)."""

    type = fields.String(required=True, validate=_kind)
    reason = _maintenance_reason()


class CommandResultSchema(Schema):
    """The charge point's answer."""

    status = fields.String()


class ResetSchema(Schema):
    """Reset."""

    type = fields.String(
        required=True, validate=validate.OneOf(["Soft", "Hard"], error="Must be Soft or Hard.")
    )


TRIGGERABLE = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)


class TriggerSchema(Schema):
    """TriggerMessage."""

    requested_message = fields.String(
        required=True, validate=validate.OneOf(TRIGGERABLE, error="Must be one of: {choices}.")
    )
    connector_id = StrictInteger(
        allow_none=True, validate=validate.Range(min=0, max=MAX_ID, error="From {min} to {max}.")
    )


class ConfigurationChangeSchema(Schema):
    """ChangeConfiguration."""

    key = StrictString(required=True, validate=validate.Length(min=1, max=50))
    value = fields.String(required=True, validate=validate.Length(max=500))


class DataTransferSchema(Schema):
    """DataTransfer to the charge point."""

    vendor_id = StrictString(required=True, validate=validate.Length(min=1, max=255))
    message_id = StrictString(allow_none=True, validate=validate.Length(max=50))
    data = fields.String(allow_none=True, validate=validate.Length(max=10000))


class RemoteStartSchema(Schema):
    """RemoteStartTransaction on the connector of the path."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)
    id_tag = StrictString(required=True, validate=validate.Length(min=1, max=20))


class ConfigurationKeySchema(Schema):
    """One configuration key of the charge point."""

    key = fields.String()
    readonly = fields.Boolean()
    value = fields.String(allow_none=True)


class ConfigurationSchema(Schema):
    """The charge point's answer to GetConfiguration."""

    configuration_key = fields.List(fields.Nested(ConfigurationKeySchema))
    unknown_key = fields.List(fields.String())


class DataTransferResultSchema(Schema):
    """The charge point's answer to a DataTransfer."""

    status = fields.String()
    data = fields.Raw(allow_none=True)


class CommandLogSchema(Schema):
    """One call made to a charge point."""

    command_id = fields.Integer(attribute="id")
    action = fields.String()
    request = fields.Function(lambda command: json.loads(command.request))
    answer = fields.Function(
        lambda command: None if command.answer is None else json.loads(command.answer)
    )
    outcome = fields.String(metadata={"enum": list(OUTCOMES)})
    error = fields.String(allow_none=True)
    source = fields.String(metadata={"enum": ["api", "ui", "system"]})
    user_email = fields.Function(lambda command: command.user.email if command.user else None)
    created = UTCDateTime()
    duration_ms = fields.Integer(allow_none=True)
