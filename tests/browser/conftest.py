"""Browser tests: Playwright driving Debian's Chromium against the app served by gunicorn
(on SQLite: what a browser sees does not depend on the database)."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(params=["sqlite"])
def backend(request) -> str:
    """Browser tests run on SQLite only."""
    return request.param


@pytest.fixture(scope="package")
def chromium():
    """One Chromium for the browser tests. Playwright's sync API runs an event loop in this
    thread while it lives: it must be gone before other tests call asyncio.run()."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(live_port) -> str:
    """The base URL of the served app."""
    return f"http://127.0.0.1:{live_port}"


@pytest.fixture
def page_as(chromium, site):
    """`page_as("admin@example.com")`: a new browser context, signed in."""
    contexts = []

    def sign_in(email: str):
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{site}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{site}/")
        return page

    yield sign_in
    for context in contexts:
        context.close()
