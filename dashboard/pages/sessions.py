"""The sessions page: every charging session the user may see, filtered, sorted, paged,
and exported as CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import request
from flask_login import current_user

from dashboard.pages import _companies, _number, _text, bp, csv_download, render_page
from dashboard.schemas.fields import format_datetime
from dashboard.services import charging as service
from dashboard.services.pagination import sort_keys

SESSION_SORT_LABELS = {
    "start": "Start, latest first",
    "-start": "Start, earliest first",
    "energy": "Energy, most first",
    "-energy": "Energy, least first",
}
CSV_COLUMNS = [
    "transaction_id",
    "chargepoint_identity",
    "chargepoint_name",
    "company",
    "connector_id",
    "id_tag",
    "id_tag_status",
    "start_timestamp",
    "stop_timestamp",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
    "peak_power_w",
    "stop_reason",
    "active",
    "orphan",
]


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _filters() -> tuple[dict, dict]:
    """The service's filters from the query string, and what the form shows."""
    since, until = _day("from"), _day("to")
    shown = {
        "q": _text("q"),
        "connector": _number("connector"),
        "tag": _text("tag"),
        "from": since.isoformat() if since else "",
        "to": until.isoformat() if until else "",
        "active": request.args.get("active") == "1",
        "company": _number("company") if current_user.is_superadmin else None,
        "sort": request.args.get("sort")
        if request.args.get("sort") in sort_keys(service.TRANSACTION_SORTS)
        else "start",
    }
    filters = {
        "text": shown["q"],
        "connector_id": shown["connector"],
        "id_tag": (shown["tag"] or "")[:20] or None,
        "since": datetime.combine(since, time(), UTC) if since else None,
        # "to" is a whole day: sessions started on it are included.
        "until": datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None,
        "active": True if shown["active"] else None,
        "company_id": shown["company"],
        "sort": shown["sort"],
    }
    return filters, shown


@bp.get("/sessions")
def sessions():
    """Charging sessions: filters in the URL, pages of 50, newest first by default."""
    filters, shown = _filters()
    page = service.list_transactions(current_user, page=_number("page", 1), per_page=50, **filters)
    return render_page(
        "sessions/index.html",
        "sessions/_table.html",
        page=page,
        shown=shown,
        args=request.args,
        companies=_companies(),
        sorts=SESSION_SORT_LABELS,
    )


@bp.get("/sessions.csv")
def sessions_csv():
    """The sessions of the current filter (all pages) as CSV."""
    filters, _ = _filters()

    def cells(tx):
        cp = tx.chargepoint
        return (
            tx.id,
            cp.identity,
            cp.name,
            cp.company.name,
            tx.connector_id,
            tx.id_tag,
            tx.id_tag_status,
            _when(tx.start_timestamp),
            _when(tx.stop_timestamp),
            tx.meter_start,
            tx.meter_stop,
            tx.energy_wh,
            tx.peak_power_w,
            tx.stop_reason,
            "yes" if tx.active else "no",
            "yes" if tx.orphan else "no",
        )

    rows = service.iter_transactions(current_user, **filters)
    return csv_download("sessions.csv", CSV_COLUMNS, rows, cells)


def _when(moment: datetime | None) -> str:
    return format_datetime(moment) if moment else ""
