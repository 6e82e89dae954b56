"""Every page, at a desktop's and a phone's size, as a superadmin and as a company user:
axe-core finds no serious or critical violation, and every list keeps the status and the
actions of its rows on screen (no scrolling sideways). Screenshots of each are kept in
the test's temporary folder, for people to look at."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dashboard.extensions import db
from dashboard.models import Incident, WebhookDelivery, WebhookEndpoint
from dashboard.models.types import utcnow
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import PASSWORD

AXE = Path(__file__).parent / "vendor/axe-core-4.14.1/axe.min.js"
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def furnished(app, world):
    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            for number, status in enumerate(
                (
                    "Available",
                    "Preparing",
                    "Charging",
                    "SuspendedEV",
                    "SuspendedEVSE",
                    "Finishing",
                    "Reserved",
                    "Unavailable",
                    "Faulted",
                ),
                start=1,
            ):
                create_connector(
                    SYSTEM,
                    connector_id=number,
                    connector_cp_id=cp_id,
                    connector_status=status,
                    connector_type="Type2",
                    connector_max_volt="400",
                    connector_max_amp="32",
                    source="api",
                )
        # An incident of each kind, one acknowledged and one resolved; a webhook endpoint
        # with a delivery that failed and one that went through.
        now = utcnow()
        for number, (kind, state) in enumerate(
            (
                ("faulted", "open"),
                ("offline", "open"),
                ("unavailable", "resolved"),
                ("flapping", "open"),
            ),
            start=1,
        ):
            db.session.add(
                Incident(
                    kind=kind,
                    state=state,
                    subject=f"{world.cp_a}/{number}",
                    company_id=world.company_a,
                    cp_id=world.cp_a,
                    connector_id=number if kind in ("faulted", "unavailable") else None,
                    error_code="GroundFailure" if kind == "faulted" else None,
                    since=now - timedelta(minutes=30 * number),
                    opened_at=now - timedelta(minutes=25 * number),
                    resolved_at=now if state == "resolved" else None,
                    acknowledged_at=now if kind == "offline" else None,
                    acknowledged_by_id=world.user_a if kind == "offline" else None,
                    acknowledgement_note="Technician on the way" if kind == "offline" else None,
                )
            )
        endpoint = WebhookEndpoint(
            company_id=world.company_a,
            url="https://hooks.example.com/plugboard/events",
            event_types=["connector.status_changed", "incident.opened"],
            secret="whsec_" + "A" * 43 + "=",
            cursor=0,
        )
        db.session.add(endpoint)
        db.session.flush()
        for attempt, code in ((1, 500), (2, 200)):
            db.session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=1,
                    event_type="connector.status_changed",
                    attempt=attempt,
                    status_code=code,
                    succeeded=code == 200,
                    error=None if code == 200 else "HTTP 500",
                    response_excerpt="ok" if code == 200 else "Internal Server Error",
                    duration_ms=12,
                )
            )
        db.session.commit()
        return endpoint.id


def _pages(world, superadmin: bool, endpoint_id: int) -> list[str]:
    pages = [
        "/",
        "/connectors",
        f"/chargepoints/{world.cp_a}",
        f"/chargepoints/{world.cp_a}/connectors/3",
        "/incidents",
        "/incidents?state=all",
        "/webhooks",
        f"/webhooks/{endpoint_id}",
        "/reports",
        f"/reports?cp={world.cp_a}&port=3",
        "/api/v1/docs",
    ]
    if superadmin:
        pages += [
            "/incidents/rules",
            "/admin/companies",
            "/admin/users",
            f"/admin/users/{world.user_a}",
            "/admin/chargepoints",
            "/admin/tokens",
        ]
    return pages


def _serious_violations(page) -> list:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """axe.run(document).then(result => result.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' ')).slice(0, 3)]))"""
    )


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("email", ["admin@example.com", "a@example.com"])
def test_every_page_is_accessible_and_keeps_status_and_actions_on_screen(
    chromium, site, world, furnished, size, email, tmp_path
):
    width, height = SIZES[size]
    # Injecting axe needs the page's Content-Security-Policy lifted, in this context only.
    context = chromium.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{site}/login")
        assert _serious_violations(page) == [], "/login"
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{site}/")
        for path in _pages(world, email.startswith("admin"), furnished):
            page.goto(site + path)
            assert _serious_violations(page) == [], path
            name = path.strip("/").replace("/", "_").replace("?", "_") or "overview"
            page.screenshot(path=str(tmp_path / f"{name}-{size}.png"), full_page=True)
            # Nothing on the page is wider than the screen: no sideways scrolling.
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
            for badge in page.locator("td.status-col .badge").all()[:3]:
                box = badge.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, path
            for button in page.locator("td.row-actions button").all()[:6]:
                box = button.bounding_box()
                card = page.locator(".table-wrap").first.bounding_box()
                assert box["x"] + box["width"] <= card["x"] + card["width"], path
    finally:
        context.close()
