"""Incidents in a real browser: one opens, is counted in the navigation of another open
page, and is acknowledged, without a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.services import incidents
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.browser.test_live import send_statuses


def test_an_incident_appears_live_and_is_acknowledged(app, page_as, site, live_port, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        incidents.set_rule(SYSTEM, "faulted", company_id=None, enabled=True, seconds=1)
        db.session.commit()
    board = page_as("a@example.com")
    with board.expect_websocket(lambda ws: "/live/ws" in ws.url):
        board.goto(f"{site}/incidents")
    expect(board.locator("#incident-table")).to_contain_text("No incident matches")
    lists = page_as("a@example.com")
    with lists.expect_websocket(lambda ws: "/live/ws" in ws.url):
        lists.goto(f"{site}/connectors")
    expect(lists.locator("#nav-incidents")).to_have_text("Incidents")
    board.evaluate("window.notReloaded = true")
    lists.evaluate("window.notReloaded = true")
    send_statuses(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A", [(1, "Faulted", "GroundFailure")])
    # The sweep (every second in the test server) opens it after the 1 s hold-down.
    row = board.locator("#incident-table tbody tr")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row).to_contain_text("Connector Faulted")
    expect(lists.locator("#nav-incidents .count")).to_have_text("1")
    row.get_by_label("Note").fill("Technician on the way")
    row.get_by_role("button", name="Acknowledge").click()
    expect(board.locator("#incident-table tbody tr")).to_contain_text("Technician on the way")
    assert board.evaluate("window.notReloaded") is True
    assert lists.evaluate("window.notReloaded") is True
