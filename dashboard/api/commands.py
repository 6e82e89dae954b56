"""Calls to a charge point from the API (OCPP 1.6 Core and TriggerMessage), and the command
log. Superadmin only to call: a company user gets 403 for a charge point of their company
and 404 for any other; 409 when the charge point is not connected, 504 when it does not
answer in time, 502 when it answers with an error or with something invalid, 503 when
the process holding it cannot be reached."""

from __future__ import annotations

from flask import request

from dashboard.api import bp
from dashboard.api.envelope import ApiError, endpoint, load_request, page_args, page_data, respond
from dashboard.schemas.commands import (
    CommandLogSchema,
    ConfigurationChangeSchema,
    DataTransferSchema,
    RemoteStartSchema,
    ResetSchema,
    TriggerSchema,
)
from dashboard.schemas.envelope import EmptySchema
from dashboard.services import commands

command_log_schema = CommandLogSchema()
reset_schema, trigger_schema = ResetSchema(), TriggerSchema()
configuration_schema, data_transfer_schema = ConfigurationChangeSchema(), DataTransferSchema()
remote_start_schema, empty_schema = RemoteStartSchema(), EmptySchema()


@bp.post("/chargepoints/<id:cp_id>/reset")
@endpoint("read.chargepoint")
def reset(user, cp_id: int):
    """Reset the charge point.
    ---
    post:
      summary: Reset
      description: "Superadmin only. `type`: `Soft` or `Hard`."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ResetRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(reset_schema)
    return respond("Charge point answered", commands.reset(user, cp_id, data["type"]))


@bp.post("/chargepoints/<id:cp_id>/trigger")
@endpoint("read.chargepoint")
def trigger(user, cp_id: int):
    """Ask the charge point to send a message now.
    ---
    post:
      summary: TriggerMessage
      description: "Superadmin only. `requested_message`: BootNotification,
        DiagnosticsStatusNotification, FirmwareStatusNotification, Heartbeat, MeterValues
        or StatusNotification; `connector_id` optional. The message follows from the
        charge point as an ordinary call."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: TriggerRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(trigger_schema)
    answer = commands.trigger_message(
        user, cp_id, data["requested_message"], data.get("connector_id")
    )
    return respond("Charge point answered", answer)


@bp.get("/chargepoints/<id:cp_id>/configuration")
@endpoint("read.chargepoint")
def get_configuration(user, cp_id: int):
    """Read the charge point's configuration, live.
    ---
    get:
      summary: GetConfiguration
      description: "Superadmin only. `key` (repeatable) narrows it to those keys (at most
        50 characters each); none: every key."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
        - {in: query, name: key, style: form, explode: true,
           schema: {type: array, items: {type: string, minLength: 1, maxLength: 50}}}
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: ConfigurationResponse
    """
    keys = request.args.getlist("key")
    bad = [key for key in keys if not key or len(key) > 50 or "\x00" in key]
    if bad:
        raise ApiError(
            422, "Validation failed", {"errors": {"key": ["1 to 50 characters, no NUL."]}}
        )
    return respond("Charge point answered", commands.get_configuration(user, cp_id, keys))


@bp.put("/chargepoints/<id:cp_id>/configuration")
@endpoint("read.chargepoint")
def change_configuration(user, cp_id: int):
    """Change one configuration key of the charge point.
    ---
    put:
      summary: ChangeConfiguration
      description: "Superadmin only. `key` (at most 50 characters), `value` (at most 500).
        The answer: Accepted, Rejected, RebootRequired or NotSupported."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ConfigurationChangeRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(configuration_schema)
    answer = commands.change_configuration(user, cp_id, data["key"], data["value"])
    return respond("Charge point answered", answer)


@bp.post("/chargepoints/<id:cp_id>/clear-cache")
@endpoint("read.chargepoint")
def clear_cache(user, cp_id: int):
    """Clear the charge point's authorization cache.
    ---
    post:
      summary: ClearCache
      description: "Superadmin only. The body, if any, is an envelope with `req_data: {}`."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    load_request(empty_schema, body_optional=True)
    return respond("Charge point answered", commands.clear_cache(user, cp_id))


@bp.post("/chargepoints/<id:cp_id>/data-transfer")
@endpoint("read.chargepoint")
def data_transfer(user, cp_id: int):
    """Send vendor-specific data to the charge point.
    ---
    post:
      summary: DataTransfer
      description: "Superadmin only. `vendor_id` (required), `message_id`, `data`."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: DataTransferRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: DataTransferResponse
    """
    data = load_request(data_transfer_schema)
    answer = commands.data_transfer(
        user, cp_id, data["vendor_id"], data.get("message_id"), data.get("data")
    )
    return respond("Charge point answered", answer)


@bp.post("/connectors/<id:connector_id>/remote-start")
@endpoint("read.connector")
def remote_start(user, connector_id: int):
    """Ask the charge point to start a session on this connector for a tag.
    ---
    post:
      summary: RemoteStartTransaction
      description: "Superadmin only. `connector_cp_id`, `id_tag` (at most 20 characters).
        The transaction follows from the charge point as a StartTransaction."
      tags: [commands]
      parameters:
        - {in: path, name: connector_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: RemoteStartRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(remote_start_schema)
    answer = commands.remote_start(user, data["connector_cp_id"], connector_id, data["id_tag"])
    return respond("Charge point answered", answer)


@bp.post("/transactions/<id:transaction_id>/remote-stop")
@endpoint("read.transaction")
def remote_stop(user, transaction_id: int):
    """Ask the charge point to stop a session going on.
    ---
    post:
      summary: RemoteStopTransaction
      description: "Superadmin only. 409 when the transaction is not going on. The body,
        if any, is an envelope with `req_data: {}`."
      tags: [commands]
      parameters:
        - {in: path, name: transaction_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    load_request(empty_schema, body_optional=True)
    return respond("Charge point answered", commands.remote_stop(user, transaction_id))


@bp.get("/chargepoints/<id:cp_id>/commands")
@endpoint("read.chargepoint")
def list_commands(user, cp_id: int):
    """The calls made to a charge point, newest first.
    ---
    get:
      summary: Command log of a charge point
      description: "Permission `read.chargepoint`; company policy applies. Each call: who
        asked (`source` api, ui or system; `user_email`), when, the request, the answer or
        the failure (`outcome`, `error`), and the round-trip time."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Commands retrieved successfully
          content:
            application/json:
              schema: CommandLogPageResponse
    """
    page, per_page = page_args()
    result = commands.list_commands(user, cp_id, page=page, per_page=per_page)
    return respond("Commands retrieved successfully", page_data(result, command_log_schema))
