"""Every request example of the specification (shared/seed/connectors-api.md), sent as
written, gets a response of the shape the specification shows."""

from __future__ import annotations

import re

import pytest

from dashboard.extensions import db
from dashboard.models import ConnectorStatusHistory
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM

SPEC_ID = "550e8400-e29b-41d4-a716-446655440000"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CONNECTOR_KEYS = [
    "connector_id",
    "connector_cp_id",
    "connector_type",
    "connector_status",
    "connector_error_code",
    "connector_enabled",
    "connector_max_volt",
    "connector_max_amp",
    "connector_created",
    "connector_updated",
]

# Copied verbatim from the specification.
CREATE_EXAMPLE = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "req_data": {
        "connector_id": 1,
        "connector_cp_id": 5,
        "connector_type": "Type2",
        "connector_status": "Available",
        "connector_error_code": "NoError",
        "connector_enabled": True,
        "connector_max_volt": "240",
        "connector_max_amp": "32",
    },
    "timestamp": "2024-01-15T10:30:00Z",
}
UPDATE_EXAMPLE = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "req_data": {"connector_cp_id": 5, "connector_status": "Unavailable"},
    "timestamp": "2024-01-15T12:00:00Z",
}
DELETE_EXAMPLE = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "req_data": {"connector_cp_id": 5},
    "timestamp": "2024-01-15T13:00:00Z",
}


@pytest.fixture
def cp5(app, world):
    """The specification's examples use charge point 5: make ids 3, 4 and 5 exist."""
    with app.app_context():
        for n in (3, 4, 5):
            cp = create_chargepoint(SYSTEM, identity=f"CP-{n}", company_id=world.company_a)
        db.session.commit()
        assert cp.id == 5
    return 5


def assert_envelope(body: dict, message: str) -> None:
    assert list(body) == ["id", "status", "message", "res_data", "timestamp"]
    assert body["id"] == SPEC_ID
    assert body["status"] is True
    assert body["message"] == message
    assert ISO_Z.match(body["timestamp"])


# Plugboard's additions, after every field of the specification: whether the status is
# current (its charge point connected) or the last one known.
ADDED_KEYS = [
    "chargepoint_connection",
    "status_reported_at",
    "transaction_id",
    "session_energy_wh",
    "power_w",
    "chargepoint_last_seen",
]


def assert_connector(data: dict, expected: dict) -> None:
    assert list(data) == CONNECTOR_KEYS + ADDED_KEYS
    for key, value in expected.items():
        assert data[key] == value, key
    assert ISO_Z.match(data["connector_created"])
    assert ISO_Z.match(data["connector_updated"])


def test_create_example(client, world, cp5):
    response = client.post(
        "/api/v1/connectors",
        json=CREATE_EXAMPLE,
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert_envelope(body, "Connector created successfully")
    assert_connector(body["res_data"], CREATE_EXAMPLE["req_data"])


def test_list_example(client, world, cp5):
    auth = {"Authorization": f"Bearer {world.tokens['admin']}"}
    client.post("/api/v1/connectors", json=CREATE_EXAMPLE, headers=auth)
    second = {
        **CREATE_EXAMPLE,
        "req_data": {
            **CREATE_EXAMPLE["req_data"],
            "connector_id": 2,
            "connector_type": "CCS",
            "connector_max_volt": "400",
            "connector_max_amp": "125",
        },
    }
    client.post("/api/v1/connectors", json=second, headers=auth)
    response = client.get(
        "/api/v1/connectors/chargepoint/5", headers={**auth, "X-Request-ID": SPEC_ID}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert_envelope(body, "Connectors retrieved successfully")
    assert [c["connector_id"] for c in body["res_data"]] == [1, 2]
    assert_connector(body["res_data"][1], second["req_data"])


def test_update_example(app, client, world, cp5):
    auth = {"Authorization": f"Bearer {world.tokens['admin']}"}
    client.post("/api/v1/connectors", json=CREATE_EXAMPLE, headers=auth)
    response = client.put("/api/v1/connectors/1", json=UPDATE_EXAMPLE, headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert_envelope(body, "Connector updated successfully")
    assert_connector(
        body["res_data"],
        {**CREATE_EXAMPLE["req_data"], "connector_status": "Unavailable"},
    )
    with app.app_context():
        rows = db.session.scalars(
            db.select(ConnectorStatusHistory).order_by(ConnectorStatusHistory.id)
        ).all()
        assert [(r.previous_status, r.status, r.source) for r in rows] == [
            (None, "Available", "api"),
            ("Available", "Unavailable", "api"),
        ]
        assert rows[1].user_id == world.admin


def test_delete_example(client, world, cp5):
    auth = {"Authorization": f"Bearer {world.tokens['admin']}"}
    client.post("/api/v1/connectors", json=CREATE_EXAMPLE, headers=auth)
    response = client.delete("/api/v1/connectors/1", json=DELETE_EXAMPLE, headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert_envelope(body, "Connector deleted successfully")
    assert body["res_data"] == {}
    listing = client.get("/api/v1/connectors/chargepoint/5", headers=auth).get_json()
    assert listing["res_data"] == []
