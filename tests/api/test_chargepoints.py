"""The charge points API: create, list (paginated, filtered), get, update, delete."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint, Connector, ConnectorStatusHistory

KEY_HEX = "00112233445566778899aabbccddeeff"


def test_create_returns_the_chargepoint(as_, world):
    response = as_("admin").post(
        "/api/v1/chargepoints",
        {
            "chargepoint_identity": "CP-NEW",
            "chargepoint_name": "New one",
            "chargepoint_company_id": world.company_b,
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["message"] == "Charge point created successfully"
    data = body["res_data"]
    assert data["chargepoint_identity"] == "CP-NEW"
    assert data["chargepoint_company_id"] == world.company_b
    assert data["chargepoint_company_name"] == "Company B"
    assert data["chargepoint_registration_status"] == "Accepted"
    assert data["chargepoint_has_auth_key"] is False
    assert data["chargepoint_last_seen"] is None


def test_text_with_a_nul_character_is_422(as_, world):
    response = as_("admin").post(
        "/api/v1/chargepoints",
        {
            "chargepoint_identity": "CP-N",
            "chargepoint_company_id": world.company_a,
            "chargepoint_name": "a\x00b",
        },
    )
    assert response.status_code == 422
    errors = response.get_json()["res_data"]["errors"]
    assert errors == {"chargepoint_name": ["Must not contain the NUL character."]}


def test_name_defaults_to_identity(as_, world):
    data = (
        as_("admin")
        .post(
            "/api/v1/chargepoints",
            {"chargepoint_identity": "CP-X", "chargepoint_company_id": world.company_a},
        )
        .get_json()["res_data"]
    )
    assert data["chargepoint_name"] == "CP-X"


def test_auth_key_is_stored_hashed(app, as_, world):
    data = (
        as_("admin")
        .post(
            "/api/v1/chargepoints",
            {
                "chargepoint_identity": "CP-KEY",
                "chargepoint_company_id": world.company_a,
                "chargepoint_auth_key": KEY_HEX,
            },
        )
        .get_json()["res_data"]
    )
    assert data["chargepoint_has_auth_key"] is True
    assert KEY_HEX not in str(data)
    with app.app_context():
        cp = db.session.get(ChargePoint, data["chargepoint_id"])
        assert KEY_HEX not in cp.auth_key_hash
        assert cp.check_auth_key(bytes.fromhex(KEY_HEX))  # raw bytes
        assert cp.check_auth_key(KEY_HEX.encode())  # hex text
        assert cp.check_auth_key(KEY_HEX.upper().encode())
        assert not cp.check_auth_key(b"wrong")
        assert not cp.check_auth_key(b"\xff" * 16)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chargepoint_identity", "has space"),
        ("chargepoint_identity", "slash/inside"),
        ("chargepoint_identity", "x" * 49),
        ("chargepoint_identity", ""),
        ("chargepoint_company_id", "1"),
        ("chargepoint_company_id", 0),
        ("chargepoint_auth_key", "abc"),
        ("chargepoint_auth_key", "zz" * 16),
        ("chargepoint_auth_key", "00" * 21),
        ("chargepoint_registration_status", "Maybe"),
        ("chargepoint_name", "n" * 121),
    ],
)
def test_invalid_create_is_422(as_, world, field, value):
    req_data = {"chargepoint_identity": "CP-V", "chargepoint_company_id": world.company_a}
    req_data[field] = value
    response = as_("admin").post("/api/v1/chargepoints", req_data)
    assert response.status_code == 422
    assert list(response.get_json()["res_data"]["errors"]) == [field]


def test_duplicate_identity_is_409(as_, world):
    response = as_("admin").post(
        "/api/v1/chargepoints",
        {"chargepoint_identity": "CP-A", "chargepoint_company_id": world.company_b},
    )
    assert response.status_code == 409


def test_unknown_company_is_404(as_, world):
    response = as_("admin").post(
        "/api/v1/chargepoints",
        {"chargepoint_identity": "CP-Z", "chargepoint_company_id": 999},
    )
    assert response.status_code == 404
    assert response.get_json()["message"] == "Company 999 not found"


@pytest.fixture
def many(app, world):
    from dashboard.services.chargepoints import create_chargepoint
    from dashboard.services.permissions import SYSTEM

    with app.app_context():
        for n in range(1, 26):
            company = world.company_a if n % 2 else world.company_b
            create_chargepoint(
                SYSTEM,
                identity=f"ST-{n:02d}",
                company_id=company,
                name=f"Station {n} {'north' if n < 5 else 'south'}",
            )
        db.session.commit()


def test_list_is_paginated(as_, many):
    body = as_("admin").get("/api/v1/chargepoints?per_page=10&page=3").get_json()["res_data"]
    assert body["pagination"] == {"page": 3, "per_page": 10, "total": 27, "pages": 3}
    assert len(body["items"]) == 7


def test_list_filters_by_company_and_text(as_, world, many):
    url = f"/api/v1/chargepoints?company_id={world.company_b}&q=NORTH"
    items = as_("admin").get(url).get_json()["res_data"]["items"]
    assert [i["chargepoint_identity"] for i in items] == ["ST-02", "ST-04"]


def test_text_filter_treats_wildcards_literally(as_, many):
    items = as_("admin").get("/api/v1/chargepoints?q=%25").get_json()["res_data"]["items"]
    assert items == []


def test_text_filter_with_a_nul_character_is_422(as_):
    response = as_("admin").get("/api/v1/chargepoints?q=a%00b")
    assert response.status_code == 422
    assert response.get_json()["res_data"]["errors"] == {
        "q": ["Must not contain the NUL character."]
    }


def test_company_user_filtering_other_company_sees_nothing(as_, world, many):
    url = f"/api/v1/chargepoints?company_id={world.company_b}"
    body = as_("user_a").get(url).get_json()["res_data"]
    assert body["items"] == [] and body["pagination"]["total"] == 0


def test_update_changes_name_company_key_and_registration(app, as_, world):
    response = as_("admin").put(
        f"/api/v1/chargepoints/{world.cp_a}",
        {
            "chargepoint_name": "Renamed",
            "chargepoint_company_id": world.company_b,
            "chargepoint_auth_key": KEY_HEX,
            "chargepoint_registration_status": "Pending",
        },
    )
    data = response.get_json()["res_data"]
    assert (data["chargepoint_name"], data["chargepoint_company_id"]) == (
        "Renamed",
        world.company_b,
    )
    assert data["chargepoint_has_auth_key"] is True
    assert data["chargepoint_registration_status"] == "Pending"
    cleared = (
        as_("admin")
        .put(f"/api/v1/chargepoints/{world.cp_a}", {"chargepoint_auth_key": None})
        .get_json()["res_data"]
    )
    assert cleared["chargepoint_has_auth_key"] is False
    # Moved to company B: company A's user no longer sees it.
    assert as_("user_a").get(f"/api/v1/chargepoints/{world.cp_a}").status_code == 404
    assert as_("user_b").get(f"/api/v1/chargepoints/{world.cp_a}").status_code == 200


def test_identity_cannot_be_changed(as_, world):
    response = as_("admin").put(
        f"/api/v1/chargepoints/{world.cp_a}", {"chargepoint_identity": "OTHER"}
    )
    assert response.status_code == 422


def test_delete_removes_connectors_and_history(app, as_, world):
    admin = as_("admin")
    for n in (1, 2):
        admin.post("/api/v1/connectors", {"connector_id": n, "connector_cp_id": world.cp_a})
    admin.put(
        "/api/v1/connectors/1", {"connector_cp_id": world.cp_a, "connector_status": "Charging"}
    )
    admin.post("/api/v1/connectors", {"connector_id": 1, "connector_cp_id": world.cp_b})
    response = admin.delete(f"/api/v1/chargepoints/{world.cp_a}")
    assert response.status_code == 200
    assert response.get_json()["message"] == "Charge point deleted successfully"
    with app.app_context():
        assert db.session.get(ChargePoint, world.cp_a) is None
        remaining = db.session.scalars(db.select(Connector)).all()
        assert [(c.connector_cp_id, c.connector_id) for c in remaining] == [(world.cp_b, 1)]
        history = db.session.scalars(db.select(ConnectorStatusHistory)).all()
        assert {h.connector_cp_id for h in history} == {world.cp_b}
    assert admin.get(f"/api/v1/connectors/chargepoint/{world.cp_a}").status_code == 404
