"""Plugboard: see and manage every EV charging connector, live.

`create_app()` builds the one Flask application: the JSON API, the pages and the OCPP
endpoint over one database.
"""

from __future__ import annotations

import sqlite3

from flask import Flask, abort, request
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from dashboard import config
from dashboard.extensions import csrf, db, limiter, login_manager, migrate, sock


def _up_to(limit: str) -> str:
    """A regular expression of the decimal numbers from 1 to `limit`, without leading
    zeros."""
    shorter = f"[1-9][0-9]{{0,{len(limit) - 2}}}" if len(limit) > 1 else ""
    same_length = []
    for position, digit in enumerate(limit):
        rest = len(limit) - position - 1
        low = "1" if position == 0 else "0"
        if digit > low:
            top = str(int(digit) - 1)
            same_length.append(f"{limit[:position]}[{low}-{top}][0-9]{{{rest}}}")
    same_length.append(limit)
    return "(?:" + "|".join(([shorter] if shorter else []) + same_length) + ")"


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 to 2**31-1. Anything else does not match the path at
    all (404, never a 405 naming the methods of a route it cannot reach), and no
    out-of-range number ever reaches a query."""

    regex = _up_to(str(2**31 - 1))

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=2**31 - 1)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: enforce foreign keys (cascades), WAL for readers beside a writer, and wait
    for a lock instead of failing at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


# Everything from this site only; no inline script or style anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _configure_bus(app: Flask) -> None:
    """Redis between processes when REDIS_URL is set; this process alone otherwise."""
    from dashboard.live import events
    from dashboard.live.redis_bus import RedisBus
    from dashboard.ocpp16 import remote

    url = app.config.get("REDIS_URL")
    bus = RedisBus(url) if url else None
    if bus is not None:
        remote.install(bus)
    events.configure(bus)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application from the environment, overridden by `test_config`."""
    app = Flask(__name__.split(".")[0], root_path=str(config.INSTANCE_DIR.parent))
    app.config.from_mapping(config.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
        if "SQLALCHEMY_ENGINE_OPTIONS" not in test_config:  # those of the database given
            url = app.config["SQLALCHEMY_DATABASE_URI"]
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = config.engine_options(url)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set: export SECRET_KEY (or SECRET_KEY_FILE), "
            "or run `make run`, which generates instance/secret_key"
        )
    config.INSTANCE_DIR.mkdir(exist_ok=True)
    app.json.sort_keys = False
    if app.config["TRUSTED_PROXIES"]:
        # Behind that many proxies (nginx), believe their X-Forwarded-For/-Proto/-Host:
        # the client's address for sign-in limits, https for the live channel's origin.
        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    app.url_map.converters["id"] = IdConverter

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config.INSTANCE_DIR.parent / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see this page."
    csrf.init_app(app)
    sock.init_app(app)
    limiter.init_app(app)

    from dashboard import (
        auth,  # noqa: F401  (registers the user loader)
        models,  # noqa: F401  (registers the tables)
    )
    from dashboard.api import bp as api_bp
    from dashboard.api.envelope import register_error_handlers
    from dashboard.auth.views import bp as auth_bp
    from dashboard.cli import register_commands
    from dashboard.live.views import bp as live_bp
    from dashboard.ocpp16 import bp as ocpp_bp
    from dashboard.ops import bp as ops_bp
    from dashboard.pages import bp as pages_bp
    from dashboard.pages.admin import bp as admin_bp
    from dashboard.pages.operations import key_id
    from dashboard.schemas.fields import format_decimal
    from dashboard.services import incidents
    from dashboard.services.chargepoints import connection_state

    # API writes are protected by the Bearer token, or by csrf.protect() for sessions.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(ocpp_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(live_bp)
    app.jinja_env.filters["decimal"] = lambda v: "—" if v is None else format_decimal(v)
    app.jinja_env.globals["connection_state"] = connection_state
    app.jinja_env.globals["key_id"] = key_id
    app.jinja_env.globals["open_incident_count"] = lambda: incidents.open_count(current_user)
    app.jinja_env.filters["kwh"] = lambda wh: "— kWh" if wh is None else f"{wh / 1000:.2f} kWh"
    app.jinja_env.filters["kw"] = lambda w: "— kW" if w is None else f"{w / 1000:.1f} kW"
    register_error_handlers(app)
    register_commands(app)
    _configure_bus(app)

    if app.config["BACKGROUND_JOBS"] and not app.testing:
        from dashboard import clock

        @app.before_request
        def _start_clock():
            clock.start(app)  # once per process, after gunicorn's fork

    @app.before_request
    def _refuse_nul_in_forms():
        """No text Plugboard keeps may hold the NUL character (PostgreSQL cannot store
        one) and no form field has a use for it: a form carrying one is refused whole, for
        every form at once. (JSON bodies are checked by their schemas, query filters where
        they are read.)"""
        if request.mimetype in _FORM_TYPES and any(
            "\x00" in value for values in request.form.listvalues() for value in values
        ):
            abort(400, description="A form field holds the NUL character, which no text may.")

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.endpoint != "static":  # pages, fragments, CSV and API answers are private
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
