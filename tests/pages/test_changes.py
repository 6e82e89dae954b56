"""Changes from the charge point page (superadmin): add, edit in place, enable / disable,
delete, with errors beside the fields; and the connector's history page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Connector, ConnectorStatusHistory
from dashboard.services.connectors import create_connector, status_share
from dashboard.services.permissions import SYSTEM

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(as_user):
    return as_user("admin@example.com")


@pytest.fixture
def connector_1(app, world):
    with app.app_context():
        create_connector(
            SYSTEM,
            connector_id=1,
            connector_cp_id=world.cp_a,
            connector_type="CCS",
            connector_max_volt="400",
            source="api",
        )
        db.session.commit()


def post(browser, path, data, **kwargs):
    token = browser.csrf("/")
    return browser.client.post(path, data=data, headers={"X-CSRFToken": token, **kwargs})


def stored(app, cp_id, n):
    with app.app_context():
        return db.session.get(Connector, (n, cp_id))


def test_add_connector_with_a_form(app, admin, world):
    response = post(
        admin,
        f"/chargepoints/{world.cp_a}/connectors",
        {
            "connector_id": "3",
            "connector_type": "Type2",
            "connector_max_volt": "230",
            "connector_max_amp": "32.5",
            "connector_status": "Available",
            "connector_enabled_shown": "1",
            "connector_enabled": "on",
        },
    )
    assert response.status_code == 302
    connector = stored(app, world.cp_a, 3)
    assert (connector.connector_type, connector.connector_max_amp) == ("Type2", Decimal("32.5"))
    assert "Connector 3 added." in admin.text(f"/chargepoints/{world.cp_a}")
    with app.app_context():
        row = db.session.scalar(select(ConnectorStatusHistory))
        assert (row.source, row.user_id) == ("ui", world.admin)


def test_add_connector_errors_beside_fields_keep_what_was_typed(admin, world, connector_1):
    response = post(
        admin,
        f"/chargepoints/{world.cp_a}/connectors",
        {
            "connector_id": "zero",
            "connector_type": "Type2",
            "connector_max_volt": "-3",
            "connector_enabled_shown": "1",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="connector_id-error"' in page and 'id="connector_max_volt-error"' in page
    assert "Must not be negative." in page
    assert 'value="zero"' in page and 'value="Type2"' in page and 'value="-3"' in page


def test_add_duplicate_number_says_so(admin, world, connector_1):
    response = post(admin, f"/chargepoints/{world.cp_a}/connectors", {"connector_id": "1"})
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_edit_in_place_round_trip(app, admin, world, connector_1):
    base = f"/chargepoints/{world.cp_a}/connectors/1"
    form_row = admin.text(f"{base}/edit", headers=HX)
    assert form_row.lstrip().startswith(f'<tr id="connector-{world.cp_a}-1" class="editing"')
    assert 'name="connector_max_volt" value="400"' in form_row
    bad = post(
        admin,
        base,
        {
            "connector_type": "CCS",
            "connector_max_volt": "abc",
            "connector_max_amp": "",
            "connector_status": "Charging",
            "connector_error_code": "NoError",
            "connector_enabled_shown": "1",
            "connector_enabled": "on",
        },
    )
    assert bad.status_code == 422
    assert 'value="abc"' in bad.get_data(as_text=True)
    assert stored(app, world.cp_a, 1).connector_status == "Available"  # nothing saved
    good = post(
        admin,
        base,
        {
            "connector_type": "CCS",
            "connector_max_volt": "920",
            "connector_max_amp": "200",
            "connector_status": "Charging",
            "connector_error_code": "NoError",
            "connector_enabled_shown": "1",
            "connector_enabled": "on",
        },
    )
    assert good.status_code == 200 and "status-charging" in good.get_data(as_text=True)
    connector = stored(app, world.cp_a, 1)
    assert (connector.connector_status, connector.connector_max_volt) == ("Charging", 920)
    assert "status-charging" in admin.text(f"{base}/row", headers=HX)


def test_toggle_and_delete(app, admin, world, connector_1):
    base = f"/chargepoints/{world.cp_a}/connectors/1"
    assert "Enable" in post(admin, f"{base}/enabled", {}).get_data(as_text=True)
    assert stored(app, world.cp_a, 1).connector_enabled is False
    token = admin.csrf("/")
    response = admin.client.delete(base, headers={"X-CSRFToken": token, **HX})
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    assert stored(app, world.cp_a, 1) is None


def test_changes_need_csrf(admin, world, connector_1):
    response = admin.client.post(f"/chargepoints/{world.cp_a}/connectors/1/enabled")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "method, suffix",
    [
        ("post", "/connectors"),
        ("post", "/connectors/1"),
        ("post", "/connectors/1/enabled"),
        ("delete", "/connectors/1"),
        ("get", "/connectors/1/edit"),
    ],
)
def test_company_user_may_not_change(as_user, world, connector_1, method, suffix):
    browser = as_user("a@example.com")
    token = browser.csrf("/")
    response = browser.client.open(
        f"/chargepoints/{world.cp_a}{suffix}",
        method=method.upper(),
        data={"connector_id": "2"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 403


def test_company_user_sees_no_controls(as_user, world, connector_1):
    page = as_user("a@example.com").text(f"/chargepoints/{world.cp_a}")
    for control in ("Add a connector", ">Edit<", ">Delete<", "hx-post", "hx-delete"):
        assert control not in page
    admin_page = as_user("admin@example.com").text(f"/chargepoints/{world.cp_a}")
    assert "Add a connector" in admin_page and ">Delete<" in admin_page


def test_commands_offline_say_so(admin, world, connector_1):
    response = post(admin, f"/chargepoints/{world.cp_a}/connectors/1/unlock", {})
    assert "Charge point CP-A is offline" in response.get_data(as_text=True)


def test_connector_page_history_and_share(app, admin, world, connector_1):
    base = f"/chargepoints/{world.cp_a}/connectors/1"
    post(admin, base, {"connector_status": "Charging", "connector_error_code": "NoError"})
    post(admin, base, {"connector_status": "Reserved", "connector_error_code": "NoError"})
    page = admin.text(base)
    assert page.count('<tr id="history-') == 3
    assert "unexpected" in page  # Charging → Reserved
    assert "admin@example.com" in page
    assert 'id="timeline"' in page and 'class="fill-reserved"' in page
    assert admin.get(f"/chargepoints/{world.cp_a}/connectors/9").status_code == 404


def test_connector_page_hidden_from_other_company(as_user, world, connector_1):
    response = as_user("b@example.com").get(f"/chargepoints/{world.cp_a}/connectors/1")
    assert response.status_code == 404


def test_status_share_adds_up_over_the_period(app, world):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with app.app_context():
        from dashboard.services.connectors import apply_status

        connector = create_connector(
            SYSTEM, connector_id=5, connector_cp_id=world.cp_a, source="api"
        )
        history = db.session.scalar(select(ConnectorStatusHistory))
        history.event_time = start  # created at the start of the period
        for minutes, status in ((15, "Charging"), (45, "Available")):
            apply_status(
                connector,
                status=status,
                error_code="NoError",
                source="ocpp",
                event_time=start + timedelta(minutes=minutes),
            )
        db.session.commit()
        share = status_share(SYSTEM, world.cp_a, 5, since=start, until=start + timedelta(hours=1))
    assert share == {"Available": pytest.approx(0.25 + 0.25), "Charging": pytest.approx(0.5)}
