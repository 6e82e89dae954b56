"""Sign in and sign out (flask-login), with failed attempts rate-limited per account and
per address."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from dashboard.extensions import db, limiter
from dashboard.models import User
from dashboard.models.user import check_no_password

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """Email, password, remember me."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Remember me on this device")


def _account_key() -> str:
    # Per account *and* address: failures from one address lock that address out of the
    # account, never the account's owner signing in from elsewhere.
    email = request.form.get("email", "").strip().lower()
    return f"login-account:{get_remote_address()}:{email}"


def _failed(response) -> bool:
    # Only failed attempts count: a successful sign-in redirects.
    return response.status_code != 302


def _too_many(limit):
    form = LoginForm()
    form.password.data = ""
    message = "Too many failed sign-ins. Wait a minute, then try again."
    return make_response(render_template("auth/login.html", form=form, error=message), 429)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("pages.overview")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    on_breach=_too_many,
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    on_breach=_too_many,
    scope="login-address",
)
def login():
    """The sign-in form; on success, back to where the user was going."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.overview"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None or not user.active:
            check_no_password(form.password.data)  # as slow as a known account
        elif user.check_password(form.password.data):
            user.login_nonce = secrets.token_urlsafe(12)
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        error = "Wrong email or password."
    elif request.method == "POST":
        error = "Enter your email and password."
    status = 401 if error else 200
    form.password.data = ""
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out (a POST with the CSRF token, so no other site can sign you out): every
    session and remember cookie of the user ends, on every device, and open live
    pages close."""
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
