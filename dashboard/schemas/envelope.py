"""The request and response envelopes of the API (`ReqModel<T>`, `ResModel<T>`), and a
factory that builds the typed response schemas the OpenAPI document shows."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema, fields, validate

from dashboard.schemas.fields import UTCDateTime

# The client's request id, echoed in the answer.
_ID = validate.Length(min=1, max=128)


class RequestEnvelopeSchema(Schema):
    """`ReqModel<T>`: `{id, req_data, timestamp}`; `req_data` is checked by T's schema."""

    id = fields.String(required=True, validate=_ID)
    req_data = fields.Dict(required=True)
    timestamp = UTCDateTime()


class PaginationSchema(Schema):
    """Where a page sits in a longer list."""

    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class ErrorDataSchema(Schema):
    """`res_data` of a 422 answer: the messages for each field that failed."""

    errors = fields.Dict(keys=fields.String(), values=fields.Raw())


class EmptySchema(Schema):
    """`{}`."""


@cache
def response_envelope(data_schema: type[Schema] | None, many: bool = False, paged: bool = False):
    """`ResModel<T>` for T = `data_schema` (a list of T with `many`, a page of T with `paged`)."""
    if data_schema is None:
        data_field = fields.Raw(allow_none=True)
        name = "ErrorResponse"
    elif paged:
        page_schema = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(data_schema)),
                "pagination": fields.Nested(PaginationSchema),
            },
            name=f"{data_schema.__name__.removesuffix('Schema')}Page",
        )
        data_field = fields.Nested(page_schema)
        name = f"{data_schema.__name__.removesuffix('Schema')}PageResponse"
    else:
        data_field = fields.Nested(data_schema, many=many)
        suffix = "ListResponse" if many else "Response"
        name = f"{data_schema.__name__.removesuffix('Schema')}{suffix}"
    return Schema.from_dict(
        {
            "id": fields.String(),
            "status": fields.Boolean(),
            "message": fields.String(),
            "res_data": data_field,
            "timestamp": UTCDateTime(),
        },
        name=name,
    )


@cache
def request_envelope(data_schema: type[Schema]):
    """`ReqModel<T>` for T = `data_schema`, for the OpenAPI document."""
    return Schema.from_dict(
        {
            "id": fields.String(required=True, validate=_ID),
            "req_data": fields.Nested(data_schema, required=True),
            "timestamp": UTCDateTime(),
        },
        name=f"{data_schema.__name__.removesuffix('Schema')}Request",
    )
