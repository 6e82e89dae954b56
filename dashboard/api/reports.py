"""/api/v1/reports: uptime per port (the NEVI arithmetic) and the exclusions of out-time."""

from __future__ import annotations

from datetime import timedelta

from dashboard.api import bp
from dashboard.api.envelope import (
    ApiError,
    datetime_arg,
    endpoint,
    int_arg,
    load_request,
    page_args,
    respond,
)
from dashboard.extensions import db
from dashboard.models.types import utcnow
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.reports import ExclusionCreateSchema, ExclusionSchema, UptimeReportSchema
from dashboard.services import uptime as service

report_schema = UptimeReportSchema()
exclusion_schema = ExclusionSchema()
exclusion_create_schema = ExclusionCreateSchema()
# The longest period one request may ask for (a NEVI year, and a little more).
MAX_PERIOD = timedelta(days=400)


def _period():
    """`from` and `to` (ISO 8601; a date is its midnight, UTC); by default this month."""
    now = utcnow()
    start = datetime_arg("from") or service.month_start(now.date())
    end = datetime_arg("to") or service.next_month(start)
    if end <= start:
        raise ApiError(422, "Validation failed", {"errors": {"to": ["Must be after from."]}})
    if end - start > MAX_PERIOD:
        raise ApiError(
            422, "Validation failed", {"errors": {"to": ["At most 400 days after from."]}}
        )
    return start, end


def _scope() -> service.Scope:
    def optional(name):
        return int_arg(name, default=0, minimum=0, maximum=MAX_ID) or None

    return service.Scope(
        company_id=optional("company_id"),
        cp_id=optional("chargepoint_id"),
        connector_id=optional("connector_id"),
    )


@bp.get("/reports/uptime")
@endpoint("read.report")
def uptime_report(user):
    """Each port's uptime over a period, with its outages.
    ---
    get:
      summary: Uptime per port
      description: "Permission `read.report`; company policy applies. For each port
        (connector) in the scope: its part of the period (from its creation, up to now),
        T_outage and T_excluded in minutes, the NEVI uptime in percent
        ((minutes − (T_outage − T_excluded)) / minutes × 100), and each outage with its
        cause. `from` and `to` are ISO 8601 (a date means its midnight, UTC); by default
        this month; at most 400 days. `totals` adds every port in the scope; the ports come
        a page at a time."
      tags: [reports]
      parameters:
        - {in: query, name: from, schema: {type: string, format: date-time}}
        - {in: query, name: to, schema: {type: string, format: date-time}}
        - {in: query, name: company_id, schema: {type: integer}}
        - {in: query, name: chargepoint_id, schema: {type: integer}}
        - {in: query, name: connector_id, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Uptime computed
          content:
            application/json:
              schema: UptimeReportResponse
    """
    start, end = _period()
    scope = _scope()
    page, per_page = page_args()
    found, whole = service.report_page(user, scope, start, end, page=page, per_page=per_page)
    data = {
        "start": start,
        "end": whole.end,
        "totals": whole,
        "items": found.items,
        "pagination": {
            "page": found.page,
            "per_page": found.per_page,
            "total": found.total,
            "pages": found.pages,
        },
    }
    return respond("Uptime computed", report_schema.dump(data))


@bp.get("/reports/exclusions")
@endpoint("read.report")
def list_exclusions(user):
    """Exclusions of out-time overlapping a period.
    ---
    get:
      summary: List exclusions
      description: "Permission `read.report`; company policy applies. Newest first."
      tags: [reports]
      parameters:
        - {in: query, name: from, schema: {type: string, format: date-time}}
        - {in: query, name: to, schema: {type: string, format: date-time}}
        - {in: query, name: company_id, schema: {type: integer}}
        - {in: query, name: chargepoint_id, schema: {type: integer}}
        - {in: query, name: connector_id, schema: {type: integer}}
      responses:
        200:
          description: Exclusions retrieved successfully
          content:
            application/json:
              schema: ExclusionListResponse
    """
    start, end = _period()
    found = service.exclusions_of(user, _scope(), start, end)
    return respond("Exclusions retrieved successfully", exclusion_schema.dump(found, many=True))


@bp.post("/reports/exclusions")
@endpoint("create.exclusion")
def create_exclusion(user):
    """Exclude out-time from a port's uptime (an audit row: who, when, why).
    ---
    post:
      summary: Create an exclusion
      description: "Permission `create.exclusion` (operators). The time from `starts` to
        `ends` (open-ended without it) of the port, or of every port of the charge point
        without `connector_id`, does not count against uptime when it is out. `cause`:
        maintenance, utility, vandalism, natural_disaster or vehicle. The days it covers
        are aggregated again within a sweep."
      tags: [reports]
      requestBody:
        content:
          application/json:
            schema: ExclusionCreateRequest
      responses:
        201:
          description: Exclusion created
          content:
            application/json:
              schema: ExclusionResponse
    """
    data = load_request(exclusion_create_schema)
    exclusion = service.exclude(
        user,
        data["chargepoint_id"],
        data.get("connector_id"),
        starts=data["starts"],
        ends=data.get("ends"),
        cause=data["cause"],
        reason=data["reason"],
    )
    db.session.commit()
    return respond("Exclusion created", exclusion_schema.dump(exclusion), 201)
