"""Sessions end when they should: at sign-out and at a new password, on every device,
remember cookies included; each sign-in gets a remember cookie of its own; a sign-in as an
unknown account takes as long as one as a known account."""

from __future__ import annotations

import statistics
import time

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import User
from dashboard.services import accounts
from tests.conftest import TEST_CONFIG
from tests.pages.conftest import Browser


def _remember_cookie(response) -> str:
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    return cookie[0].split(";")[0].split("=", 1)[1]


def _with_remember_cookie(app, value: str) -> Browser:
    """A new browser that holds only a remember cookie (its session ended)."""
    browser = Browser(app.test_client())
    browser.client.set_cookie("remember_token", value, domain="localhost")
    return browser


def test_sign_out_ends_every_session_and_remember_cookie(app, world):
    laptop, phone = Browser(app.test_client()), Browser(app.test_client())
    remembered = _remember_cookie(laptop.login("a@example.com", remember="y"))
    phone.login("a@example.com")
    stolen_session = laptop.client.get_cookie("session").value
    assert _with_remember_cookie(app, remembered).get("/").status_code == 200

    laptop.client.post("/logout", data={"csrf_token": laptop.csrf("/")})

    assert phone.get("/").status_code == 302  # the other device is signed out too
    replay = Browser(app.test_client())
    replay.client.set_cookie("session", stolen_session, domain="localhost")
    assert replay.get("/").status_code == 302  # the old session cookie opens nothing
    assert _with_remember_cookie(app, remembered).get("/").status_code == 302


def test_a_new_password_ends_every_session(app, world):
    browser = Browser(app.test_client())
    remembered = _remember_cookie(browser.login("a@example.com", remember="y"))
    with app.app_context():
        admin = db.session.get(User, world.admin)
        accounts.reset_password(admin, world.user_a, "a brand new password")
        db.session.commit()
    assert browser.get("/").status_code == 302
    assert _with_remember_cookie(app, remembered).get("/").status_code == 302
    assert browser.login("a@example.com", "a brand new password").status_code == 302


def test_each_sign_in_gets_its_own_remember_cookie(app, world):
    first = _remember_cookie(Browser(app.test_client()).login("a@example.com", remember="y"))
    second = _remember_cookie(Browser(app.test_client()).login("a@example.com", remember="y"))
    assert first != second
    for value in (first, second):  # both stay valid until the user signs out
        assert _with_remember_cookie(app, value).get("/").status_code == 200


def test_a_deactivated_user_is_signed_out_at_once(app, world):
    browser = Browser(app.test_client())
    browser.login("a@example.com")
    with app.app_context():
        db.session.get(User, world.user_a).active = False
        db.session.commit()
    assert browser.get("/").status_code == 302


def test_remember_cookie_is_secure_when_the_session_cookie_is(monkeypatch):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_unknown_and_known_accounts_take_as_long_to_refuse(app, world):
    # A hash of realistic cost, so that its absence would show (about 30 ms here).
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:100000"
    with app.app_context():
        user = db.session.get(User, world.user_a)
        user.set_password(TEST_CONFIG["SECRET_KEY"] + " password")
        db.session.commit()
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = app.config["LOGIN_LIMIT_PER_ADDRESS"] = "1000/minute"
    browser = Browser(app.test_client())
    token = browser.csrf()

    def refusal_time(email: str) -> float:
        start = time.perf_counter()
        response = browser.client.post(
            "/login", data={"email": email, "password": "wrong", "csrf_token": token}
        )
        assert response.status_code == 401
        return time.perf_counter() - start

    with app.app_context():
        db.session.get(User, world.user_b).active = False
        db.session.commit()
    # The three kinds in turn, round after round, so that a slow spell of the machine
    # weighs on each alike.
    emails = ("a@example.com", "nobody@example.com", "b@example.com")
    rounds = [[refusal_time(email) for email in emails] for _ in range(9)]
    known, unknown, inactive = (statistics.median(times) for times in zip(*rounds, strict=True))
    assert unknown > 0.6 * known and inactive > 0.6 * known, (known, unknown, inactive)
