"""Charge point schemas, in the same style as the connectors."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import StrictInteger, StrictString, UTCDateTime
from dashboard.services.chargepoints import connection_state
from dashboard.services.status import REGISTRATION_STATUSES

# The identity is the last path segment of the OCPP URL: keep it to characters that need no
# escaping there.
IDENTITY_PATTERN = r"^[A-Za-z0-9._:\-]{1,48}$"
_identity = validate.Regexp(
    IDENTITY_PATTERN,
    error="1 to 48 characters: letters, digits, '.', '_', ':' or '-'.",
)
_auth_key = validate.Regexp(
    r"^(?:[0-9A-Fa-f]{2}){16,20}$",
    error="The AuthorizationKey: 32 to 40 hexadecimal digits (16 to 20 bytes).",
)
_company_id = validate.Range(min=1, max=MAX_ID, error="Must be a company id from 1 to {max}.")
_registration = validate.OneOf(REGISTRATION_STATUSES, error="Must be one of: {choices}.")
_name = validate.Length(max=120)


class ChargePointSchema(Schema):
    """A charge point as the API returns it."""

    chargepoint_id = fields.Integer(attribute="id")
    chargepoint_identity = fields.String(attribute="identity")
    chargepoint_name = fields.String(attribute="name")
    chargepoint_company_id = fields.Integer(attribute="company_id")
    chargepoint_company_name = fields.Function(lambda cp: cp.company.name)
    chargepoint_vendor = fields.String(attribute="vendor", allow_none=True)
    chargepoint_model = fields.String(attribute="model", allow_none=True)
    chargepoint_serial_number = fields.String(attribute="serial_number", allow_none=True)
    chargepoint_charge_box_serial_number = fields.String(
        attribute="charge_box_serial_number", allow_none=True
    )
    chargepoint_firmware_version = fields.String(attribute="firmware_version", allow_none=True)
    chargepoint_registration_status = fields.String(attribute="registration_status")
    chargepoint_status = fields.String(attribute="status", allow_none=True)
    chargepoint_error_code = fields.String(attribute="error_code", allow_none=True)
    chargepoint_has_auth_key = fields.Boolean(attribute="has_auth_key")
    chargepoint_connection = fields.Function(connection_state)
    chargepoint_connected_since = UTCDateTime(attribute="connected_since", allow_none=True)
    chargepoint_last_boot = UTCDateTime(attribute="last_boot", allow_none=True)
    chargepoint_last_seen = UTCDateTime(attribute="last_seen", allow_none=True)
    chargepoint_created = UTCDateTime(attribute="created")
    chargepoint_updated = UTCDateTime(attribute="updated")


class ChargePointCreateSchema(Schema):
    """Create a charge point: its OCPP identity, its owner, and optionally its key."""

    chargepoint_identity = StrictString(required=True, validate=_identity)
    chargepoint_name = StrictString(validate=_name)
    chargepoint_company_id = StrictInteger(required=True, validate=_company_id)
    chargepoint_auth_key = StrictString(allow_none=True, validate=_auth_key)
    chargepoint_registration_status = fields.String(load_default="Accepted", validate=_registration)


class ChargePointUpdateSchema(Schema):
    """Change a charge point; `chargepoint_auth_key: null` removes the key."""

    chargepoint_name = StrictString(validate=_name)
    chargepoint_company_id = StrictInteger(validate=_company_id)
    chargepoint_auth_key = StrictString(allow_none=True, validate=_auth_key)
    chargepoint_registration_status = fields.String(validate=_registration)
