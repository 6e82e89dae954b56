"""Live updates in a real browser: a charge point's StatusNotification moves the badge of
an open page, without a reload."""

from __future__ import annotations

import asyncio
import threading

from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.ocpp.conftest import Session, open_socket


def send_statuses(ws_url: str, identity: str, statuses: list[tuple[int, str]]) -> None:
    """Boot `identity` and send its statuses, from a thread of its own (Playwright's sync
    API holds this thread's event loop)."""

    async def scenario():
        async with open_socket(ws_url, identity) as ws:
            session = Session(ws, identity)
            await session.boot()
            for connector_id, status in statuses:
                await session.status(connector_id, status)
            await session.stop()

    errors = []
    thread = threading.Thread(target=lambda: _run(scenario, errors))
    thread.start()
    thread.join(30)
    assert not errors, errors


def _run(scenario, errors):
    try:
        asyncio.run(asyncio.wait_for(scenario(), 25))
    except Exception as exc:  # reported by the caller
        errors.append(exc)


def test_badge_changes_without_reload(app, page_as, site, live_port, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_b, source="api")
        db.session.commit()
    page = page_as("admin@example.com")
    with page.expect_websocket(lambda ws: "/live/ws" in ws.url):
        page.goto(f"{site}/connectors")
    row = page.locator(f"#connector-{world.cp_a}-1")
    expect(row.locator(".badge")).to_have_text("Available")
    page.evaluate("window.notReloaded = true")
    send_statuses(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A", [(1, "Charging")])
    expect(row.locator(".badge")).to_have_text("Charging")
    assert page.evaluate("window.notReloaded") is True
    # The row looks the same live as after a reload.
    live_html = row.inner_html()
    page.reload()
    assert page.locator(f"#connector-{world.cp_a}-1").inner_html() == live_html


def test_company_user_page_ignores_other_companies(app, page_as, site, live_port, world):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()
    page = page_as("b@example.com")
    received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: received.append(frame)))
    page.goto(f"{site}/connectors")
    page.wait_for_timeout(500)
    send_statuses(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A", [(1, "Charging")])
    page.wait_for_timeout(1000)
    assert received == []
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_have_count(0)
