"""Schemas of what integrations use: events, webhook endpoints and their deliveries,
incidents."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.fields import StrictBoolean, StrictInteger, StrictString, UTCDateTime
from dashboard.services.outbox import EVENT_TYPES

_types = fields.List(
    fields.String(validate=validate.OneOf(EVENT_TYPES, error="Unknown event type.")),
    validate=validate.Length(max=len(EVENT_TYPES)),
)


class EventSchema(Schema):
    """An event, as webhooks and the stream send it."""

    id = fields.Integer()
    type = fields.String()
    timestamp = fields.String()
    company_id = fields.Integer(allow_none=True)
    data = fields.Dict()


class EventPageSchema(Schema):
    """A page of events after `after`; `last_id` is the `after` of the next page."""

    events = fields.List(fields.Nested(EventSchema))
    last_id = fields.Integer()
    more = fields.Boolean()


class WebhookEndpointSchema(Schema):
    """A webhook endpoint. `secret` only in the answer to a create or a new secret."""

    webhook_id = fields.Integer(attribute="id")
    company_id = fields.Integer()
    url = fields.String()
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String())
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    failing_since = UTCDateTime(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = UTCDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_event_id = fields.Integer(attribute="cursor")
    created = UTCDateTime()
    updated = UTCDateTime()


class WebhookSecretSchema(WebhookEndpointSchema):
    secret = fields.String()


_url = validate.And(
    validate.Length(min=1, max=2000),
    validate.Regexp(r"^https?://[^/?#\s]+", error="An http:// or https:// address."),
)
_description = validate.Length(max=200)


class WebhookCreateSchema(Schema):
    """A new endpoint: `company_id` for a superadmin (a company user's own is implied);
    `event_types` empty or missing for every type."""

    url = StrictString(required=True, validate=_url)
    company_id = StrictInteger(validate=validate.Range(min=1, max=MAX_ID))
    event_types = _types
    description = StrictString(allow_none=True, validate=_description)
    enabled = StrictBoolean(load_default=True)


class WebhookUpdateSchema(Schema):
    url = StrictString(validate=_url)
    event_types = _types
    description = StrictString(allow_none=True, validate=_description)
    enabled = StrictBoolean()


class RedeliverSchema(Schema):
    event_id = StrictInteger(required=True, validate=validate.Range(min=1, max=2**63 - 1))


class WebhookDeliverySchema(Schema):
    delivery_id = fields.Integer(attribute="id")
    event_id = fields.Integer()
    event_type = fields.String()
    attempt = fields.Integer()
    succeeded = fields.Boolean()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    response_excerpt = fields.String(allow_none=True)
    duration_ms = fields.Integer()
    manual = fields.Boolean()
    created = UTCDateTime()


class IncidentSchema(Schema):
    """An incident (open or resolved)."""

    incident_id = fields.Integer(attribute="id")
    kind = fields.String()
    state = fields.String()
    company_id = fields.Integer()
    chargepoint_id = fields.Integer(attribute="cp_id")
    connector_id = fields.Integer(allow_none=True)
    error_code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    since = UTCDateTime()
    opened_at = UTCDateTime(allow_none=True)
    resolved_at = UTCDateTime(allow_none=True)
    duration_seconds = fields.Integer()
    acknowledged_at = UTCDateTime(allow_none=True)
    acknowledged_by = fields.Function(
        lambda i: i.acknowledged_by.email if i.acknowledged_by else None, allow_none=True
    )
    acknowledgement_note = fields.String(allow_none=True)


class AcknowledgeSchema(Schema):
    note = StrictString(allow_none=True, validate=validate.Length(max=500))
