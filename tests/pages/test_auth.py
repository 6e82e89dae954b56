"""Signing in and out."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.pages.conftest import Browser


def test_pages_need_sign_in(browser):
    response = browser.get("/connectors?status=Charging")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_sign_in_and_back_to_where_you_were(browser):
    response = browser.client.post(
        "/login?next=/connectors",
        data={"email": "A@Example.com", "password": PASSWORD, "csrf_token": browser.csrf()},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/connectors"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "javascript:x"])
def test_next_never_leaves_the_site(browser, target):
    response = browser.client.post(
        f"/login?next={target}",
        data={"email": "a@example.com", "password": PASSWORD, "csrf_token": browser.csrf()},
    )
    assert response.headers["Location"] == "/"


def test_wrong_password_says_so_and_keeps_the_email(browser):
    response = browser.login("a@example.com", "not the password")
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Wrong email or password." in page
    assert 'value="a@example.com"' in page
    assert "not the password" not in page


def test_unknown_account_reads_like_a_wrong_password(browser):
    page = browser.login("nobody@example.com").get_data(as_text=True)
    assert "Wrong email or password." in page


def test_deactivated_user_cannot_sign_in(app, browser, world):
    from dashboard.extensions import db
    from dashboard.models import User

    with app.app_context():
        db.session.get(User, world.user_a).active = False
        db.session.commit()
    assert browser.login("a@example.com").status_code == 401


def test_sign_in_without_csrf_token_is_refused(browser):
    response = browser.client.post("/login", data={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


def test_failed_attempts_are_limited_per_account_and_address(app, browser):
    for _ in range(5):
        assert browser.login("a@example.com", "wrong").status_code == 401
    response = browser.login("a@example.com")  # from this address, even the right password
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert browser.login("b@example.com").status_code == 302  # other accounts are fine
    # Whoever failed from there cannot lock the owner out: from elsewhere, it signs in.
    elsewhere = Browser(app.test_client())
    elsewhere.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert elsewhere.login("a@example.com").status_code == 302


def test_successful_sign_ins_do_not_count(browser):
    for _ in range(7):
        assert browser.login("a@example.com").status_code == 302
        browser.client.post("/logout", data={"csrf_token": browser.csrf("/")})


def test_remember_me_sets_a_cookie(browser):
    response = browser.login("a@example.com", remember="y")
    cookies = response.headers.getlist("Set-Cookie")
    remember = [c for c in cookies if c.startswith("remember_token=")]
    assert remember and "HttpOnly" in remember[0] and "SameSite=Lax" in remember[0]


def test_session_cookie_is_httponly_and_samesite(browser):
    cookie = [
        c
        for c in browser.login("a@example.com").headers.getlist("Set-Cookie")
        if c.startswith("session=")
    ][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out_needs_post_with_csrf(as_user):
    browser = as_user("a@example.com")
    assert browser.get("/logout").status_code == 405
    assert browser.client.post("/logout").status_code == 400
    response = browser.client.post("/logout", data={"csrf_token": browser.csrf("/")})
    assert response.status_code == 302
    assert browser.get("/").status_code == 302  # signed out


def test_a_form_field_with_a_nul_character_is_refused_whole(browser):
    response = browser.login("a\x00@example.com")
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)


def test_the_limiter_skips_the_websocket_handshakes_only(app):
    """No limit applies to the handshakes of charge points and browsers: the limiter is
    spared its search for one (the sign-in limits above still hold)."""
    from dashboard.extensions import _unlimited

    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    cases = (("/ocpp/CP-1", True), ("/live/ws", True), ("/login", False), ("/", False))
    for path, skipped in cases:
        with app.test_request_context(path, headers=upgrade if skipped else {}):
            assert _unlimited() is skipped, path
