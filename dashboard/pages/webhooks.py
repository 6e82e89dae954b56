"""Webhook endpoints in pages: a company's list, add (the secret shown once), enable or
disable, delete, and each endpoint's delivery log with redelivery."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.extensions import db
from dashboard.pages import _companies, _number, bp
from dashboard.services import webhooks as service
from dashboard.services.errors import Invalid, NotFound
from dashboard.services.outbox import EVENT_TYPES


def _list(form=None, errors=None, created=None, status=200):
    if not current_user.can("read.webhook"):
        abort(403)
    page = service.list_endpoints(current_user, page=_number("page", 1), per_page=50)
    return render_template(
        "webhooks/index.html",
        page=page,
        form=form or {},
        errors=errors or {},
        created=created,
        event_types=EVENT_TYPES,
        companies=_companies(),
        args=request.args,
    ), status


@bp.get("/webhooks")
def webhooks():
    return _list()


@bp.post("/webhooks")
def add_webhook():
    form = request.form
    company = form.get("company_id", "")
    try:
        created = service.create_endpoint(
            current_user,
            url=form.get("url", ""),
            company_id=int(company) if company.isdigit() else None,
            event_types=form.getlist("event_types"),
            description=form.get("description"),
        )
        db.session.commit()
    except Invalid as exc:
        db.session.rollback()
        return _list(form=form, errors=exc.errors, status=422)
    except NotFound as exc:
        db.session.rollback()
        return _list(form=form, errors={"company_id": [exc.message]}, status=422)
    return _list(created=created, status=201)


@bp.get("/webhooks/<id:webhook_id>")
def webhook(webhook_id: int):
    endpoint = service.get_endpoint(current_user, webhook_id)
    deliveries = service.list_deliveries(
        current_user, webhook_id, page=_number("page", 1), per_page=50
    )
    return render_template(
        "webhooks/endpoint.html", endpoint=endpoint, page=deliveries, args=request.args
    )


@bp.post("/webhooks/<id:webhook_id>/enabled")
def toggle_webhook(webhook_id: int):
    enabled = request.form.get("enabled") == "1"
    service.update_endpoint(current_user, webhook_id, enabled=enabled)
    db.session.commit()
    flash(
        "Endpoint enabled: deliveries go on from where they stopped."
        if enabled
        else "Endpoint disabled."
    )
    return redirect(url_for("pages.webhook", webhook_id=webhook_id), 303)


@bp.post("/webhooks/<id:webhook_id>/delete")
def delete_webhook(webhook_id: int):
    service.delete_endpoint(current_user, webhook_id)
    db.session.commit()
    flash("Endpoint deleted.")
    return redirect(url_for("pages.webhooks"), 303)


@bp.post("/webhooks/<id:webhook_id>/redeliver")
def redeliver_webhook(webhook_id: int):
    event_id = request.form.get("event_id", "")
    if not event_id.isdigit() or len(event_id) > 18:
        abort(400, description="An event id is needed.")
    delivery = service.redeliver(current_user, webhook_id, int(event_id))
    db.session.commit()
    flash(
        f"Event {event_id} sent again: "
        + (f"HTTP {delivery.status_code}" if delivery.status_code else delivery.error or "failed")
    )
    return redirect(url_for("pages.webhook", webhook_id=webhook_id), 303)
