"""The OpenAPI 3 description of the API, generated from the marshmallow schemas and the
views' docstrings, and a readable page rendered from it."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import current_app, render_template
from markupsafe import Markup, escape

from dashboard.api import bp
from dashboard.api.envelope import MAX_PAGE
from dashboard.models.types import DECIMAL_PRECISION, DECIMAL_SCALE
from dashboard.schemas.chargepoint import (
    ChargePointCreateSchema,
    ChargePointSchema,
    ChargePointUpdateSchema,
)
from dashboard.schemas.charging import (
    IdTagCreateSchema,
    IdTagSchema,
    IdTagUpdateSchema,
    MeterValueSchema,
    TransactionDetailSchema,
    TransactionSchema,
)
from dashboard.schemas.commands import (
    ChargePointAvailabilitySchema,
    CommandLogSchema,
    CommandResultSchema,
    ConfigurationChangeSchema,
    ConfigurationSchema,
    ConnectorAvailabilitySchema,
    ConnectorUnlockSchema,
    DataTransferResultSchema,
    DataTransferSchema,
    RemoteStartSchema,
    ResetSchema,
    TriggerSchema,
)
from dashboard.schemas.connector import (
    MAX_ID,
    ConnectorCreateSchema,
    ConnectorDeleteSchema,
    ConnectorHistorySchema,
    ConnectorSchema,
    ConnectorUpdateSchema,
)
from dashboard.schemas.envelope import EmptySchema, request_envelope, response_envelope
from dashboard.schemas.fields import DecimalString, StrictString
from dashboard.schemas.integrations import (
    AcknowledgeSchema,
    EventPageSchema,
    EventSchema,
    IncidentSchema,
    RedeliverSchema,
    WebhookCreateSchema,
    WebhookDeliverySchema,
    WebhookEndpointSchema,
    WebhookSecretSchema,
    WebhookUpdateSchema,
)
from dashboard.schemas.reports import ExclusionCreateSchema, ExclusionSchema, UptimeReportSchema

# Components named as the specification names them (ConnectorCreateRequest, ...).
_COMPONENTS = {
    "Connector": ConnectorSchema,
    "ConnectorCreateRequest": request_envelope(ConnectorCreateSchema),
    "ConnectorUpdateRequest": request_envelope(ConnectorUpdateSchema),
    "ConnectorDeleteRequest": request_envelope(ConnectorDeleteSchema),
    "ConnectorResponse": response_envelope(ConnectorSchema),
    "ConnectorListResponse": response_envelope(ConnectorSchema, many=True),
    "ConnectorHistoryPageResponse": response_envelope(ConnectorHistorySchema, paged=True),
    "ChargePoint": ChargePointSchema,
    "ChargePointCreateRequest": request_envelope(ChargePointCreateSchema),
    "ChargePointUpdateRequest": request_envelope(ChargePointUpdateSchema),
    "ChargePointResponse": response_envelope(ChargePointSchema),
    "ChargePointPageResponse": response_envelope(ChargePointSchema, paged=True),
    "ConnectorAvailabilityRequest": request_envelope(ConnectorAvailabilitySchema),
    "ConnectorUnlockRequest": request_envelope(ConnectorUnlockSchema),
    "ChargePointAvailabilityRequest": request_envelope(ChargePointAvailabilitySchema),
    "CommandResponse": response_envelope(CommandResultSchema),
    "ResetRequest": request_envelope(ResetSchema),
    "TriggerRequest": request_envelope(TriggerSchema),
    "ConfigurationChangeRequest": request_envelope(ConfigurationChangeSchema),
    "DataTransferRequest": request_envelope(DataTransferSchema),
    "RemoteStartRequest": request_envelope(RemoteStartSchema),
    "ConfigurationResponse": response_envelope(ConfigurationSchema),
    "DataTransferResponse": response_envelope(DataTransferResultSchema),
    "CommandLogPageResponse": response_envelope(CommandLogSchema, paged=True),
    "EmptyResponse": response_envelope(EmptySchema),
    "Transaction": TransactionSchema,
    "MeterValue": MeterValueSchema,
    "TransactionPageResponse": response_envelope(TransactionSchema, paged=True),
    "TransactionDetailResponse": response_envelope(TransactionDetailSchema),
    "IdTag": IdTagSchema,
    "IdTagCreateRequest": request_envelope(IdTagCreateSchema),
    "IdTagUpdateRequest": request_envelope(IdTagUpdateSchema),
    "IdTagResponse": response_envelope(IdTagSchema),
    "IdTagPageResponse": response_envelope(IdTagSchema, paged=True),
    "Event": EventSchema,
    "EventPageResponse": response_envelope(EventPageSchema),
    "WebhookEndpoint": WebhookEndpointSchema,
    "WebhookCreateRequest": request_envelope(WebhookCreateSchema),
    "WebhookUpdateRequest": request_envelope(WebhookUpdateSchema),
    "WebhookResponse": response_envelope(WebhookEndpointSchema),
    "WebhookSecretResponse": response_envelope(WebhookSecretSchema),
    "WebhookPageResponse": response_envelope(WebhookEndpointSchema, paged=True),
    "WebhookDelivery": WebhookDeliverySchema,
    "WebhookDeliveryResponse": response_envelope(WebhookDeliverySchema),
    "WebhookDeliveryPageResponse": response_envelope(WebhookDeliverySchema, paged=True),
    "RedeliverRequest": request_envelope(RedeliverSchema),
    "Incident": IncidentSchema,
    "IncidentResponse": response_envelope(IncidentSchema),
    "IncidentPageResponse": response_envelope(IncidentSchema, paged=True),
    "AcknowledgeRequest": request_envelope(AcknowledgeSchema),
    "UptimeReport": UptimeReportSchema,
    "UptimeReportResponse": response_envelope(UptimeReportSchema),
    "Exclusion": ExclusionSchema,
    "ExclusionCreateRequest": request_envelope(ExclusionCreateSchema),
    "ExclusionResponse": response_envelope(ExclusionSchema),
    "ExclusionListResponse": response_envelope(ExclusionSchema, many=True),
    "ErrorResponse": response_envelope(None),
}

_ERRORS = {
    "400": "Malformed JSON, or not an envelope",
    "401": "No valid credentials",
    "403": "The role lacks the permission",
    "404": "Not found, or not visible to the caller's company",
    "422": "Field validation failed: res_data.errors lists the messages per field",
}


# The errors of a call to a charge point (operations answering CommandResponse), and of a
# change that may collide with existing data (writes).
_COMMAND_ERRORS = {
    "409": "The charge point is not connected",
    "502": "The charge point answered with an error, or with an invalid answer",
    "503": "The charge point is connected to another process, which cannot be reached now",
    "504": "The charge point did not answer in time",
}
_CALL_ANSWERS = {"CommandResponse", "ConfigurationResponse", "DataTransferResponse"}
_WRITE_ERRORS = {"409": "The change collides with existing data (a duplicate, a reference)"}
# What StrictString accepts: something besides white space, and no NUL character.
_STRICT_TEXT = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
_NO_NUL = r"^[^\u0000]*$"


def _strict_fields(converter, field, ret, **kwargs) -> dict:
    """The rules of our own fields in the document. StrictString: not blank, no NUL
    character (unless a pattern of the field's own already says more). DecimalString: a
    non-negative decimal written as a string, within the column's digits."""
    if isinstance(field, StrictString) and "pattern" not in ret:
        return {"minLength": max(1, ret.get("minLength", 1)), "pattern": _STRICT_TEXT}
    if isinstance(field, DecimalString):
        whole = DECIMAL_PRECISION - DECIMAL_SCALE
        return {
            "type": "string",
            "pattern": rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{DECIMAL_SCALE}}})?$",
            "example": "32.5",
        }
    return {}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _complete(operation: dict, method: str, path: str) -> None:
    """What every operation shares: the bearer scheme, a required request body, the bounds
    of ids in paths and of pages, and the errors it can answer."""
    operation.setdefault("security", [{"bearer": []}])
    if "requestBody" in operation:
        operation["requestBody"].setdefault("required", True)
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter["name"] == "page":
            schema.update(minimum=1, maximum=MAX_PAGE)
        elif parameter["name"] == "per_page":
            schema.update(minimum=1, maximum=current_app.config["API_PAGE_SIZE_MAX"])
        elif schema.get("type") == "integer":  # ids, as `int_arg` and `<id:...>` take them
            schema.setdefault("minimum", 1)
            schema.setdefault("maximum", MAX_ID)
        elif schema.get("type") == "string":  # `text_arg`: no NUL character
            schema.setdefault("pattern", _NO_NUL)
        elif schema.get("type") == "array" and schema.get("items", {}).get("type") == "string":
            schema["items"].setdefault("pattern", _NO_NUL)
    errors = dict(_ERRORS)
    answers = operation["responses"].get("200", {}).get("content", {}).get("application/json")
    if answers and answers["schema"]["$ref"].split("/")[-1] in _CALL_ANSWERS:
        errors.update(_COMMAND_ERRORS)
    elif method in ("post", "put", "delete"):
        errors.update(_WRITE_ERRORS)
    for code, description in sorted(errors.items()):
        operation["responses"].setdefault(code, _error(description))


