"""/api/v1/connectors: the Connectors API of the specification, plus one connector and its
history."""

from __future__ import annotations

from flask import request

from dashboard.api import bp
from dashboard.api.envelope import (
    endpoint,
    int_arg,
    load_data,
    load_request,
    page_args,
    page_data,
    respond,
)
from dashboard.schemas.commands import ConnectorAvailabilitySchema, ConnectorUnlockSchema
from dashboard.schemas.connector import (
    ConnectorCreateSchema,
    ConnectorDeleteSchema,
    ConnectorHistorySchema,
    ConnectorSchema,
    ConnectorUpdateSchema,
)
from dashboard.services import commands
from dashboard.services import connectors as service

connector_schema = ConnectorSchema()
history_schema = ConnectorHistorySchema()
create_schema = ConnectorCreateSchema()
update_schema = ConnectorUpdateSchema()
delete_schema = ConnectorDeleteSchema()
availability_schema = ConnectorAvailabilitySchema()
unlock_schema = ConnectorUnlockSchema()


@bp.post("/connectors")
@endpoint("create.connector")
def create_connector(user):
    """Create a connector for a charge point.
    ---
    post:
      summary: Create a connector
      description: "Permission `create.connector` (superadmin only)."
      tags: [connectors]
      requestBody:
        content:
          application/json:
            schema: ConnectorCreateRequest
      responses:
        201:
          description: Connector created successfully
          content:
            application/json:
              schema: ConnectorResponse
        409:
          description: A connector with this (connector_id, connector_cp_id) exists
          content:
            application/json:
              schema: ErrorResponse
    """
    data = load_request(create_schema)
    connector = service.create_connector(user, source="api", **data)
    return respond("Connector created successfully", connector_schema.dump(connector), 201)


@bp.get("/connectors/chargepoint/<id:cp_id>")
@endpoint("read.connector")
def list_connectors(user, cp_id: int):
    """All connectors of a charge point.
    ---
    get:
      summary: Connectors of a charge point
      description: "Permission `read.connector`; company policy applies."
      tags: [connectors]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Connectors retrieved successfully
          content:
            application/json:
              schema: ConnectorListResponse
    """
    connectors = service.list_connectors(user, cp_id)
    return respond(
        "Connectors retrieved successfully", connector_schema.dump(connectors, many=True)
    )


@bp.get("/connectors/chargepoint/<id:cp_id>/<id:connector_id>")
@endpoint("read.connector")
def get_connector(user, cp_id: int, connector_id: int):
    """One connector of a charge point.
    ---
    get:
      summary: One connector
      description: "Permission `read.connector`; company policy applies."
      tags: [connectors]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Connector retrieved successfully
          content:
            application/json:
              schema: ConnectorResponse
    """
    connector = service.get_connector(user, cp_id, connector_id)
    return respond("Connector retrieved successfully", connector_schema.dump(connector))


@bp.get("/connectors/chargepoint/<id:cp_id>/<id:connector_id>/history")
@endpoint("read.connector")
def connector_history(user, cp_id: int, connector_id: int):
    """A connector's status history, newest first, paginated.
    ---
    get:
      summary: Status history of a connector
      description: "Permission `read.connector`; company policy applies."
      tags: [connectors]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Connector history retrieved successfully
          content:
            application/json:
              schema: ConnectorHistoryPageResponse
    """
    page, per_page = page_args()
    page_ = service.connector_history(user, cp_id, connector_id, page=page, per_page=per_page)
    return respond("Connector history retrieved successfully", page_data(page_, history_schema))


@bp.put("/connectors/<id:connector_id>")
@endpoint("update.connector")
def update_connector(user, connector_id: int):
    """Update a connector's specification or status.
    ---
    put:
      summary: Update a connector
      description: "Permission `update.connector` (superadmin only); company policy applies.
        A status or error code change is recorded in the connector's history."
      tags: [connectors]
      parameters:
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ConnectorUpdateRequest
      responses:
        200:
          description: Connector updated successfully
          content:
            application/json:
              schema: ConnectorResponse
    """
    data = load_request(update_schema)
    cp_id = data.pop("connector_cp_id")
    connector = service.update_connector(user, cp_id, connector_id, source="api", **data)
    return respond("Connector updated successfully", connector_schema.dump(connector))


@bp.delete("/connectors/<id:connector_id>")
@endpoint("delete.connector")
def delete_connector(user, connector_id: int):
    """Delete a connector and its history. `connector_cp_id` comes in the body as
    specified, or as a query parameter for clients that cannot send a body with DELETE.
    ---
    delete:
      summary: Delete a connector
      description: "Permission `delete.connector` (superadmin only); company policy applies."
      tags: [connectors]
      parameters:
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
        - {in: query, name: connector_cp_id, schema: {type: integer},
           description: "Instead of the body, for clients that cannot send one (then
             without a body)"}
      requestBody:
        description: "The envelope naming the connector's charge point; or, instead, the
          query parameter connector_cp_id"
        content:
          application/json:
            schema: ConnectorDeleteRequest
      responses:
        200:
          description: Connector deleted successfully
          content:
            application/json:
              schema: EmptyResponse
    """
    if not request.content_length and "connector_cp_id" in request.args:
        data = load_data(delete_schema, {"connector_cp_id": int_arg("connector_cp_id")})
    else:
        data = load_request(delete_schema, body_optional=True)
    service.delete_connector(user, data["connector_cp_id"], connector_id)
    return respond("Connector deleted successfully", {})


@bp.post("/connectors/<id:connector_id>/availability")
@endpoint("update.connector")
def change_connector_availability(user, connector_id: int):
    """Ask the charge point to make a connector Operative or Inoperative.
    ---
    post:
      summary: ChangeAvailability of a connector
      description: "Permission `update.connector` (superadmin only). Sends OCPP
        ChangeAvailability and returns the charge point's answer (Accepted, Rejected, or
        Scheduled: after the running transaction). The new status then arrives as a
        StatusNotification. 409 when the charge point is offline, 504 when it does not
        answer in time, 502 when it answers with an error."
      tags: [commands]
      parameters:
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ConnectorAvailabilityRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(availability_schema)
    answer = commands.change_availability(
        user, data["connector_cp_id"], connector_id, data["type"], reason=data.get("reason")
    )
    return respond("Charge point answered", answer)


@bp.post("/connectors/<id:connector_id>/unlock")
@endpoint("update.connector")
def unlock_connector(user, connector_id: int):
    """Ask the charge point to unlock a connector.
    ---
    post:
      summary: UnlockConnector
      description: "Permission `update.connector` (superadmin only). Sends OCPP
        UnlockConnector and returns the answer (Unlocked, UnlockFailed, NotSupported).
        409 offline, 504 no answer in time, 502 answered with an error."
      tags: [commands]
      parameters:
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ConnectorUnlockRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(unlock_schema)
    answer = commands.unlock_connector(user, data["connector_cp_id"], connector_id)
    return respond("Charge point answered", answer)
