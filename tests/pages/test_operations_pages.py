"""The remote operations forms: only superadmins act (a company user gets 403 on a charge
point of their company, 404 on any other); bad values and an offline charge point are
answered in place, never a 500."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM

FORMS = [
    ("reset", {"type": "Soft"}),
    ("clear-cache", {}),
    ("trigger", {"requested_message": "StatusNotification"}),
    ("configuration", {"key": "HeartbeatInterval", "value": "60"}),
    ("remote-start", {"connector_id": "1", "id_tag": "card"}),
    ("data-transfer", {"vendor_id": "com.acme", "data": "x"}),
]


@pytest.fixture
def plugs(app, world):
    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            create_connector(SYSTEM, connector_id=1, connector_cp_id=cp_id, source="api")
        db.session.commit()


def post(browser, path, data):
    return browser.client.post(path, data=data, headers={"X-CSRFToken": browser.csrf("/")})


@pytest.mark.parametrize(("path", "data"), FORMS)
def test_company_users_cannot_act(as_user, world, plugs, path, data):
    browser = as_user("a@example.com")
    assert post(browser, f"/chargepoints/{world.cp_a}/{path}", data).status_code == 403
    assert post(browser, f"/chargepoints/{world.cp_b}/{path}", data).status_code == 404


@pytest.mark.parametrize(("path", "data"), FORMS)
def test_an_offline_charge_point_is_answered_in_place(as_user, world, plugs, path, data):
    response = post(as_user("admin@example.com"), f"/chargepoints/{world.cp_a}/{path}", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<output" in page and "offline" in page


@pytest.mark.parametrize(
    ("path", "data", "says"),
    [
        ("reset", {"type": "Medium"}, "type"),
        ("trigger", {"requested_message": "Coffee"}, "requested_message"),
        ("configuration", {"key": "", "value": "1"}, "key"),
        ("remote-start", {"connector_id": "x", "id_tag": "card"}, "connector_id"),
        ("remote-start", {"connector_id": "1", "id_tag": "x" * 21}, "id_tag"),
        ("data-transfer", {"vendor_id": ""}, "vendor_id"),
    ],
)
def test_bad_values_are_answered_in_place(as_user, world, plugs, path, data, says):
    response = post(as_user("admin@example.com"), f"/chargepoints/{world.cp_a}/{path}", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="error"' in page and says in page


def test_remote_stop_of_a_session_not_going_on(as_user, world):
    response = post(as_user("admin@example.com"), "/transactions/999/remote-stop", {})
    assert response.status_code == 404
