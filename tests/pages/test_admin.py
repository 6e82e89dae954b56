"""Administration: superadmin only; companies, users, charge points, tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import ApiToken, ChargePoint, Company, User


@pytest.fixture
def admin(as_user):
    return as_user("admin@example.com")


def post(browser, path, data):
    return browser.client.post(path, data={"csrf_token": browser.csrf("/"), **data})


@pytest.mark.parametrize(
    "path",
    ["/admin/companies", "/admin/users", "/admin/users/1", "/admin/chargepoints", "/admin/tokens"],
)
def test_company_users_get_403(as_user, path):
    browser = as_user("a@example.com")
    assert browser.get(path).status_code == 403
    assert post(browser, path, {"name": "x"}).status_code == 403
    assert "Administration" not in browser.text("/")


def test_create_company_and_refuse_duplicate(app, admin):
    assert post(admin, "/admin/companies", {"name": "Acme"}).status_code == 302
    response = post(admin, "/admin/companies", {"name": "Acme"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="name-error"' in page and 'value="Acme"' in page
    with app.app_context():
        assert db.session.scalar(select(Company).where(Company.name == "Acme")) is not None


def test_create_user_errors_keep_input_but_not_password(admin, world):
    response = post(
        admin,
        "/admin/users",
        {"email": "new@example.com", "password": "short", "role": "company_user", "company_id": ""},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="new@example.com"' in page and "short" not in page
    assert 'id="password-error"' in page


def test_create_deactivate_and_reset_user(app, admin, browser, world):
    response = post(
        admin,
        "/admin/users",
        {
            "email": "new@example.com",
            "password": "long enough",
            "role": "company_user",
            "company_id": str(world.company_a),
        },
    )
    assert response.status_code == 302
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "new@example.com"))
    assert (
        post(
            admin,
            f"/admin/users/{user_id}",
            {"action": "update", "role": "company_user", "company_id": str(world.company_b)},
        ).status_code
        == 302
    )
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.active, user.company_id) == (False, world.company_b)
    assert browser.login("new@example.com", "long enough").status_code == 401
    post(
        admin,
        f"/admin/users/{user_id}",
        {
            "action": "update",
            "role": "company_user",
            "company_id": str(world.company_b),
            "active": "on",
        },
    )
    post(admin, f"/admin/users/{user_id}", {"action": "password", "password": "brand new pass"})
    assert browser.login("new@example.com", "brand new pass").status_code == 302


def test_admin_cannot_deactivate_self(admin, world):
    response = post(
        admin,
        f"/admin/users/{world.admin}",
        {"action": "update", "role": "superadmin", "company_id": ""},
    )
    assert response.status_code == 422
    assert "cannot demote or deactivate yourself" in response.get_data(as_text=True)


def test_register_chargepoint_with_generated_key_shown_once(app, admin, world):
    response = post(
        admin,
        "/admin/chargepoints",
        {
            "identity": "NEW-01",
            "name": "New one",
            "company_id": str(world.company_b),
            "key": "generate",
        },
    )
    page = response.get_data(as_text=True)
    key = re.search(r'id="generated-key"[^>]*>([0-9a-f]{40})<', page).group(1)
    with app.app_context():
        cp = db.session.scalar(select(ChargePoint).where(ChargePoint.identity == "NEW-01"))
        assert cp.company_id == world.company_b and cp.check_auth_key(key.encode())
        assert key not in cp.auth_key_hash
    assert key not in admin.text("/admin/chargepoints")
    # The address to give the charge point is this server's, and the form starts afresh.
    assert '<code id="ocpp-url">ws://localhost/ocpp/NEW-01</code>' in page
    form = page.split("<h2>Register a charge point</h2>")[1]
    assert "NEW-01" not in form and "New one" not in form


def test_register_chargepoint_errors_beside_fields(admin, world):
    response = post(
        admin,
        "/admin/chargepoints",
        {
            "identity": "bad id",
            "company_id": str(world.company_a),
            "key": "enter",
            "auth_key": "xyz",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="identity-error"' in page and 'id="auth_key-error"' in page
    assert 'value="bad id"' in page


def test_tokens_created_once_and_revoked(app, admin, client, world):
    page = post(admin, "/admin/tokens", {"user_id": str(world.user_a), "name": "report"})
    clear = re.search(r'id="new-token"[^>]*>(pb_[^<]+)<', page.get_data(as_text=True)).group(1)
    auth = {"Authorization": f"Bearer {clear}"}
    assert client.get("/api/v1/chargepoints", headers=auth).status_code == 200
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "report"))
    assert clear not in admin.text("/admin/tokens")
    assert post(admin, f"/admin/tokens/{token_id}/revoke", {}).status_code == 302
    assert client.get("/api/v1/chargepoints", headers=auth).status_code == 401


@pytest.mark.parametrize("user_id", ["99999999999999999999", "2147483648", "-3", "abc", ""])
def test_token_for_a_user_id_that_names_nobody_is_an_error_beside_the_field(admin, user_id):
    response = post(admin, "/admin/tokens", {"user_id": user_id, "name": "report"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="user_id-error"' in page


@pytest.mark.parametrize("path", ["/admin/users", "/admin/chargepoints"])
def test_a_company_id_beyond_any_id_is_an_error_beside_the_field(admin, path):
    data = {"email": "n@example.com", "password": "long enough pass", "role": "company_user"}
    data.update(identity="CP-NEW", company_id="99999999999999999999")
    response = post(admin, path, data)
    assert response.status_code == 422
    assert 'id="company_id-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/admin/companies", {"name": "Acme\x00"}),
        ("/admin/tokens", {"user_id": "1", "name": "\x00"}),
        ("/admin/chargepoints", {"identity": "CP-9", "name": "x\x00", "company_id": "1"}),
    ],
)
def test_a_nul_character_in_an_admin_form_is_a_400_page(app, admin, path, data):
    response = post(admin, path, data)
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    with app.app_context():
        assert not any("\x00" in company.name for company in db.session.scalars(select(Company)))


def test_a_charge_point_is_renamed_moved_and_given_a_registration_status_from_its_page(
    app, admin, world
):
    page = admin.text(f"/chargepoints/{world.cp_a}")
    assert 'id="manage-chargepoint"' in page
    response = post(
        admin,
        f"/admin/chargepoints/{world.cp_a}",
        {
            "cp_name": "Renamed",
            "cp_company_id": str(world.company_b),
            "cp_registration_status": "Pending",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        cp = db.session.get(ChargePoint, world.cp_a)
        assert (cp.name, cp.company_id, cp.registration_status) == (
            "Renamed",
            world.company_b,
            "Pending",
        )


def test_charge_point_form_errors_are_shown_beside_the_fields_with_what_was_typed(admin, world):
    response = post(
        admin,
        f"/admin/chargepoints/{world.cp_a}",
        {"cp_name": "   ", "cp_company_id": "99999", "cp_registration_status": "Maybe"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="cp_name-error"' in page and 'id="cp_registration_status-error"' in page
    assert '<details class="card manage" id="manage-chargepoint" open>' in page


def test_a_charge_point_is_deleted_from_its_page(app, admin, world):
    response = admin.client.delete(
        f"/admin/chargepoints/{world.cp_a}", headers={"X-CSRFToken": admin.csrf("/")}
    )
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/"
    with app.app_context():
        assert db.session.get(ChargePoint, world.cp_a) is None


def test_company_users_get_no_charge_point_management(as_user, world):
    browser = as_user("a@example.com")
    assert 'id="manage-chargepoint"' not in browser.text(f"/chargepoints/{world.cp_a}")
    response = browser.client.post(
        f"/admin/chargepoints/{world.cp_a}",
        data={"cp_name": "Mine now", "csrf_token": browser.csrf("/")},
    )
    assert response.status_code == 403
