"""A browser-like client: it reads the CSRF token from the pages, as a browser's forms do."""

from __future__ import annotations

import re

import pytest

from dashboard.extensions import limiter
from tests.conftest import PASSWORD

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    def __init__(self, client):
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        return TOKEN.search(self.client.get(path).get_data(as_text=True)).group(1)

    def login(self, email: str, password: str = PASSWORD, **extra):
        data = {"email": email, "password": password, "csrf_token": self.csrf(), **extra}
        return self.client.post("/login", data=data)

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def text(self, path, **kwargs) -> str:
        response = self.client.get(path, **kwargs)
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)


@pytest.fixture
def browser(app, world):
    """A signed-out browser on `app` (the world exists; rate limits start afresh)."""
    limiter.reset()
    return Browser(app.test_client())


@pytest.fixture
def as_user(app, browser):
    """`as_user("admin@example.com")`: a browser of its own, signed in."""

    def sign_in(email: str) -> Browser:
        browser = Browser(app.test_client())
        response = browser.login(email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return browser

    return sign_in
