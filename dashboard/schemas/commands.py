"""Request bodies of the calls to charge points."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from ocpp.v16.enums import AvailabilityType

from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import StrictInteger

_kind = validate.OneOf(
    [kind.value for kind in AvailabilityType], error="Must be one of: {choices}."
)
_cp_id = validate.Range(min=1, max=MAX_ID, error="Must be a charge point id from 1 to {max}.")


class ConnectorAvailabilitySchema(Schema):
    """ChangeAvailability of one connector."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)
    type = fields.String(required=True, validate=_kind)


class ConnectorUnlockSchema(Schema):
    """UnlockConnector."""

    connector_cp_id = StrictInteger(required=True, validate=_cp_id)


class ChargePointAvailabilitySchema(Schema):
    """ChangeAvailability of the whole charge point (connectorId 0)."""

    type = fields.String(required=True, validate=_kind)


class CommandResultSchema(Schema):
    """The charge point's answer."""

    status = fields.String()
