"""The OpenAPI 3 description of the API, generated from the marshmallow schemas and the
views' docstrings, and a readable page rendered from it."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import current_app, render_template

from dashboard.api import bp
from dashboard.schemas.chargepoint import (
    ChargePointCreateSchema,
    ChargePointSchema,
    ChargePointUpdateSchema,
)
from dashboard.schemas.commands import (
    ChargePointAvailabilitySchema,
    CommandResultSchema,
    ConnectorAvailabilitySchema,
    ConnectorUnlockSchema,
)
from dashboard.schemas.connector import (
    ConnectorCreateSchema,
    ConnectorDeleteSchema,
    ConnectorHistorySchema,
    ConnectorSchema,
    ConnectorUpdateSchema,
)
from dashboard.schemas.envelope import EmptySchema, request_envelope, response_envelope

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
    "EmptyResponse": response_envelope(EmptySchema),
    "ErrorResponse": response_envelope(None),
}

_ERRORS = {
    "400": "Malformed JSON, or not an envelope",
    "401": "No valid credentials",
    "403": "The role lacks the permission",
    "404": "Not found, or not visible to the caller's company",
    "422": "Field validation failed: res_data.errors lists the messages per field",
}


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
    spec = APISpec(
        title="Plugboard API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Connectors and charge points of Plugboard. Every request body "
            "is an envelope `{id, req_data, timestamp}`; every response is "
            "`{id, status, message, res_data, timestamp}` and echoes the request's id."
        },
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in _COMPONENTS.items():
        spec.components.schema(name, schema=schema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        if not rule.endpoint.startswith("api.") or not view.__doc__ or "---" not in view.__doc__:
            continue
        operations = _schema_refs(load_operations_from_docstring(view.__doc__))
        for operation in operations.values():
            operation.setdefault("security", [{"bearer": []}])
            for code, description in _ERRORS.items():
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                            }
                        },
                    },
                )
        path = rule.rule.replace("<id:", "{").replace(">", "}")
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
    return render_template("api/docs.html", spec=spec)
