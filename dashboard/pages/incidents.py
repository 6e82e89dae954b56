"""The incidents page (open first, filters, history), acknowledgement with a note, and the
incident rules page for superadmins."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.extensions import db
from dashboard.models.incident import KINDS
from dashboard.pages import _choice, _companies, _number, bp, render_page
from dashboard.pages.forms import whole_number
from dashboard.services import incidents as service
from dashboard.services.errors import Invalid

STATES = {
    "open": "Open",
    "unacknowledged": "Open, not acknowledged",
    "resolved": "Resolved",
    "all": "All",
}


def _filters() -> dict:
    return {
        "state": _choice("state", STATES, "open"),
        "kind": _choice("kind", KINDS),
        "company": _number("company") if current_user.is_superadmin else None,
        "cp": _number("cp"),
    }


@bp.get("/incidents")
def incidents():
    """Incidents: open ones by default; filters in the URL; pages of 50."""
    if not current_user.can("read.incident"):
        abort(403)
    shown = _filters()
    page = service.list_incidents(
        current_user,
        state=None if shown["state"] == "all" else shown["state"],
        kind=shown["kind"],
        company_id=shown["company"],
        cp_id=shown["cp"],
        page=_number("page", 1),
        per_page=50,
    )
    return render_page(
        "incidents/index.html",
        "incidents/_table.html",
        page=page,
        shown=shown,
        args=request.args,
        states=STATES,
        kinds=KINDS,
        labels=service.RULE_LABELS,
        companies=_companies(),
    )


@bp.post("/incidents/<id:incident_id>/acknowledge")
def acknowledge_incident(incident_id: int):
    """Acknowledge with a note; the row comes back (with the message beside the note
    field when it is refused)."""
    note = request.form.get("note", "")
    errors = {}
    try:
        incident = service.acknowledge(current_user, incident_id, note)
        db.session.commit()
    except Invalid as exc:
        db.session.rollback()
        errors = exc.errors or {}
        incident = service.get_incident(current_user, incident_id)
    status = 422 if errors else 200
    return render_template(
        "incidents/_row.html",
        incident=incident,
        labels=service.RULE_LABELS,
        errors=errors,
        note=note,
    ), status


@bp.get("/incidents/rules")
def incident_rules(errors=None, status=200):
    """The rules that open incidents: defaults and per-company overrides (superadmins)."""
    if not current_user.can("update.incident_rule"):
        abort(403)
    defaults, overrides = service.rule_rows(current_user)
    return render_template(
        "incidents/rules.html",
        defaults=defaults,
        overrides=overrides,
        labels=service.RULE_LABELS,
        kinds=KINDS,
        companies=_companies(),
        errors=errors or {},
        form=request.form,
    ), status


@bp.post("/incidents/rules")
def save_incident_rule():
    if not current_user.can("update.incident_rule"):
        abort(403)
    form = request.form
    kind = form.get("kind", "")
    company_id = whole_number(form.get("company_id"))
    try:
        minutes = _form_number(form.get("minutes"), "minutes")
        threshold = whole_number(form.get("threshold")) if kind == "flapping" else None
        if form.get("remove") and company_id is not None:
            service.remove_override(current_user, kind, company_id)
        else:
            service.set_rule(
                current_user,
                kind,
                company_id=company_id,
                enabled=form.get("enabled") == "1",
                seconds=round(minutes * 60),
                threshold=threshold,
            )
        db.session.commit()
    except Invalid as exc:
        db.session.rollback()
        return incident_rules(errors={"kind": kind, **(exc.errors or {})}, status=422)
    return redirect(url_for("pages.incident_rules"), 303)


def _form_number(value: str | None, field: str) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise Invalid("Invalid rule", {field: ["A number of minutes."]}) from None
    if not 0 < number <= 7 * 24 * 60:
        raise Invalid("Invalid rule", {field: ["Between 1 second and 7 days."]})
    return number
