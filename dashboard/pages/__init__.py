"""The dashboard: server-rendered pages; each list renders whole, or as its fragment for
htmx (an `HX-Request` that is not a boosted navigation)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from ocpp.v16.enums import AvailabilityType

from dashboard.extensions import db
from dashboard.models import Company
from dashboard.models.types import utcnow
from dashboard.pages import forms
from dashboard.pages.forms import connector_data
from dashboard.schemas.commands import TRIGGERABLE
from dashboard.schemas.connector import ConnectorCreateSchema, ConnectorUpdateSchema
from dashboard.schemas.fields import format_datetime
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services import charging, commands, uptime
from dashboard.services import connectors as connector_service
from dashboard.services import incidents as incident_service
from dashboard.services.connectors import CONNECTOR_SORTS, ConnectorFilters
from dashboard.services.errors import (
    Conflict,
    Invalid,
    NotFound,
    ServiceUnavailable,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from dashboard.services.pagination import sort_keys
from dashboard.services.permissions import require
from dashboard.services.status import ERROR_CODES, REGISTRATION_STATUSES, STATUSES

bp = Blueprint("pages", __name__)
create_schema = ConnectorCreateSchema()
update_schema = ConnectorUpdateSchema()
AVAILABILITY_TYPES = [kind.value for kind in AvailabilityType]
_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


@bp.app_template_filter("breakable")
def breakable(name: str | None) -> Markup:
    """A CamelCase name (an OCPP error code) that may wrap between its words in a narrow
    column: "EVCommunication<wbr>Error"."""
    return Markup(_WORD_START.sub("<wbr>", str(escape(name or ""))))


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
    """A filter's text; a NUL character, which no stored text holds, is dropped."""
    return (request.args.get(name) or "").replace("\x00", "").strip()[:100] or None


# What each sort offered in the lists reads as, both ways ("-key": reversed).
CHARGEPOINT_SORT_LABELS = {
    "identity": "Identity, A to Z",
    "-identity": "Identity, Z to A",
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "company": "Company, A to Z",
    "-company": "Company, Z to A",
    "last_seen": "Last seen, latest first",
    "-last_seen": "Last seen, earliest first",
}
CONNECTOR_SORT_LABELS = {
    "chargepoint": "Charge point, A to Z",
    "-chargepoint": "Charge point, Z to A",
    "status": "Status, A to Z",
    "-status": "Status, Z to A",
    "type": "Type, A to Z",
    "-type": "Type, Z to A",
    "updated": "Updated, latest first",
    "-updated": "Updated, earliest first",
    "company": "Company, A to Z",
    "-company": "Company, Z to A",
}


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
        "sort": _choice("sort", sort_keys(chargepoint_service.CHARGEPOINT_SORTS), "identity"),
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
        sorts=CHARGEPOINT_SORT_LABELS,
        statuses=STATUSES,
    )


@bp.get("/chargepoints/<id:cp_id>")
def chargepoint(cp_id: int):
    """One charge point: its details and its connectors."""
    return chargepoint_page(cp_id)


def chargepoint_page(cp_id: int, form=None, errors=None, status: int = 200):
    """The charge point page; `form` and `errors` re-render one of its forms (adding a
    connector, editing the charge point) with what was typed and the messages."""
    cp = chargepoint_service.get_chargepoint(current_user, cp_id)
    connectors = connector_service.list_connectors(current_user, cp_id)
    connection = chargepoint_service.connection_state(cp)
    html = render_template(
        "pages/chargepoint.html",
        cp=cp,
        connectors=connectors,
        connection=connection,
        cp_online=connection != "offline",
        form=form or {},
        errors=errors or {},
        statuses=STATUSES,
        error_codes=ERROR_CODES,
        companies=_companies(),
        registration_statuses=REGISTRATION_STATUSES,
        triggerable=TRIGGERABLE,
        log=commands.list_commands(current_user, cp_id, page=1, per_page=20),
        incidents=recent_incidents(cp_id),
        uptime_summary=uptime_summary(cp_id),
    )
    return Response(html, status=status)


