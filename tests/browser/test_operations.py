"""Remote operations from the charge point page, in a real browser, against a charge point
run by the `ocpp` package: each answer shown where it was asked, the configuration read
live and changed in place, and every call in the command log."""

from __future__ import annotations

from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.browser.test_live import ConnectedChargePoint


def test_operations_from_the_charge_point_page(app, page_as, site, live_port, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()
    with ConnectedChargePoint(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A") as charge_point:
        page = page_as("admin@example.com")
        page.goto(f"{site}/chargepoints/{world.cp_a}")
        operations = page.locator("#operations")
        operations.get_by_role("button", name="Soft reset").click()
        expect(operations.locator(f"#answer-ops-{world.cp_a}")).to_contain_text(
            "Charge point answered: Accepted"
        )
        operations.get_by_role("button", name="Send TriggerMessage").click()
        expect(operations.locator(f"#answer-trigger-{world.cp_a}")).to_contain_text("Accepted")
        operations.get_by_label("for the id tag").fill("card-7")
        operations.get_by_role("button", name="RemoteStartTransaction").click()
        expect(operations.locator(f"#answer-start-{world.cp_a}")).to_contain_text("Accepted")

        operations.get_by_role("button", name="Read the configuration").click()
        table = operations.locator("#configuration-table")
        expect(table).to_contain_text("NumberOfConnectors")
        expect(table.locator("tr", has_text="NumberOfConnectors")).to_contain_text("read-only")
        row = table.locator("tr", has_text="HeartbeatInterval")
        row.get_by_label("New value of HeartbeatInterval").fill("120")
        row.get_by_role("button", name="Change").click()
        expect(row.locator("output")).to_contain_text("RebootRequired")

        actions = [action for action, _ in charge_point.session.cp.received]
        assert actions == [
            "Reset",
            "TriggerMessage",
            "RemoteStartTransaction",
            "GetConfiguration",
            "ChangeConfiguration",
        ]
        page.reload()
        log = page.locator("#command-log")
        for action in ("Reset", "TriggerMessage", "GetConfiguration", "ChangeConfiguration"):
            expect(log).to_contain_text(action)
        expect(log).to_contain_text("ui · admin@example.com")


def test_company_users_see_the_command_log_but_no_operations(app, page_as, site, live_port, world):
    with ConnectedChargePoint(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A"):
        page = page_as("a@example.com")
        page.goto(f"{site}/chargepoints/{world.cp_a}")
        expect(page.locator("#command-log")).to_be_visible()
        expect(page.locator("#operations")).to_have_count(0)