def _schema_refs(node):
    """Replace `schema: Name` strings of the docstrings with references to components."""
    if isinstance(node, dict):
        return {
            key: {"$ref": f"#/components/schemas/{value}"}
            if key == "schema" and isinstance(value, str)
            else _schema_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_schema_refs(item) for item in node]
    return node


def build_spec(app) -> dict:
    """The OpenAPI 3 document of every /api/v1 route of `app`."""
    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title="Plugboard API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={
            "description": "Connectors and charge points of Plugboard. Every request body "
            "is an envelope `{id, req_data, timestamp}`; every response is "
            "`{id, status, message, res_data, timestamp}` and echoes the request's id."
        },
        servers=[{"url": "/"}],
    )
    marshmallow.converter.add_attribute_function(_strict_fields)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in _COMPONENTS.items():
        spec.components.schema(name, schema=schema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        if not rule.endpoint.startswith("api.") or not view.__doc__ or "---" not in view.__doc__:
            continue
        operations = _schema_refs(load_operations_from_docstring(view.__doc__))
        path = rule.rule.replace("<id:", "{").replace(">", "}")
        for method, operation in operations.items():
            _complete(operation, method, path)
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document (public)."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return current_app.extensions["openapi"]


@bp.get("/docs")
def docs():
    """The API documentation, readable in a browser (public)."""
    spec = openapi()
    return render_template("api/docs.html", spec=spec, common_errors=_ERRORS)


_CODE = re.compile(r"`([^`]+)`")


@bp.app_template_filter("inline_code")
def inline_code(text: str | None) -> Markup:
    """The Markdown of the descriptions that they use: `code` spans; the rest escaped."""
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text or ""))))
