"""Administration, superadmin only: companies, users, charge points, API tokens. Forms
post back to the page; an error re-renders it with the message beside the field and what
was typed; a success redirects (a token or a generated key is shown once, on its page)."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.models import AUTHORIZATION_MODES, IDTAG_STATUSES
from dashboard.pages import chargepoint_page
from dashboard.pages.forms import load
from dashboard.schemas.chargepoint import ChargePointCreateSchema, ChargePointUpdateSchema
from dashboard.schemas.charging import IdTagCreateSchema, IdTagUpdateSchema
from dashboard.schemas.connector import MAX_ID
from dashboard.services import accounts, charging
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services.errors import Conflict, Invalid, NotFound
from dashboard.services.permissions import BUILTIN_ROLES

bp = Blueprint("admin", __name__, url_prefix="/admin")
chargepoint_create_schema = ChargePointCreateSchema()
chargepoint_update_schema = ChargePointUpdateSchema()
idtag_create_schema = IdTagCreateSchema()
idtag_update_schema = IdTagUpdateSchema()


@bp.before_request
@login_required
def _superadmin_only():
    """Nothing here is for anyone but a superadmin (403, in the layout)."""
    accounts.require_superadmin(current_user)


def _page(template: str, status: int = 200, **context) -> Response:
    return Response(render_template(template, **context), status=status)


def _form_id(raw: str | None) -> int | None:
    """The id a select sent; -1 for text that is no id (beyond what the database holds,
    too), which names nothing: the service says so beside the field."""
    try:
        value = int(raw) if raw else None
    except ValueError:
        return -1
    return value if value is None or 0 < value <= MAX_ID else -1


@bp.route("/companies", methods=["GET", "POST"])
def companies():
    """The companies, and a form to add one."""
    errors = {}
    if request.method == "POST":
        try:
            company = accounts.create_company(current_user, request.form.get("name", ""))
            db.session.commit()
            flash(f"Company {company.name} created.")
            return redirect(url_for("admin.companies"))
        except (Invalid, Conflict) as exc:
            db.session.rollback()
            errors = exc.errors or {"name": [exc.message]}
    status = 422 if errors else 200
    return _page(
        "admin/companies.html",
        status,
        rows=accounts.list_companies(current_user),
        form=request.form,
        errors=errors,
    )


def _users_context(**extra):
    return {
        "users": accounts.list_users(current_user),
        "roles": list(BUILTIN_ROLES),
        "companies": [row[0] for row in accounts.list_companies(current_user)],
        **extra,
    }


@bp.route("/users", methods=["GET", "POST"])
def users():
    """The users, and a form to add one."""
    errors = {}
    if request.method == "POST":
        try:
            user = accounts.create_user(
                current_user,
                request.form.get("email", ""),
                request.form.get("password", ""),
                request.form.get("role", ""),
                _form_id(request.form.get("company_id")),
            )
            db.session.commit()
            flash(f"User {user.email} created.")
            return redirect(url_for("admin.users"))
        except (Invalid, Conflict) as exc:
            db.session.rollback()
            errors = exc.errors or {"email": [exc.message]}
    form = {k: v for k, v in request.form.items() if k != "password"}  # never echo it
    return _page(
        "admin/users.html", 422 if errors else 200, **_users_context(form=form, errors=errors)
    )


@bp.route("/users/<id:user_id>", methods=["GET", "POST"])
def user(user_id: int):
    """One user: role, company, active; and a new password."""
    found = accounts.get_user(current_user, user_id)
    errors = {}
    if request.method == "POST":
        try:
            if request.form.get("action") == "password":
                accounts.reset_password(current_user, user_id, request.form.get("password", ""))
                message = f"New password set for {found.email}."
            else:
                accounts.update_user(
                    current_user,
                    user_id,
                    role_name=request.form.get("role", ""),
                    company_id=_form_id(request.form.get("company_id")),
                    active=request.form.get("active") == "on",
                )
                message = f"{found.email} updated."
            db.session.commit()
            flash(message)
            return redirect(url_for("admin.user", user_id=user_id))
        except Invalid as exc:
            db.session.rollback()
            errors = exc.errors or {"role": [exc.message]}
            found = accounts.get_user(current_user, user_id)
    form = {k: v for k, v in request.form.items() if k != "password"}
    return _page(
        "admin/user.html",
        422 if errors else 200,
        **_users_context(user=found, form=form, errors=errors),
    )


@bp.route("/chargepoints", methods=["GET", "POST"])
def chargepoints():
    """Register a charge point; a generated authorization key is shown once."""
    errors, created, key = {}, None, None
    if request.method == "POST":
        key_choice = request.form.get("key", "none")
        key = secrets.token_hex(20) if key_choice == "generate" else None
        data = {
            "chargepoint_identity": request.form.get("identity", "").strip(),
            "chargepoint_company_id": _form_id(request.form.get("company_id")) or 0,
        }
        if request.form.get("name", "").strip():
            data["chargepoint_name"] = request.form["name"].strip()
        if key_choice == "enter":
            key = request.form.get("auth_key", "").strip()
        if key:
            data["chargepoint_auth_key"] = key
        try:
            loaded = load(chargepoint_create_schema, data)
            created = chargepoint_service.create_chargepoint(
                current_user,
                identity=loaded["chargepoint_identity"],
                company_id=loaded["chargepoint_company_id"],
                name=loaded.get("chargepoint_name"),
                auth_key=loaded.get("chargepoint_auth_key"),
            )
            db.session.commit()
        except (Invalid, Conflict, NotFound) as exc:
            db.session.rollback()
            created, key = None, None
            errors = {
                name.removeprefix("chargepoint_"): messages
                for name, messages in (exc.errors or {"identity": [exc.message]}).items()
            }
    companies = [row[0] for row in accounts.list_companies(current_user)]
    # After a success the form starts afresh (submitting it again would only conflict).
    form = {} if created else {k: v for k, v in request.form.items() if k != "auth_key"}
    return _page(
        "admin/chargepoints.html",
        422 if errors else 200,
        form=form,
        errors=errors,
        created=created,
        ocpp_url=ocpp_url(created.identity) if created else None,
        key=key if created else None,
        companies=companies,
    )


@bp.post("/chargepoints/<id:cp_id>")
def update_chargepoint(cp_id: int):
    """Rename a charge point, move it to another company, set its registration status:
    the form on its page, which shows the errors beside the fields."""
    chargepoint_service.get_chargepoint(current_user, cp_id)  # 404 for no such one
    data = {
        "chargepoint_name": request.form.get("cp_name", ""),
        "chargepoint_company_id": _form_id(request.form.get("cp_company_id")) or 0,
        "chargepoint_registration_status": request.form.get("cp_registration_status", ""),
    }
    try:
        loaded = load(chargepoint_update_schema, data)
        chargepoint_service.update_chargepoint(
            current_user,
            cp_id,
            name=loaded["chargepoint_name"],
            company_id=loaded["chargepoint_company_id"],
            registration_status=loaded["chargepoint_registration_status"],
        )
        db.session.commit()
    except (Invalid, NotFound) as exc:  # NotFound: the company named
        db.session.rollback()
        errors = {
            "cp_" + name.removeprefix("chargepoint_"): messages
            for name, messages in (exc.errors or {"chargepoint_company_id": [exc.message]}).items()
        }
        return chargepoint_page(cp_id, form=request.form, errors=errors, status=422)
    flash("Charge point saved.")
    return redirect(url_for("pages.chargepoint", cp_id=cp_id))


@bp.delete("/chargepoints/<id:cp_id>")
def delete_chargepoint(cp_id: int):
    """Delete a charge point with its connectors and their history (htmx, after the
    browser's confirmation); the browser then goes to the overview."""
    name = chargepoint_service.get_chargepoint(current_user, cp_id).name
    chargepoint_service.delete_chargepoint(current_user, cp_id)
    db.session.commit()
    flash(f"Charge point {name} deleted.")
    return Response("", headers={"HX-Redirect": url_for("pages.overview")})


def ocpp_url(identity: str) -> str:
    """The address a charge point connects to, as this request reached the server: ws://
    or wss:// (a WebSocket route), this host."""
    return url_for("ocpp16.ocpp", identity=identity, _external=True)


@bp.route("/idtags", methods=["GET", "POST"])
def idtags():
    """Id tags: each company's authorization mode, its tags (add, change status, adopt a
    tag only seen, delete)."""
    errors, form = {}, {}
    if request.method == "POST":
        action = request.form.get("action", "add")
        try:
            message = _idtag_action(action)
            db.session.commit()
            flash(message)
            return redirect(url_for("admin.idtags"))
        except (Invalid, Conflict, NotFound) as exc:
            db.session.rollback()
            errors = exc.errors or {"tag": [exc.message]}
            form = {k: v for k, v in request.form.items()}
    companies = [row[0] for row in accounts.list_companies(current_user)]
    page = charging.list_idtags(current_user, page=_page_number(), per_page=50)
    return _page(
        "admin/idtags.html",
        422 if errors else 200,
        companies=companies,
        page=page,
        statuses=IDTAG_STATUSES,
        modes=AUTHORIZATION_MODES,
        form=form,
        errors=errors,
    )


def _page_number() -> int:
    raw = request.args.get("page", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1


def _idtag_action(action: str) -> str:
    """Carry out one of the id tag page's forms; returns what to tell the user."""
    if action == "mode":
        company = charging.set_authorization_mode(
            current_user,
            _form_id(request.form.get("company_id")) or 0,
            request.form.get("mode", ""),
        )
        return f"{company.name} authorizes in {company.authorization_mode} mode."
    if action in ("status", "adopt", "delete"):
        idtag_id = _form_id(request.form.get("idtag_id")) or 0
        if action == "delete":
            charging.delete_idtag(current_user, idtag_id)
            return "Id tag deleted."
        status = request.form.get("status") if action == "status" else None
        loaded = load(idtag_update_schema, {"status": status} if status else {})
        tag = charging.update_idtag(current_user, idtag_id, **loaded)
        return f"Id tag {tag.tag} saved."
    expiry = request.form.get("expiry_date", "").strip()
    data = {
        "company_id": _form_id(request.form.get("company_id")) or 0,
        "tag": request.form.get("tag", ""),
        "status": request.form.get("status", "Accepted"),
        "expiry_date": f"{expiry}T23:59:59Z" if expiry else None,
        "parent_tag": request.form.get("parent_tag", "").strip() or None,
        "note": request.form.get("note", "").strip() or None,
    }
    loaded = load(idtag_create_schema, data)
    tag = charging.create_idtag(current_user, **loaded)
    return f"Id tag {tag.tag} registered."


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """API tokens: create one (shown once), see when each was last used, revoke."""
    errors, clear = {}, None
    if request.method == "POST":
        try:
            user_id = _form_id(request.form.get("user_id")) or 0
            token, clear = accounts.create_token(current_user, user_id, request.form.get("name"))
            db.session.commit()
        except (Invalid, NotFound) as exc:
            db.session.rollback()
            errors = exc.errors or {"user_id": [exc.message]}
    return _page(
        "admin/tokens.html",
        422 if errors else 200,
        tokens=accounts.list_tokens(current_user),
        users=accounts.list_users(current_user),
        form=request.form,
        errors=errors,
        clear=clear,
    )


@bp.post("/tokens/<id:token_id>/revoke")
def revoke_token(token_id: int):
    """Revoke a token."""
    token = accounts.revoke(current_user, token_id)
    db.session.commit()
    flash(f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect(url_for("admin.tokens"))