def uptime_summary(cp_id: int, connector_id: int | None = None) -> dict | None:
    """Each port's uptime this month (so far) and last month, for the charge point and
    connector pages; None for a user who may not read reports."""
    if not current_user.can("read.report"):
        return None
    scope = uptime.Scope(cp_id=cp_id, connector_id=connector_id)
    this_month = uptime.month_start(utcnow().date())
    last_month = uptime.month_start((this_month - timedelta(days=1)).date())
    periods = [
        ("This month", (this_month, uptime.next_month(this_month))),
        (last_month.strftime("%B"), (last_month, this_month)),
    ]
    figures = [
        {(p.connector_id): p for p in uptime.report(current_user, scope, *period)}
        for _, period in periods
    ]
    numbers = sorted(figures[0])
    return {
        "cp_id": cp_id,
        "periods": periods,
        "rows": [(n, [by_port[n] for by_port in figures]) for n in numbers],
    }


def recent_incidents(cp_id: int, connector_id: int | None = None):
    """The latest incidents of a charge point (or one of its connectors), open first, for
    its page; None for a user who may not read incidents."""
    if not current_user.can("read.incident"):
        return None
    return incident_service.list_incidents(
        current_user, cp_id=cp_id, connector_id=connector_id, page=1, per_page=5
    )


PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def session_chart(samples) -> dict | None:
    """Power (kW) and energy (kWh) of a session over its time, as SVG polyline points in
    a 1000 × 200 box, with the scales' tops; None before two samples of either."""
    series = {"Power.Active.Import": [], charging.ENERGY: []}
    for sample in samples:
        if sample.measurand in series and sample.normalised is not None and not sample.phase:
            series[sample.measurand].append((sample.timestamp, float(sample.normalised)))
    moments = [moment for points in series.values() for moment, _ in points]
    if len(moments) < 2:
        return None
    start, end = min(moments), max(moments)
    span = (end - start).total_seconds() or 1.0
    chart = {"start": start, "end": end}
    for name, key in (("Power.Active.Import", "power"), (charging.ENERGY, "energy")):
        points = series[name]
        if key == "energy" and points:  # energy delivered in the session, from its start
            first = points[0][1]
            points = [(moment, value - first) for moment, value in points]
        top = max((value for _, value in points), default=0.0) or 1.0
        chart[key] = " ".join(
            f"{(moment - start).total_seconds() / span * 1000:.1f},{200 - value / top * 190:.1f}"
            for moment, value in points
        )
        chart[f"{key}_top"] = top / 1000  # kW, kWh
    return chart


