"""Schemas of the uptime reports: each port's uptime over a period with its outages, and
the operators' exclusions of out-time."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dashboard.models import EXCLUSION_CAUSES
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import StrictInteger, StrictString, UTCDateTime


def _minutes(attribute: str):
    return fields.Function(lambda obj: round(getattr(obj, attribute) / 60, 2))


class ExclusionRefSchema(Schema):
    exclusion_id = fields.Integer(attribute="id")
    cause = fields.String()
    reason = fields.String()


class OutageSchema(Schema):
    """One outage of a port within the period (cut at the period's ends)."""

    start = UTCDateTime()
    end = UTCDateTime()
    minutes = _minutes("seconds")
    cause = fields.String(
        metadata={
            "description": "offline, stale, chargepoint_faulted, chargepoint_unavailable, "
            "faulted, unavailable or unknown (no status known)"
        }
    )
    error_code = fields.String(allow_none=True)
    began_before = fields.Boolean(metadata={"description": "It began before the period."})
    lasts = fields.Boolean(metadata={"description": "It goes on past the period's end."})
    excluded = fields.Boolean()
    excluded_minutes = _minutes("excluded_seconds")
    exclusions = fields.List(fields.Nested(ExclusionRefSchema))


class PortUptimeSchema(Schema):
    """A port's uptime over its part of the period (from its creation, up to now)."""

    chargepoint_id = fields.Integer(attribute="cp_id")
    identity = fields.String()
    connector_id = fields.Integer()
    start = UTCDateTime()
    end = UTCDateTime()
    minutes = _minutes("seconds")
    outage_minutes = _minutes("outage_seconds")
    excluded_minutes = _minutes("excluded_seconds")
    uptime = fields.Float(
        allow_none=True, metadata={"description": "Percent; null for a port not in the period"}
    )
    meets_target = fields.Boolean(allow_none=True, metadata={"description": "uptime > 97 %"})
    outage_count = fields.Integer()
    outages = fields.List(fields.Nested(OutageSchema))


class TotalsSchema(Schema):
    minutes = _minutes("seconds")
    outage_minutes = _minutes("outage_seconds")
    excluded_minutes = _minutes("excluded_seconds")
    uptime = fields.Float(allow_none=True)
    outage_count = fields.Integer()


class UptimeReportSchema(Schema):
    """A page of ports, and the figures of every port in the scope together."""

    start = UTCDateTime()
    end = UTCDateTime()
    totals = fields.Nested(TotalsSchema)
    items = fields.List(fields.Nested(PortUptimeSchema))
    pagination = fields.Dict()


class ExclusionSchema(Schema):
    """Out-time that does not count against uptime: who recorded it, when, and why."""

    exclusion_id = fields.Integer(attribute="id")
    chargepoint_id = fields.Integer(attribute="cp_id")
    connector_id = fields.Integer(allow_none=True)
    starts = UTCDateTime()
    ends = UTCDateTime(allow_none=True)
    cause = fields.String()
    reason = fields.String()
    created_by = fields.Function(
        lambda e: e.created_by.email if e.created_by else None, allow_none=True
    )
    created = UTCDateTime()


class ExclusionCreateSchema(Schema):
    """Exclude out-time of a port (or, without connector_id, of every port of the charge
    point) from its uptime."""

    chargepoint_id = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_ID))
    connector_id = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    starts = UTCDateTime(required=True)
    ends = UTCDateTime(allow_none=True)
    cause = fields.String(
        required=True,
        validate=validate.OneOf(list(EXCLUSION_CAUSES), error="Must be one of: {choices}."),
    )
    reason = StrictString(required=True, validate=validate.Length(max=300))
