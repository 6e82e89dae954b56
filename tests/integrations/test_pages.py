"""The incidents and webhooks pages, as a signed-in user sees them."""

from __future__ import annotations

import re
from datetime import timedelta

from dashboard.extensions import db, limiter
from dashboard.models import Incident
from dashboard.models.types import utcnow
from tests.conftest import PASSWORD
from tests.integrations.receiver import Receiver
from tests.integrations.test_incidents import open_faults
from tests.pages.conftest import TOKEN


def _signed_in(app, email):
    limiter.reset()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code in (302, 303)
    return client, token


def test_the_incidents_page_shows_and_acknowledges_a_company_s_own(app, world):
    open_faults(app, world)
    client, token = _signed_in(app, "a@example.com")
    page = client.get("/incidents").get_data(as_text=True)
    assert "GroundFailure" in page and "OverVoltage" not in page
    assert 'aria-label="1 open"' in page  # the navigation's count
    with app.app_context():
        mine = db.session.scalar(db.select(Incident).where(Incident.cp_id == world.cp_a))
        theirs = db.session.scalar(db.select(Incident).where(Incident.cp_id == world.cp_b))
    refused = client.post(
        f"/incidents/{mine.id}/acknowledge", data={"note": "x" * 501, "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "At most 500 characters." in refused.get_data(as_text=True)
    assert 'value="' + "x" * 501 in refused.get_data(as_text=True)  # what was typed stays
    done = client.post(
        f"/incidents/{mine.id}/acknowledge", data={"note": "On it", "csrf_token": token}
    )
    assert done.status_code == 200 and "a@example.com" in done.get_data(as_text=True)
    other = client.post(
        f"/incidents/{theirs.id}/acknowledge", data={"note": "x", "csrf_token": token}
    )
    assert other.status_code == 404
    cp_page = client.get(f"/chargepoints/{world.cp_a}").get_data(as_text=True)
    assert 'id="recent-incidents"' in cp_page and "faulted" in cp_page
    # The incidents have a card of their own, before the connectors' heading and table.
    assert (
        cp_page.index('id="recent-incidents"')
        < cp_page.index("<h2>Connectors</h2>")
        < cp_page.index('id="connectors-of-chargepoint"')
    )
    assert client.get("/incidents/rules").status_code == 403


def test_superadmins_set_the_rules(app, world):
    client, token = _signed_in(app, "admin@example.com")
    assert client.get("/incidents/rules").status_code == 200
    saved = client.post(
        "/incidents/rules",
        data={"kind": "faulted", "enabled": "1", "minutes": "5", "csrf_token": token},
    )
    assert saved.status_code == 303
    bad = client.post(
        "/incidents/rules",
        data={"kind": "faulted", "enabled": "1", "minutes": "soon", "csrf_token": token},
    )
    assert bad.status_code == 422 and "A number of minutes." in bad.get_data(as_text=True)
    page = client.get("/incidents/rules").get_data(as_text=True)
    assert 'id="minutes-default-faulted" name="minutes" inputmode="decimal" value="5"' in page


def test_the_webhooks_page_shows_the_secret_once_and_the_delivery_log(app, world):
    receiver = Receiver()
    try:
        client, token = _signed_in(app, "a@example.com")
        bad = client.post("/webhooks", data={"url": "http://10.0.0.1/x", "csrf_token": token})
        assert bad.status_code == 422 and "private" in bad.get_data(as_text=True)
        assert 'value="http://10.0.0.1/x"' in bad.get_data(as_text=True)
        added = client.post(
            "/webhooks",
            data={
                "url": receiver.url,
                "event_types": ["incident.opened"],
                "csrf_token": token,
            },
        )
        assert added.status_code == 201
        secret = re.search(
            r'id="new-secret" class="mono">(whsec_[^<]+)<', added.get_data(as_text=True)
        )
        assert secret
        listed = client.get("/webhooks").get_data(as_text=True)
        assert receiver.url in listed and secret.group(1) not in listed
        other, _ = _signed_in(app, "b@example.com")
        assert receiver.url not in other.get("/webhooks").get_data(as_text=True)
    finally:
        receiver.stop()


def test_old_incident_rows_do_not_leak_into_other_companies_counts(app, world):
    with app.app_context():
        db.session.add(
            Incident(
                kind="offline",
                state="open",
                subject=str(world.cp_b),
                company_id=world.company_b,
                cp_id=world.cp_b,
                since=utcnow() - timedelta(hours=1),
                opened_at=utcnow(),
            )
        )
        db.session.commit()
    client, _ = _signed_in(app, "a@example.com")
    assert 'aria-label="1 open"' not in client.get("/").get_data(as_text=True)
    admin, _ = _signed_in(app, "admin@example.com")
    assert 'aria-label="1 open"' in admin.get("/").get_data(as_text=True)
