"""The dashboard in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import PASSWORD


@pytest.fixture
def connectors(app, world):
    with app.app_context():
        create_connector(
            SYSTEM,
            connector_id=1,
            connector_cp_id=world.cp_a,
            connector_type="CCS",
            connector_status="Charging",
            source="api",
        )
        create_connector(
            SYSTEM, connector_id=2, connector_cp_id=world.cp_a, connector_type="Type2", source="api"
        )
        create_connector(
            SYSTEM, connector_id=1, connector_cp_id=world.cp_b, connector_type="Type2", source="api"
        )
        db.session.commit()


def test_sign_in_and_filter_connectors_changes_the_url(page_as, site, world, connectors):
    page = page_as("admin@example.com")
    page.get_by_role("link", name="Connectors").click()
    page.wait_for_load_state()  # htmx is ready once the page has loaded
    expect(page.locator(f"#connector-{world.cp_b}-1")).to_be_visible()
    page.get_by_label("Status").select_option("Charging")
    expect(page).to_have_url(re.compile(r"status=Charging"))
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_be_visible()
    expect(page.locator(f"#connector-{world.cp_b}-1")).to_have_count(0)
    # The filtered URL can be shared: opened afresh, it shows the same.
    page.goto(page.url)
    expect(page.get_by_label("Status")).to_have_value("Charging")
    expect(page.locator(f"#connector-{world.cp_b}-1")).to_have_count(0)


def test_edit_in_place_with_an_error_then_a_valid_value(page_as, site, world, connectors):
    page = page_as("admin@example.com")
    page.goto(f"{site}/chargepoints/{world.cp_a}")
    row = page.locator(f"#connector-{world.cp_a}-2")
    row.get_by_role("button", name="Edit").click()
    volt = page.locator(f"#connector-{world.cp_a}-2 input[name=connector_max_volt]")
    volt.fill("-230")
    page.locator(f"#connector-{world.cp_a}-2").get_by_role("button", name="Save").click()
    expect(page.locator("#connector_max_volt-error")).to_have_text("Must not be negative.")
    expect(volt).to_have_value("-230")  # what was typed is still there
    volt.fill("230")
    page.locator(f"#connector-{world.cp_a}-2").get_by_role("button", name="Save").click()
    expect(page.locator(f"#connector-{world.cp_a}-2")).to_contain_text("230 V")
    expect(page.locator(f"#connector-{world.cp_a}-2 input")).to_have_count(0)
    page.reload()
    expect(page.locator(f"#connector-{world.cp_a}-2")).to_contain_text("230 V")


def test_delete_asks_for_confirmation(page_as, site, world, connectors):
    page = page_as("admin@example.com")
    page.goto(f"{site}/chargepoints/{world.cp_a}")
    messages = []

    def answer(dialog, accept):
        messages.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.locator(f"#connector-{world.cp_a}-1").get_by_role("button", name="Delete").click()
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_be_visible()
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.locator(f"#connector-{world.cp_a}-1").get_by_role("button", name="Delete").click()
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_have_count(0)
    assert messages == ["Delete connector 1 and its history?"] * 2
    page.reload()
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_have_count(0)


def test_company_user_sees_no_superadmin_controls(page_as, site, world, connectors):
    page = page_as("a@example.com")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    page.goto(f"{site}/chargepoints/{world.cp_a}")
    expect(page.locator(f"#connector-{world.cp_a}-1")).to_be_visible()
    for name in ("Edit", "Delete", "Disable", "Add connector"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    page.goto(f"{site}/connectors")
    expect(page.locator(f"#connector-{world.cp_b}-1")).to_have_count(0)
    expect(page.get_by_label("Company")).to_have_count(0)


def test_filters_sorts_and_pages_never_nest_a_table_in_itself(page_as, site, app, world):
    from dashboard.services.chargepoints import create_chargepoint

    with app.app_context():
        for n in range(30):  # two pages of charge points (25 a page)
            create_chargepoint(SYSTEM, identity=f"EXTRA-{n:02}", company_id=world.company_a)
        db.session.commit()
    page = page_as("admin@example.com")
    page.get_by_label("Connection").select_option("offline")
    expect(page).to_have_url(re.compile(r"connection=offline"))
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    page.get_by_label("Sort by").select_option("name")
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(page.locator("#chargepoint-table")).to_have_count(1)
    expect(page.locator("#chargepoint-table #chargepoint-table")).to_have_count(0)

    page.get_by_role("link", name="Connectors").click()
    page.wait_for_load_state()  # htmx is ready once the page has loaded
    page.get_by_label("Status").select_option("Available")
    expect(page).to_have_url(re.compile(r"status=Available"))
    page.get_by_label("Sort by").select_option("status")
    expect(page).to_have_url(re.compile(r"sort=status"))
    expect(page.locator("#connector-table")).to_have_count(1)
    expect(page.locator("#connector-table #connector-table")).to_have_count(0)


def test_times_are_shown_in_the_browsers_time_zone_with_utc_on_hover(
    chromium, site, world, connectors
):
    context = chromium.new_context(timezone_id="Europe/Helsinki", locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{site}/login")
        page.get_by_label("Email").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{site}/connectors")
        stamp = page.locator("#connector-table time[datetime]").first
        expect(stamp).to_have_attribute("title", re.compile(r"UTC$"))  # exact, on hover
        expect(stamp).to_contain_text("EET")  # the browser's zone (Helsinki, winter)
        expect(stamp).to_contain_text(re.compile(r"· \d+ (s|min) ago"))
    finally:
        context.close()


def test_headers_sort_the_list_and_a_second_click_reverses_it(page_as, site, world, connectors):
    page = page_as("admin@example.com")
    page.get_by_role("link", name="Connectors").click()
    page.wait_for_load_state()  # htmx is ready once the page has loaded
    rows = page.locator("#connector-table tbody tr")
    expect(rows.first).to_have_id(f"connector-{world.cp_a}-1")
    page.locator("#connector-table th").get_by_role("link", name="Charge point").click()
    expect(page).to_have_url(re.compile(r"sort=-chargepoint"))
    expect(rows.first).to_have_id(f"connector-{world.cp_b}-1")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Charge point")
    expect(page.get_by_label("Sort by")).to_have_value("-chargepoint")


def _sideways(page) -> list[tuple[str, int]]:
    """The tables of the page that do not fit their card: (id, pixels too wide)."""
    return page.evaluate(
        """[...document.querySelectorAll('.table-wrap')]
            .filter(wrap => wrap.scrollWidth > wrap.clientWidth)
            .map(wrap => [wrap.querySelector('table')?.id || wrap.id,
                          wrap.scrollWidth - wrap.clientWidth])"""
    )


# A desktop, a laptop, the narrowest table layout, the widest card layout, a tablet held
# sideways, one held upright and a phone.
@pytest.mark.parametrize("width", [1366, 1280, 1081, 1080, 1024, 820, 390])
def test_a_row_being_edited_keeps_save_and_cancel_within_its_card(
    app, page_as, site, world, connectors, width
):
    with app.app_context():  # the longest values a row shows
        create_connector(
            SYSTEM,
            connector_id=3,
            connector_cp_id=world.cp_a,
            connector_type="CHAdeMO",
            connector_status="SuspendedEVSE",
            connector_error_code="EVCommunicationError",
            connector_max_volt=1000,
            connector_max_amp=500,
            source="api",
        )
        db.session.commit()
    page = page_as("admin@example.com")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{site}/connectors")
    assert _sideways(page) == []
    # A narrower table (the charge points) stays one on tablets; only phones get cards.
    page.goto(f"{site}/")
    assert _sideways(page) == []
    header = page.locator("#chargepoint-table thead")
    if width > 760:
        expect(header).to_be_visible()
    else:
        expect(header).to_be_hidden()
    page.goto(f"{site}/chargepoints/{world.cp_a}")
    assert _sideways(page) == []
    row = page.locator(f"#connector-{world.cp_a}-3")
    row.get_by_role("button", name="Edit").click()
    expect(row.locator("input[name=connector_max_volt]")).to_have_value("1000")
    assert _sideways(page) == []
    card = page.locator("#connectors-of-chargepoint").bounding_box()
    for name in ("Save", "Cancel"):
        box = row.get_by_role("button", name=name).bounding_box()
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
