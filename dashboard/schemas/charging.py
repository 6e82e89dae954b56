"""Schemas of charging sessions: transactions with their meter values, and id tags."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dashboard.models import IDTAG_STATUSES
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import (
    DecimalString,
    StrictBoolean,
    StrictInteger,
    StrictString,
    UTCDateTime,
)


class MeterValueSchema(Schema):
    """One sampled value, as the charge point sent it, and normalised (energy in Wh,
    power in W) where it is energy or power."""

    timestamp = UTCDateTime()
    measurand = fields.String()
    phase = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    context = fields.String(allow_none=True)
    location = fields.String(allow_none=True)
    format = fields.String(allow_none=True)
    value = fields.String()
    normalised = DecimalString(allow_none=True)


class TransactionSchema(Schema):
    """A charging session as the API returns it."""

    transaction_id = fields.Integer(attribute="id")
    connector_cp_id = fields.Integer(attribute="cp_id")
    connector_id = fields.Integer(allow_none=True)
    id_tag = fields.String(allow_none=True)
    id_tag_status = fields.String(allow_none=True)
    start_timestamp = UTCDateTime(allow_none=True)
    stop_timestamp = UTCDateTime(allow_none=True)
    meter_start_wh = fields.Integer(attribute="meter_start", allow_none=True)
    meter_stop_wh = fields.Integer(attribute="meter_stop", allow_none=True)
    energy_wh = fields.Integer(allow_none=True)
    stop_reason = fields.String(allow_none=True)
    peak_power_w = DecimalString(allow_none=True)
    power_w = DecimalString(attribute="last_power_w", allow_none=True)
    active = fields.Boolean()
    orphan = fields.Boolean()
    reported_transaction_id = fields.Integer(attribute="reported_id", allow_none=True)


class TransactionDetailSchema(TransactionSchema):
    """A transaction with its meter values (for the document: the view adds them)."""

    meter_values = fields.List(fields.Nested(MeterValueSchema))


_tag = validate.Length(min=1, max=20)
_status = validate.OneOf(IDTAG_STATUSES, error="Must be one of: {choices}.")
_note = validate.Length(max=200)
_company_id = validate.Range(min=1, max=MAX_ID, error="Must be a company id from 1 to {max}.")


class IdTagSchema(Schema):
    """An id tag as the API returns it."""

    idtag_id = fields.Integer(attribute="id")
    company_id = fields.Integer()
    tag = fields.String()
    status = fields.String()
    expiry_date = UTCDateTime(attribute="expiry", allow_none=True)
    parent_tag = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    registered = fields.Boolean()
    last_seen = UTCDateTime(allow_none=True)
    created = UTCDateTime()
    updated = UTCDateTime()


class IdTagCreateSchema(Schema):
    """Register an id tag for a company."""

    company_id = StrictInteger(required=True, validate=_company_id)
    tag = StrictString(required=True, validate=_tag)
    status = fields.String(load_default="Accepted", validate=_status)
    expiry_date = UTCDateTime(allow_none=True)
    parent_tag = StrictString(allow_none=True, validate=_tag)
    note = StrictString(allow_none=True, validate=_note)


class IdTagUpdateSchema(Schema):
    """Change an id tag; a tag only seen becomes registered (adopted) by any change, or by
    `registered: true`."""

    status = fields.String(validate=_status)
    expiry_date = UTCDateTime(allow_none=True)
    parent_tag = StrictString(allow_none=True, validate=_tag)
    note = StrictString(allow_none=True, validate=_note)
    registered = StrictBoolean()