@bp.get("/chargepoints/<id:cp_id>/connectors/<id:connector_id>")
def connector(cp_id: int, connector_id: int):
    """One connector: its status history (timeline and table) and its time per status."""
    found = connector_service.get_connector(current_user, cp_id, connector_id)
    period = _choice("period", PERIODS, "24h")
    until = utcnow()
    since = until - PERIODS[period]
    segments = connector_service.status_segments(
        current_user, cp_id, connector_id, since=since, until=until
    )
    share = connector_service.status_share(
        current_user, cp_id, connector_id, since=since, until=until
    )
    length = PERIODS[period].total_seconds()
    # The timeline, in the 0..1000 units of its SVG's viewBox; the time before the first
    # status known in the period is a band of its own ("no data"), so that the bands span
    # their time and the blank is explained.
    known_from = segments[0][0] if segments else until
    if known_from > since:
        segments = [(since, known_from, None), *segments]
    timeline = [
        (
            (start - since).total_seconds() / length * 1000,
            (end - start).total_seconds() / length * 1000,
            status,
            start,
            end,
        )
        for start, end, status in segments
    ]
    covered = (until - known_from).total_seconds()
    history = connector_service.connector_history(
        current_user, cp_id, connector_id, page=_number("page", 1), per_page=25
    )
    current = None
    if found.transaction_id is not None:
        with contextlib.suppress(NotFound):
            current = charging.get_transaction(current_user, found.transaction_id)
    recent = charging.list_transactions(
        current_user, cp_id=cp_id, connector_id=connector_id, page=1, per_page=10
    )
    return render_page(
        "pages/connector.html",
        "pages/_history_table.html",
        connector=found,
        cp=found.chargepoint,
        history=history,
        share=share,
        timeline=timeline,
        covered=covered,
        coverage=covered / length,
        current=current,
        now=utcnow(),
        chart=session_chart(charging.transaction_meter_values(current)) if current else None,
        recent_sessions=recent,
        incidents=recent_incidents(cp_id, connector_id),
        uptime_summary=uptime_summary(cp_id, connector_id),
        known_from=known_from,
        since=since,
        until=until,
        period=period,
        periods=list(PERIODS),
        statuses=STATUSES,
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
    return filters, _choice("sort", sort_keys(CONNECTOR_SORTS), "chargepoint")


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
        sorts=CONNECTOR_SORT_LABELS,
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
    "chargepoint_connection",
    "chargepoint_last_seen",
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

    def cells(connector):
        cp = connector.chargepoint
        return (
            cp.identity,
            cp.name,
            cp.company.name,
            connector.connector_id,
            connector.connector_type,
            connector.connector_status,
            chargepoint_service.connection_state(cp),
            format_datetime(cp.last_seen) if cp.last_seen else "",
            connector.connector_error_code,
            "yes" if connector.connector_enabled else "no",
            connector.connector_max_volt,
            connector.connector_max_amp,
            connector.info,
            format_datetime(connector.connector_updated),
        )

    return csv_download("connectors.csv", CSV_COLUMNS, rows, cells)


def csv_download(filename: str, columns: list[str], rows, cells) -> Response:
    """Stream `rows` (a generator that closes its cursor when closed) as a CSV file of
    `columns`, each row's values given by `cells(row)`; no cell runs as a formula."""

    def generate():
        try:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(value) for value in cells(row)])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()
        finally:  # a download stopped early gives its database cursor back now
            rows.close()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- Changes (superadmin): through the same services as the API, source "ui". ---------


def _commit(response):
    """One commit per request, after the service succeeded."""
    db.session.commit()
    return response


def _row(connector, status: int = 200):
    return Response(
        render_template("pages/_connector_row.html", connector=connector),
        status=status,
    )


@bp.post("/chargepoints/<id:cp_id>/connectors")
def add_connector(cp_id: int):
    """Add a connector (a plain form: redirects back, or shows the errors beside the
    fields with what was typed)."""
    data = connector_data(request.form, creating=True)
    try:
        loaded = forms.load(create_schema, {**data, "connector_cp_id": cp_id})
        connector_service.create_connector(current_user, source="ui", **loaded)
    except (Invalid, Conflict) as exc:
        db.session.rollback()
        errors = exc.errors or {"connector_id": [exc.message]}
        return chargepoint_page(cp_id, form=request.form, errors=errors, status=422)
    db.session.commit()
    flash(f"Connector {loaded['connector_id']} added.")
    return redirect(url_for("pages.chargepoint", cp_id=cp_id))


@bp.get("/chargepoints/<id:cp_id>/connectors/<id:connector_id>/edit")
def edit_connector(cp_id: int, connector_id: int):
    """The row of a connector as a form (htmx)."""
    require(current_user, "update.connector")
    connector = connector_service.get_connector(current_user, cp_id, connector_id)
    return render_template(
        "pages/_connector_form_row.html",
        connector=connector,
        form={},
        errors={},
        statuses=STATUSES,
        error_codes=ERROR_CODES,
    )


@bp.get("/chargepoints/<id:cp_id>/connectors/<id:connector_id>/row")
def connector_row(cp_id: int, connector_id: int):
    """The row of a connector (htmx: after Cancel)."""
    return _row(connector_service.get_connector(current_user, cp_id, connector_id))


