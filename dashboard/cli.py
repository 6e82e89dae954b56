"""Commands of `flask --app wsgi ...`: companies, users, charge points, tokens, demo data.

Each command runs the same service functions as the API, as the SYSTEM actor (the operator
at the shell), and commits once."""

from __future__ import annotations

from decimal import Decimal

import click
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import select

from dashboard.auth.tokens import issue_token
from dashboard.extensions import db
from dashboard.models import ChargePoint, Company, User
from dashboard.schemas.chargepoint import ChargePointCreateSchema
from dashboard.services import accounts
from dashboard.services import chargepoints as chargepoint_service
from dashboard.services import connectors as connector_service
from dashboard.services.errors import ServiceError
from dashboard.services.permissions import BUILTIN_ROLES, SYSTEM, sync_builtin_roles

DEMO_PASSWORD = "plugboard-demo"


def _fail(message: str):
    raise click.ClickException(message)


def create_company(name: str) -> Company:
    """Create a company (as the operator at the shell)."""
    return _run(accounts.create_company, SYSTEM, name)


def create_user(email: str, password: str, role_name: str, company_id: int | None) -> User:
    """Create a user (as the operator at the shell)."""
    return _run(accounts.create_user, SYSTEM, email, password, role_name, company_id)


def _run(operation, *args, **kwargs):
    """Run a service operation; its refusal becomes a clear command-line error."""
    try:
        return operation(*args, **kwargs)
    except ServiceError as exc:
        details = "; ".join(
            f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items()
        )
        _fail(f"{exc.message}{f' ({details})' if details else ''}")


