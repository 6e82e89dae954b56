"""The uptime reports page: a company's, a charge point's or one port's uptime, a month at
a time, the last twelve months as bars against the 97 % line, a port's outages (which
operators can exclude, with a reason), and the quarterly NEVI CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import abort, redirect, request, url_for
from flask_login import current_user

from dashboard.extensions import db
from dashboard.models import EXCLUSION_CAUSES
from dashboard.models.types import utcnow
from dashboard.pages import _companies, _number, bp, csv_download, render_page
from dashboard.pages.forms import whole_number
from dashboard.services import uptime as service
from dashboard.services.errors import Invalid, NotFound
from dashboard.services.pagination import Page

PORTS_PER_PAGE = 50


def _month() -> date:
    """The month asked for (?month=2026-09), else this one."""
    try:
        chosen = datetime.strptime(request.values.get("month", ""), "%Y-%m").date()
    except ValueError:
        return utcnow().date().replace(day=1)
    return min(chosen, utcnow().date().replace(day=1))


def _scope() -> service.Scope:
    return service.Scope(
        company_id=_number("company") if current_user.is_superadmin else None,
        cp_id=_number("cp"),
        connector_id=_number("port") if _number("cp") else None,
    )


@bp.get("/reports")
def reports(errors=None, form=None, status=200):
    """Uptime of the ports in the scope for a month, the twelve months up to it, and for
    one port its outages and exclusions."""
    if not current_user.can("read.report"):
        abort(403)
    month = _month()
    scope = _scope()
    start, end = service.month_start(month), service.next_month(service.month_start(month))
    ports = service.report(current_user, scope, start, end)
    ports.sort(key=lambda p: (p.uptime is None, p.uptime or 0, p.identity, p.connector_id))
    number = _number("page", 1)
    page = Page(
        items=ports[(number - 1) * PORTS_PER_PAGE : number * PORTS_PER_PAGE],
        page=number,
        per_page=PORTS_PER_PAGE,
        total=len(ports),
    )
    bars = service.monthly(current_user, scope, month)
    detail = exclusions = None
    if scope.connector_id is not None:
        [detail] = service.report(current_user, scope, start, end, outages=True)
        exclusions = service.exclusions_of(current_user, scope, start, end)
    quarter = (month.month - 1) // 3 + 1
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_page(
        "reports/index.html",
        "reports/index.html",
        month=month,
        scope=scope,
        start=start,
        end=end,
        page=page,
        whole=service.total(ports, start, end),
        chart=_chart(bars),
        detail=detail,
        exclusions=exclusions,
        quarter=quarter,
        causes=service.CAUSES,
        exclusion_causes=EXCLUSION_CAUSES,
        target=service.TARGET,
        companies=_companies(),
        args=args,
        errors=errors or {},
        form=form or {},
    ), status


# The chart's drawing area, in SVG units.
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 720, 240, 44, 16, 40


def _chart(bars: list[service.PortUptime]) -> dict:
    """Bars of monthly uptime on a scale from `low` to 100 % (low enough to show every
    bar and the 97 % line), as SVG coordinates."""
    values = [bar.uptime for bar in bars if bar.uptime is not None]
    low = max(0, min([90, *[int(v) - 5 for v in values]]) // 10 * 10)
    plot = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT) / max(1, len(bars))

    def y(value: float) -> float:
        return TOP + (100 - value) / (100 - low) * plot

    items = []
    for n, bar in enumerate(bars):
        value = bar.uptime
        top = y(value) if value is not None else HEIGHT - BOTTOM
        items.append(
            {
                "x": LEFT + n * step + step * 0.15,
                "width": step * 0.7,
                "y": top,
                "height": HEIGHT - BOTTOM - top,
                "label": bar.start.strftime("%b %Y"),
                "short": bar.start.strftime("%b"),
                "value": value,
                "meets": value is not None and value > service.TARGET,
                "center": LEFT + n * step + step / 2,
                "bar": bar,
            }
        )
    ticks = [(v, y(v)) for v in range(low, 101, 10 if 100 - low > 20 else 2)]
    return {
        "items": items,
        "ticks": ticks,
        "target_y": y(service.TARGET),
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "base": HEIGHT - BOTTOM,
    }


@bp.post("/reports/exclusions")
def create_exclusion():
    """Exclude out-time of a port (an outage, or a span typed in), then back to the
    report; when refused, the page again with the message beside the field and what was
    typed."""
    form = request.form.to_dict()
    errors = {}
    try:
        cp_id = whole_number(form.get("cp"))
        if cp_id is None:
            raise NotFound("Charge point not found")
        service.exclude(
            current_user,
            cp_id,
            whole_number(form.get("port")),
            starts=_form_time(form, "starts", errors),
            ends=_form_time(form, "ends", errors, required=False),
            cause=form.get("cause", ""),
            reason=form.get("reason", ""),
        )
        if errors:
            raise Invalid("The exclusion is not valid.", errors)
        db.session.commit()
    except Invalid as exc:
        db.session.rollback()
        errors = {**errors, **(exc.errors or {})}
    if errors:
        return reports(errors=errors, form=form, status=422)
    return redirect(url_for("pages.reports", **request.args))


def _form_time(form: dict, name: str, errors: dict, required: bool = True) -> datetime | None:
    """A time typed in a datetime-local field (UTC) or carried from an outage (ISO 8601)."""
    raw = (form.get(name) or "").strip()
    if not raw:
        if required:
            errors[name] = ["Give a date and time (UTC)."]
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = ["A date and time, like 2026-09-10T10:00."]
        return utcnow() if required else None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@bp.get("/reports/nevi.csv")
def nevi_csv():
    """The quarterly NEVI report of the scope (23 CFR 680.112) as CSV."""
    if not current_user.can("read.report"):
        abort(403)
    year = _number("year", utcnow().year, 2000, 2100)
    quarter = _number("quarter", 1, 1, 4)
    rows = service.nevi_rows(current_user, _scope(), year, quarter)
    return csv_download(
        f"uptime-{year}-Q{quarter}.csv", list(service.NEVI_COLUMNS), rows, lambda row: row
    )