@bp.post("/chargepoints/<id:cp_id>/connectors/<id:connector_id>")
def save_connector(cp_id: int, connector_id: int):
    """Save the edited row: the row again, or the form with its errors (422)."""
    data = connector_data(request.form, creating=False)
    try:
        loaded = forms.load(update_schema, {**data, "connector_cp_id": cp_id})
        loaded.pop("connector_cp_id")
        connector = connector_service.update_connector(
            current_user, cp_id, connector_id, source="ui", **loaded
        )
    except Invalid as exc:
        db.session.rollback()
        connector = connector_service.get_connector(current_user, cp_id, connector_id)
        return render_template(
            "pages/_connector_form_row.html",
            connector=connector,
            form=request.form,
            errors=exc.errors,
            statuses=STATUSES,
            error_codes=ERROR_CODES,
        ), 422
    return _commit(_row(connector))


@bp.post("/chargepoints/<id:cp_id>/connectors/<id:connector_id>/enabled")
def toggle_connector(cp_id: int, connector_id: int):
    """Enable or disable a connector (htmx)."""
    connector = connector_service.get_connector(current_user, cp_id, connector_id)
    connector = connector_service.update_connector(
        current_user,
        cp_id,
        connector_id,
        source="ui",
        connector_enabled=not connector.connector_enabled,
    )
    return _commit(_row(connector))


@bp.delete("/chargepoints/<id:cp_id>/connectors/<id:connector_id>")
def delete_connector(cp_id: int, connector_id: int):
    """Delete a connector (htmx, after the browser's confirmation): the row goes away."""
    connector_service.delete_connector(current_user, cp_id, connector_id)
    return _commit(Response("", status=200))


def command_answer(output_id: str, run):
    """A call to the charge point, answered as a small fragment (htmx) that takes the place
    of the `<output>` element `output_id`: the charge point's answer, or why there is none
    (a bad form value included)."""
    try:
        answer = run()
        message, ok = f"Charge point answered: {answer.get('status')}", True
    except (Unavailable, ServiceUnavailable, UpstreamError, UpstreamTimeout) as exc:
        message, ok = exc.message, False
    except Invalid as exc:
        problems = [f"{name}: {' '.join(texts)}" for name, texts in (exc.errors or {}).items()]
        message, ok = "; ".join(problems) or exc.message, False
    return render_template(
        "pages/_command_result.html", message=message, ok=ok, output_id=output_id
    )


@bp.post("/chargepoints/<id:cp_id>/connectors/<id:connector_id>/availability")
def connector_availability(cp_id: int, connector_id: int):
    """ChangeAvailability of a connector; `type` is Operative or Inoperative."""
    kind = _form_choice("type", AVAILABILITY_TYPES)
    return command_answer(
        f"answer-{cp_id}-{connector_id}",
        lambda: commands.change_availability(current_user, cp_id, connector_id, kind, "ui"),
    )


@bp.post("/chargepoints/<id:cp_id>/connectors/<id:connector_id>/unlock")
def connector_unlock(cp_id: int, connector_id: int):
    """UnlockConnector."""
    return command_answer(
        f"answer-{cp_id}-{connector_id}",
        lambda: commands.unlock_connector(current_user, cp_id, connector_id, "ui"),
    )


@bp.post("/chargepoints/<id:cp_id>/availability")
def chargepoint_availability(cp_id: int):
    """ChangeAvailability of the whole charge point."""
    kind = _form_choice("type", AVAILABILITY_TYPES)
    return command_answer(
        f"answer-{cp_id}",
        lambda: commands.change_availability(
            current_user, cp_id, 0, kind, "ui", reason=_text_field("reason", 300)
        ),
    )


def _text_field(name: str, max_length: int) -> str | None:
    """An optional text field of the form: None when blank; refused when too long."""
    value = (request.form.get(name) or "").strip()
    if len(value) > max_length:
        raise Invalid(f"{name} must be at most {max_length} characters")
    return value or None


def _form_choice(name: str, choices):
    value = request.form.get(name)
    if value not in choices:
        raise Invalid(f"{name} must be one of {', '.join(choices)}")
    return value


from dashboard.pages import incidents as _incidents  # noqa: E402,F401  (routes)
from dashboard.pages import operations as _operations  # noqa: E402,F401  (routes)
from dashboard.pages import reports as _reports  # noqa: E402,F401  (routes)
from dashboard.pages import sessions as _sessions  # noqa: E402,F401  (routes)
from dashboard.pages import webhooks as _webhooks  # noqa: E402,F401  (routes)
