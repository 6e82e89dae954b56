"""The dashboard: server-rendered pages; each list renders whole, or as its fragment for
htmx (an `HX-Request` that is not a boosted navigation)."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.models import Company
from dashboard.schemas.fields import format_datetime
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services import connectors as connector_service
from dashboard.services.connectors import CONNECTOR_SORTS, ConnectorFilters
from dashboard.services.status import ERROR_CODES, STATUSES

bp = Blueprint("pages", __name__)


@bp.before_request
@login_required
def _signed_in():
    """Every page needs a signed-in user."""


def wants_fragment() -> bool:
    """Whether htmx asked for a fragment rather than the whole page."""
    return "HX-Request" in request.headers and "HX-Boosted" not in request.headers


def render_page(template: str, fragment: str, **context) -> Response:
    """The whole page, or only its fragment for htmx; varies on HX-Request either way."""
    response = Response(render_template(fragment if wants_fragment() else template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def _choice(name: str, choices, default=None):
    value = request.args.get(name) or None
    return value if value in choices else default


def _number(name: str, default=None, minimum: int = 1, maximum: int = 2**31 - 1):
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        return default
    return value if minimum <= value <= maximum else default


def _text(name: str) -> str | None:
    return (request.args.get(name) or "").strip()[:100] or None


def _companies():
    """The companies a filter may offer: every one for a superadmin, none for others."""
    if not current_user.is_superadmin:
        return []
    return db.session.scalars(db.select(Company).order_by(Company.name)).all()


@bp.get("/")
def overview():
    """The charge points the user may see, with connection state and connector summary."""
    filters = {
        "company_id": _number("company") if current_user.is_superadmin else None,
        "text": _text("q"),
        "connection": _choice("connection", chargepoint_service.CONNECTION_STATES),
        "sort": _choice("sort", chargepoint_service.CHARGEPOINT_SORTS, "identity"),
    }
    page = chargepoint_service.list_chargepoints(
        current_user, page=_number("page", 1), per_page=25, **filters
    )
    counts = chargepoint_service.connector_counts([cp.id for cp in page.items])
    return render_page(
        "pages/overview.html",
        "pages/_chargepoint_table.html",
        page=page,
        counts=counts,
        filters=filters,
        companies=_companies(),
        states=chargepoint_service.CONNECTION_STATES,
        sorts=list(chargepoint_service.CHARGEPOINT_SORTS),
        connection_state=chargepoint_service.connection_state,
        statuses=STATUSES,
    )


@bp.get("/chargepoints/<id:cp_id>")
def chargepoint(cp_id: int):
    """One charge point: its details and its connectors."""
    cp = chargepoint_service.get_chargepoint(current_user, cp_id)
    connectors = connector_service.list_connectors(current_user, cp_id)
    return render_template(
        "pages/chargepoint.html",
        cp=cp,
        connectors=connectors,
        connection=chargepoint_service.connection_state(cp),
    )


def _connector_filters() -> tuple[ConnectorFilters, str]:
    enabled = {"yes": True, "no": False}.get(request.args.get("enabled", ""))
    filters = ConnectorFilters(
        status=_choice("status", STATUSES),
        error_code=_choice("error_code", ERROR_CODES),
        connector_type=_text("type"),
        enabled=enabled,
        company_id=_number("company") if current_user.is_superadmin else None,
        text=_text("q"),
    )
    return filters, _choice("sort", CONNECTOR_SORTS, "chargepoint")


@bp.get("/connectors")
def connectors():
    """Every connector the user may see: filtered, sorted, paginated on the server."""
    filters, sort = _connector_filters()
    page = connector_service.search_connectors(
        current_user, filters, sort=sort, page=_number("page", 1), per_page=50
    )
    return render_page(
        "pages/connectors.html",
        "pages/_connector_table.html",
        page=page,
        filters=filters,
        sort=sort,
        sorts=list(CONNECTOR_SORTS),
        statuses=STATUSES,
        error_codes=ERROR_CODES,
        companies=_companies(),
        args=request.args,
    )


CSV_COLUMNS = [
    "chargepoint_identity",
    "chargepoint_name",
    "company",
    "connector_id",
    "connector_type",
    "connector_status",
    "connector_error_code",
    "connector_enabled",
    "connector_max_volt",
    "connector_max_amp",
    "info",
    "connector_updated",
]


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/connectors.csv")
def connectors_csv():
    """The connectors of the current filter (all pages) as CSV."""
    filters, sort = _connector_filters()
    rows = connector_service.iter_connectors(current_user, filters, sort=sort)

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for connector in rows:
            cp = connector.chargepoint
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        cp.identity,
                        cp.name,
                        cp.company.name,
                        connector.connector_id,
                        connector.connector_type,
                        connector.connector_status,
                        connector.connector_error_code,
                        "yes" if connector.connector_enabled else "no",
                        connector.connector_max_volt,
                        connector.connector_max_amp,
                        connector.info,
                        format_datetime(connector.connector_updated),
                    )
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="connectors.csv"'},
    )
