"""The flask commands: companies, users, charge points, tokens, demo data."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import ApiToken, ChargePoint, Company, Connector, User


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_create_company_prints_id(app):
    result = invoke(app, "create-company", "Acme")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Company, int(result.output)).name == "Acme"


def test_create_company_twice_fails_clearly(app):
    invoke(app, "create-company", "Acme")
    result = invoke(app, "create-company", "Acme")
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_create_user_and_token(app, client):
    company_id = invoke(app, "create-company", "Acme").output.strip()
    result = invoke(
        app,
        "create-user",
        "Ops@Acme.example",
        "--password",
        "long enough",
        "--role",
        "company_user",
        "--company",
        company_id,
    )
    assert result.exit_code == 0, result.output
    token = invoke(app, "create-token", "ops@acme.example", "--name", "script").output.strip()
    assert token.startswith("pb_")
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "ops@acme.example"))
        assert user.check_password("long enough") and user.role.name == "company_user"
        stored = db.session.scalar(db.select(ApiToken))
        assert stored.name == "script" and token not in stored.token_hash
    response = client.get("/api/v1/chargepoints", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_company_user_needs_company(app):
    result = invoke(
        app, "create-user", "x@y.example", "--password", "long enough", "--role", "company_user"
    )
    assert result.exit_code == 1
    assert "needs a company" in result.output


def test_create_chargepoint_prints_id_and_validates(app):
    company_id = invoke(app, "create-company", "Acme").output.strip()
    result = invoke(
        app,
        "create-chargepoint",
        "CP-9",
        "--company",
        company_id,
        "--name",
        "Nine",
        "--auth-key",
        "ab" * 20,
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        cp = db.session.get(ChargePoint, int(result.output))
        assert (cp.identity, cp.name, cp.has_auth_key) == ("CP-9", "Nine", True)
    bad = invoke(app, "create-chargepoint", "bad id", "--company", company_id)
    assert bad.exit_code == 1 and "chargepoint_identity" in bad.output
    dup = invoke(app, "create-chargepoint", "CP-9", "--company", company_id)
    assert dup.exit_code == 1 and "already exists" in dup.output
    nobody = invoke(app, "create-chargepoint", "CP-10", "--company", "999")
    assert nobody.exit_code == 1 and "Company 999 not found" in nobody.output


def test_seed_demo_fills_once(app):
    first = invoke(app, "seed-demo")
    assert first.exit_code == 0 and "admin@plugboard.local" in first.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ChargePoint)) == 10
        assert db.session.scalar(db.select(db.func.count()).select_from(Connector)) == 20
    second = invoke(app, "seed-demo")
    assert second.exit_code == 0 and "nothing seeded" in second.output


def test_prune_removes_old_meter_values_and_keeps_transactions(app, world):
    from datetime import timedelta

    from dashboard.extensions import db
    from dashboard.models import ChargePoint, MeterValue, Transaction
    from dashboard.models.types import utcnow
    from dashboard.services import charging

    with app.app_context():
        cp = db.session.get(ChargePoint, world.cp_a)
        tx, _ = charging.start_transaction(
            cp, connector_id=1, id_tag="t", meter_start=0, timestamp=utcnow()
        )
        charging.record_meter_values(cp.id, 1, tx.id, [(utcnow(), [{"value": "5"}])] * 3)
        db.session.flush()
        old = db.session.scalars(db.select(MeterValue)).all()[:2]
        for sample in old:
            sample.received = utcnow() - timedelta(days=91)
        db.session.commit()
    with app.app_context():  # the events so far are made 8 days old; one new comes after
        from dashboard.models import OutboxEvent

        old_events = db.session.query(OutboxEvent).count()
        assert old_events >= 1  # the transaction's start
        for event in db.session.query(OutboxEvent):
            event.created = utcnow() - timedelta(days=8)
        db.session.add(OutboxEvent(type="connector.updated", data="{}", created=utcnow()))
        db.session.commit()
    result = invoke(app, "prune")
    assert result.exit_code == 0
    assert f"Removed 2 meter values and {old_events} events older than" in result.output
    with app.app_context():
        assert db.session.query(MeterValue).count() == 1
        assert db.session.query(Transaction).count() == 1
        assert db.session.query(OutboxEvent).count() == 1
