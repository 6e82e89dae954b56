"""/api/v1/chargepoints: charge points, in the same envelope style as the connectors."""

from __future__ import annotations

from dashboard.api import bp
from dashboard.api.envelope import (
    endpoint,
    int_arg,
    load_request,
    page_args,
    page_data,
    respond,
    text_arg,
)
from dashboard.schemas.chargepoint import (
    ChargePointCreateSchema,
    ChargePointSchema,
    ChargePointUpdateSchema,
)
from dashboard.schemas.commands import ChargePointAvailabilitySchema
from dashboard.schemas.envelope import EmptySchema
from dashboard.services import chargepoints as service
from dashboard.services import commands

chargepoint_schema = ChargePointSchema()
create_schema = ChargePointCreateSchema()
update_schema = ChargePointUpdateSchema()
empty_schema = EmptySchema()
availability_schema = ChargePointAvailabilitySchema()

_FIELDS = {
    "chargepoint_identity": "identity",
    "chargepoint_name": "name",
    "chargepoint_company_id": "company_id",
    "chargepoint_auth_key": "auth_key",
    "chargepoint_registration_status": "registration_status",
}


def _arguments(data: dict) -> dict:
    return {_FIELDS[name]: value for name, value in data.items()}


@bp.post("/chargepoints")
@endpoint("create.chargepoint")
def create_chargepoint(user):
    """Register a charge point.
    ---
    post:
      summary: Create a charge point
      description: "Permission `create.chargepoint` (superadmin only). The identity is the
        last segment of the OCPP URL `ws://host/ocpp/<identity>`. With an authorization key
        (hex), the charge point must use HTTP Basic auth (OCPP security profile 1)."
      tags: [chargepoints]
      requestBody:
        content:
          application/json:
            schema: ChargePointCreateRequest
      responses:
        201:
          description: Charge point created successfully
          content:
            application/json:
              schema: ChargePointResponse
    """
    data = load_request(create_schema)
    chargepoint = service.create_chargepoint(user, **_arguments(data))
    return respond("Charge point created successfully", chargepoint_schema.dump(chargepoint), 201)


@bp.get("/chargepoints")
@endpoint("read.chargepoint")
def list_chargepoints(user):
    """The charge points the caller may see, paginated.
    ---
    get:
      summary: List charge points
      description: "Permission `read.chargepoint`; company policy applies. Sorted by identity."
      tags: [chargepoints]
      parameters:
        - {in: query, name: company_id, schema: {type: integer, minimum: 0},
           description: "Only this company's charge points (0 or absent: every company)"}
        - {in: query, name: q, schema: {type: string},
           description: "Text to find in the identity or the name"}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Charge points retrieved successfully
          content:
            application/json:
              schema: ChargePointPageResponse
    """
    page, per_page = page_args()
    company_id = int_arg("company_id", default=0, minimum=0, maximum=2**31 - 1) or None
    text = text_arg("q")
    result = service.list_chargepoints(
        user, company_id=company_id, text=text, page=page, per_page=per_page
    )
    return respond("Charge points retrieved successfully", page_data(result, chargepoint_schema))


@bp.get("/chargepoints/<id:cp_id>")
@endpoint("read.chargepoint")
def get_chargepoint(user, cp_id: int):
    """One charge point.
    ---
    get:
      summary: Get a charge point
      description: "Permission `read.chargepoint`; company policy applies."
      tags: [chargepoints]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Charge point retrieved successfully
          content:
            application/json:
              schema: ChargePointResponse
    """
    chargepoint = service.get_chargepoint(user, cp_id)
    return respond("Charge point retrieved successfully", chargepoint_schema.dump(chargepoint))


@bp.put("/chargepoints/<id:cp_id>")
@endpoint("update.chargepoint")
def update_chargepoint(user, cp_id: int):
    """Change a charge point's name, owner, key or registration status.
    ---
    put:
      summary: Update a charge point
      description: "Permission `update.chargepoint` (superadmin only).
        `chargepoint_auth_key: null` removes the key."
      tags: [chargepoints]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ChargePointUpdateRequest
      responses:
        200:
          description: Charge point updated successfully
          content:
            application/json:
              schema: ChargePointResponse
    """
    data = load_request(update_schema)
    chargepoint = service.update_chargepoint(user, cp_id, **_arguments(data))
    return respond("Charge point updated successfully", chargepoint_schema.dump(chargepoint))


@bp.delete("/chargepoints/<id:cp_id>")
@endpoint("delete.chargepoint")
def delete_chargepoint(user, cp_id: int):
    """Delete a charge point, its connectors and their status history.
    ---
    delete:
      summary: Delete a charge point
      description: "Permission `delete.chargepoint` (superadmin only). Its connectors and
        their status history are deleted with it. The body, if any, is an envelope with
        `req_data: {}`."
      tags: [chargepoints]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Charge point deleted successfully
          content:
            application/json:
              schema: EmptyResponse
    """
    load_request(empty_schema, body_optional=True)
    service.delete_chargepoint(user, cp_id)
    return respond("Charge point deleted successfully", {})


@bp.post("/chargepoints/<id:cp_id>/availability")
@endpoint("update.chargepoint")
def change_chargepoint_availability(user, cp_id: int):
    """Ask the charge point to make itself Operative or Inoperative (connectorId 0).
    ---
    post:
      summary: ChangeAvailability of a charge point
      description: "Permission `update.chargepoint` (superadmin only). 409 offline, 504 no
        answer in time, 502 answered with an error."
      tags: [commands]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: ChargePointAvailabilityRequest
      responses:
        200:
          description: Charge point answered
          content:
            application/json:
              schema: CommandResponse
    """
    data = load_request(availability_schema)
    answer = commands.change_availability(user, cp_id, 0, data["type"], reason=data.get("reason"))
    return respond("Charge point answered", answer)
