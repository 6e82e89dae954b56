"""The permission matrix: every endpoint × superadmin, company user of the owning company,
company user of another company, no credentials, revoked token."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM

ACTORS = ("admin", "user_a", "user_b", None, "revoked")


@pytest.fixture
def connector_a(app, world):
    """Connector 1 on company A's charge point."""
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()


def _endpoints(w):
    """(method, path, req_data, expected status per actor). A company user reading another
    company's charge point gets 404, exactly as if it did not exist."""
    read_own = {"admin": 200, "user_a": 200, "user_b": 404}
    write = {"admin": 200, "user_a": 403, "user_b": 403}
    create = {**write, "admin": 201}
    return [
        (
            "POST",
            "/api/v1/connectors",
            {"connector_id": 2, "connector_cp_id": w.cp_a},
            create,
        ),
        ("GET", f"/api/v1/connectors/chargepoint/{w.cp_a}", None, read_own),
        ("GET", f"/api/v1/connectors/chargepoint/{w.cp_a}/1", None, read_own),
        ("GET", f"/api/v1/connectors/chargepoint/{w.cp_a}/1/history", None, read_own),
        (
            "PUT",
            "/api/v1/connectors/1",
            {"connector_cp_id": w.cp_a, "connector_status": "Faulted"},
            write,
        ),
        ("DELETE", "/api/v1/connectors/1", {"connector_cp_id": w.cp_a}, write),
        (
            "POST",
            "/api/v1/chargepoints",
            {"chargepoint_identity": "NEW-1", "chargepoint_company_id": w.company_a},
            create,
        ),
        ("GET", "/api/v1/chargepoints", None, {"admin": 200, "user_a": 200, "user_b": 200}),
        ("GET", f"/api/v1/chargepoints/{w.cp_a}", None, read_own),
        ("PUT", f"/api/v1/chargepoints/{w.cp_a}", {"chargepoint_name": "Renamed"}, write),
        ("DELETE", f"/api/v1/chargepoints/{w.cp_a}", {}, write),
    ]


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a or "anonymous")
@pytest.mark.parametrize("index", range(11))
def test_permission_matrix(as_, world, connector_a, index, actor):
    method, path, req_data, expected = _endpoints(world)[index]
    response = as_(actor).call(method, path, req_data)
    body = response.get_json()
    want = 401 if actor in (None, "revoked") else expected[actor]
    assert response.status_code == want, body
    assert body["status"] is (want < 400)
    assert set(body) == {"id", "status", "message", "res_data", "timestamp"}


def test_company_user_lists_only_own_chargepoints(as_, world):
    body = as_("user_b").get("/api/v1/chargepoints").get_json()
    assert [cp["chargepoint_identity"] for cp in body["res_data"]["items"]] == ["CP-B"]
    body = as_("admin").get("/api/v1/chargepoints").get_json()
    assert [cp["chargepoint_identity"] for cp in body["res_data"]["items"]] == ["CP-A", "CP-B"]


def test_other_company_answers_like_missing(as_, world, connector_a):
    hidden = as_("user_b").get(f"/api/v1/connectors/chargepoint/{world.cp_a}")
    missing = as_("user_b").get("/api/v1/connectors/chargepoint/999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["message"].replace(str(world.cp_a), "N") == missing.get_json()[
        "message"
    ].replace("999", "N")


def test_forbidden_message_names_permission(as_, world, connector_a):
    body = as_("user_a").put("/api/v1/connectors/1", {"connector_cp_id": world.cp_a}).get_json()
    assert body["message"] == "Permission 'update.connector' is required"


def test_deactivated_user_token_is_refused(app, as_, world):
    from dashboard.models import User

    with app.app_context():
        db.session.get(User, world.user_a).active = False
        db.session.commit()
    response = as_("user_a").get("/api/v1/chargepoints")
    assert response.status_code == 401


def test_malformed_authorization_header(client, world):
    response = client.get("/api/v1/chargepoints", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert "Bearer" in response.get_json()["message"]
