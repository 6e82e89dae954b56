"""/api/v1/incidents: incidents, open first, and their acknowledgement."""

from __future__ import annotations

from dashboard.api import bp
from dashboard.api.envelope import (
    choice_arg,
    endpoint,
    int_arg,
    load_request,
    page_args,
    page_data,
    respond,
)
from dashboard.models.incident import KINDS
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.integrations import AcknowledgeSchema, IncidentSchema
from dashboard.services import incidents as service

incident_schema = IncidentSchema()
acknowledge_schema = AcknowledgeSchema()
STATES = ("open", "resolved", "unacknowledged")


@bp.get("/incidents")
@endpoint("read.incident")
def list_incidents(user):
    """Incidents, open ones first, newest first.
    ---
    get:
      summary: List incidents
      description: "Permission `read.incident`; company policy applies. Filters: `state`
        (`open`, `resolved`, `unacknowledged`), `kind` (`faulted`, `offline`,
        `unavailable`, `flapping`), `chargepoint_id`, `connector_id`, `company_id`."
      tags: [incidents]
      parameters:
        - {in: query, name: state, schema: {type: string, enum: [open, resolved, unacknowledged]}}
        - {in: query, name: kind, schema: {type: string, enum: [faulted, offline, unavailable,
           flapping]}}
        - {in: query, name: chargepoint_id, schema: {type: integer}}
        - {in: query, name: connector_id, schema: {type: integer}}
        - {in: query, name: company_id, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Incidents retrieved successfully
          content:
            application/json:
              schema: IncidentPageResponse
    """
    page, per_page = page_args()
    result = service.list_incidents(
        user,
        state=choice_arg("state", STATES),
        kind=choice_arg("kind", KINDS),
        cp_id=int_arg("chargepoint_id", default=0, minimum=0, maximum=MAX_ID) or None,
        connector_id=int_arg("connector_id", default=0, minimum=0, maximum=MAX_ID) or None,
        company_id=int_arg("company_id", default=0, minimum=0, maximum=MAX_ID) or None,
        page=page,
        per_page=per_page,
    )
    return respond("Incidents retrieved successfully", page_data(result, incident_schema))


@bp.get("/incidents/<id:incident_id>")
@endpoint("read.incident")
def get_incident(user, incident_id: int):
    """One incident.
    ---
    get:
      summary: Get an incident
      description: "Permission `read.incident`; company policy applies."
      tags: [incidents]
      parameters:
        - {in: path, name: incident_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Incident retrieved successfully
          content:
            application/json:
              schema: IncidentResponse
    """
    found = service.get_incident(user, incident_id)
    return respond("Incident retrieved successfully", incident_schema.dump(found))


@bp.post("/incidents/<id:incident_id>/acknowledge")
@endpoint("update.incident")
def acknowledge_incident(user, incident_id: int):
    """Acknowledge an incident: who, when, and a note.
    ---
    post:
      summary: Acknowledge an incident
      description: "Permission `update.incident`; company policy applies. Once only (409
        when it was acknowledged already). The incident still resolves by itself when
        its condition ends."
      tags: [incidents]
      parameters:
        - {in: path, name: incident_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: AcknowledgeRequest
      responses:
        200:
          description: Incident acknowledged
          content:
            application/json:
              schema: IncidentResponse
    """
    data = load_request(acknowledge_schema)
    incident = service.acknowledge(user, incident_id, data.get("note"))
    return respond("Incident acknowledged", incident_schema.dump(incident))