def register_commands(app: Flask) -> None:
    """Attach the commands to `app.cli`."""

    @app.cli.command("create-company")
    @click.argument("name")
    def create_company_command(name: str) -> None:
        """Create a company; prints its id."""
        company = create_company(name)
        db.session.commit()
        click.echo(company.id)

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", "role_name", type=click.Choice(sorted(BUILTIN_ROLES)), required=True)
    @click.option("--company", "company_id", type=int, default=None)
    def create_user_command(email, password, role_name, company_id) -> None:
        """Create a user (a company user needs --company); prints its id."""
        user = create_user(email, password, role_name, company_id)
        db.session.commit()
        click.echo(user.id)

    @app.cli.command("create-chargepoint")
    @click.argument("identity")
    @click.option("--company", "company_id", type=int, required=True)
    @click.option("--name", default=None)
    @click.option("--auth-key", default=None, help="AuthorizationKey, 32 to 40 hex digits")
    def create_chargepoint_command(identity, company_id, name, auth_key) -> None:
        """Register a charge point under its OCPP identity; prints its id."""
        data = {"chargepoint_identity": identity, "chargepoint_company_id": company_id}
        if name is not None:
            data["chargepoint_name"] = name
        if auth_key is not None:
            data["chargepoint_auth_key"] = auth_key
        try:
            loaded = ChargePointCreateSchema().load(data)
        except ValidationError as exc:
            _fail("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.messages.items()))
        chargepoint = _run(
            chargepoint_service.create_chargepoint,
            SYSTEM,
            identity=loaded["chargepoint_identity"],
            company_id=loaded["chargepoint_company_id"],
            name=loaded.get("chargepoint_name"),
            auth_key=loaded.get("chargepoint_auth_key"),
        )
        db.session.commit()
        click.echo(chargepoint.id)

    @app.cli.command("create-token")
    @click.argument("email")
    @click.option("--name", default="cli", help="A name to recognise the token by")
    def create_token_command(email: str, name: str) -> None:
        """Create an API token for a user; prints it once (it is stored only hashed)."""
        user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            _fail(f"No user with email {email}")
        _, clear = issue_token(user, name)
        db.session.commit()
        click.echo(clear)

    @app.cli.command("simulate")
    @click.option(
        "--url",
        default="ws://127.0.0.1:5000/ocpp",
        show_default=True,
        help="The OCPP endpoint, without the identity",
    )
    @click.option(
        "--count",
        type=int,
        default=None,
        help="How many charge points (default: every one without a key)",
    )
    @click.option(
        "--connectors", type=int, default=2, show_default=True, help="Connectors per charge point"
    )
    @click.option(
        "--rate",
        type=float,
        default=0.2,
        show_default=True,
        help="Status changes per second, per charge point",
    )
    @click.option("--duration", type=float, default=None, help="Seconds (default: forever)")
    @click.option("--seed", type=int, default=None, help="Random seed, for a repeatable run")
    @click.option(
        "--meter-interval",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds between the MeterValues of a charging connector",
    )
    def simulate_command(url, count, connectors, rate, duration, seed, meter_interval) -> None:
        """Simulated charge points (the registered ones without an authorization key)
        connect to URL and walk realistic status sequences until interrupted."""
        import asyncio
        import contextlib

        from dashboard.simulator import simulate

        query = (
            select(ChargePoint.identity)
            .where(ChargePoint.auth_key_hash.is_(None))
            .order_by(ChargePoint.identity)
        )
        identities = list(db.session.scalars(query.limit(count)))
        db.session.remove()
        if not identities:
            _fail("No charge point without an authorization key is registered")
        click.echo(
            f"Simulating {len(identities)} charge points × {connectors} connectors against "
            f"{url} (Ctrl-C stops)"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                simulate(
                    url,
                    identities,
                    connectors,
                    rate,
                    duration,
                    seed,
                    meter_interval=meter_interval,
                )
            )

    @app.cli.command("prune")
    def prune_command() -> None:
        """Delete what is older than its retention period: events and webhook delivery
        log rows (EVENTS_RETENTION_DAYS, 7), sampled meter values
        (METER_VALUES_RETENTION_DAYS, 90; transactions stay, with their energy). The web
        workers do this hourly by themselves."""
        from dashboard.services.maintenance import prune

        removed = prune()
        db.session.commit()
        click.echo(
            f"Removed {removed['meter_values']} meter values and {removed['events']} events "
            "older than their retention periods"
        )

    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Fill an empty database with demo companies, users, charge points and connectors."""
        if db.session.scalar(select(ChargePoint.id).limit(1)) is not None:
            click.echo("The database already holds charge points; nothing seeded.")
            return
        seed_demo()
        db.session.commit()
        click.echo(
            "Seeded. Sign in as admin@plugboard.local (superadmin), "
            "ops@voltline.example or ops@greencharge.example (company users); "
            f"password: {DEMO_PASSWORD}"
        )


DEMO_COMPANIES = {
    "Voltline": ("VL", 6, "ops@voltline.example"),
    "GreenCharge": ("GC", 4, "ops@greencharge.example"),
}
DEMO_CONNECTORS = (("Type2", "400", "32"), ("CCS", "920", "200"))


def seed_demo() -> None:
    """Demo data: two companies, a superadmin, a user per company, charge points with two
    connectors each (the simulator's identities: VL-001..., GC-001...)."""
    sync_builtin_roles()
    if db.session.scalar(select(User).where(User.email == "admin@plugboard.local")) is None:
        create_user("admin@plugboard.local", DEMO_PASSWORD, "superadmin", None)
    for company_name, (prefix, count, email) in DEMO_COMPANIES.items():
        company = db.session.scalar(select(Company).where(Company.name == company_name))
        if company is None:
            company = create_company(company_name)
        if db.session.scalar(select(User).where(User.email == email)) is None:
            create_user(email, DEMO_PASSWORD, "company_user", company.id)
        for number in range(1, count + 1):
            identity = f"{prefix}-{number:03d}"
            chargepoint = chargepoint_service.create_chargepoint(
                SYSTEM,
                identity=identity,
                company_id=company.id,
                name=f"{company_name} {number}",
            )
            for connector_id, (kind, volt, amp) in enumerate(DEMO_CONNECTORS, start=1):
                connector_service.create_connector(
                    SYSTEM,
                    connector_id=connector_id,
                    connector_cp_id=chargepoint.id,
                    connector_type=kind,
                    connector_max_volt=Decimal(volt),
                    connector_max_amp=Decimal(amp),
                    source="cli",
                )
