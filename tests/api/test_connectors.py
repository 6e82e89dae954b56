"""The Connectors API: validation of each field, defaults, decimals, conflicts, bad bodies,
and the history that every status change leaves."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.models import Connector, ConnectorStatusHistory


def create(api, cp_id, **fields):
    return api.post("/api/v1/connectors", {"connector_id": 1, "connector_cp_id": cp_id, **fields})


def errors_of(response) -> dict:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["status"] is False
    assert body["message"] == "Validation failed"
    return body["res_data"]["errors"]


def test_defaults_are_those_of_the_spec(as_, world):
    data = create(as_("admin"), world.cp_a).get_json()["res_data"]
    assert data["connector_status"] == "Available"
    assert data["connector_error_code"] == "NoError"
    assert data["connector_enabled"] is True
    assert data["connector_type"] is None
    assert data["connector_max_volt"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connector_id", 0),
        ("connector_id", -1),
        ("connector_id", "1"),
        ("connector_id", 1.5),
        ("connector_id", True),
        ("connector_id", 2**31),
        ("connector_cp_id", "5"),
        ("connector_cp_id", None),
        ("connector_status", "Broken"),
        ("connector_status", "available"),
        ("connector_error_code", "FormatViolation"),
        ("connector_enabled", "true"),
        ("connector_enabled", 1),
        ("connector_type", ""),
        ("connector_type", "x" * 33),
        ("connector_type", 2),
        ("connector_max_volt", "abc"),
        ("connector_max_volt", "-5"),
        ("connector_max_volt", "1e3"),
        ("connector_max_volt", "NaN"),
        ("connector_max_volt", "Infinity"),
        ("connector_max_volt", "1.2345"),
        ("connector_max_volt", "1234567890"),
        ("connector_max_volt", True),
        ("connector_max_amp", []),
    ],
)
def test_invalid_field_is_422_with_its_message(as_, world, field, value):
    errors = errors_of(create(as_("admin"), world.cp_a, **{field: value}))
    assert list(errors) == [field]
    assert errors[field]


def test_missing_required_fields(as_, world):
    errors = errors_of(as_("admin").post("/api/v1/connectors", {}))
    assert set(errors) == {"connector_id", "connector_cp_id"}


def test_unknown_field_is_refused(as_, world):
    errors = errors_of(create(as_("admin"), world.cp_a, connector_colour="blue"))
    assert errors == {"connector_colour": ["Unknown field."]}


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("240", "240"),
        ("32.5", "32.5"),
        ("32.500", "32.5"),
        ("0", "0"),
        (400, "400"),
        ("123456789.125", "123456789.125"),
    ],
)
def test_decimals_are_exact_and_plain(app, as_, world, sent, returned):
    data = create(as_("admin"), world.cp_a, connector_max_amp=sent).get_json()["res_data"]
    assert data["connector_max_amp"] == returned
    listed = as_("admin").get(f"/api/v1/connectors/chargepoint/{world.cp_a}").get_json()
    assert listed["res_data"][0]["connector_max_amp"] == returned


def test_json_number_with_fraction_stays_exact(as_, world):
    response = as_("admin").post(
        "/api/v1/connectors",
        raw={
            "id": "x",
            "req_data": {
                "connector_id": 1,
                "connector_cp_id": world.cp_a,
                "connector_max_volt": 0.1,
            },
        },
    )
    assert response.get_json()["res_data"]["connector_max_volt"] == "0.1"


def test_duplicate_composite_key_is_409(as_, world):
    assert create(as_("admin"), world.cp_a).status_code == 201
    response = create(as_("admin"), world.cp_a)
    assert response.status_code == 409
    assert response.get_json()["message"] == (
        f"Connector 1 already exists on charge point {world.cp_a}"
    )


def test_same_number_on_another_chargepoint_is_fine(as_, world):
    assert create(as_("admin"), world.cp_a).status_code == 201
    assert create(as_("admin"), world.cp_b).status_code == 201


def test_unknown_chargepoint_is_404(as_, world):
    response = create(as_("admin"), 4242)
    assert response.status_code == 404
    assert response.get_json()["message"] == "Charge point 4242 not found"


def test_update_unknown_connector_is_404(as_, world):
    response = as_("admin").put("/api/v1/connectors/7", {"connector_cp_id": world.cp_a})
    assert response.status_code == 404


def test_update_changes_only_given_fields(as_, world):
    create(as_("admin"), world.cp_a, connector_type="CCS", connector_max_volt="400")
    data = (
        as_("admin")
        .put("/api/v1/connectors/1", {"connector_cp_id": world.cp_a, "connector_enabled": False})
        .get_json()["res_data"]
    )
    assert data["connector_enabled"] is False
    assert data["connector_type"] == "CCS"
    assert data["connector_max_volt"] == "400"


def test_update_can_clear_optional_fields(as_, world):
    create(as_("admin"), world.cp_a, connector_type="CCS", connector_max_volt="400")
    data = (
        as_("admin")
        .put(
            "/api/v1/connectors/1",
            {"connector_cp_id": world.cp_a, "connector_type": None, "connector_max_volt": None},
        )
        .get_json()["res_data"]
    )
    assert data["connector_type"] is None
    assert data["connector_max_volt"] is None


def test_update_requires_chargepoint_id(as_, world):
    create(as_("admin"), world.cp_a)
    errors = errors_of(as_("admin").put("/api/v1/connectors/1", {"connector_status": "Faulted"}))
    assert list(errors) == ["connector_cp_id"]


def test_status_change_writes_history_and_flags_unexpected(app, as_, world):
    create(as_("admin"), world.cp_a)
    admin = as_("admin")
    for status in ("Charging", "Reserved"):  # Available→Charging ok, Charging→Reserved not
        admin.put(
            "/api/v1/connectors/1", {"connector_cp_id": world.cp_a, "connector_status": status}
        )
    # Same status again: no change, no row.
    admin.put(
        "/api/v1/connectors/1", {"connector_cp_id": world.cp_a, "connector_status": "Reserved"}
    )
    body = admin.get(f"/api/v1/connectors/chargepoint/{world.cp_a}/1/history").get_json()
    items = body["res_data"]["items"]
    assert [(i["previous_status"], i["status"], i["unexpected"]) for i in items] == [
        ("Charging", "Reserved", True),
        ("Available", "Charging", False),
        (None, "Available", False),
    ]
    assert {i["source"] for i in items} == {"api"}
    assert items[0]["user_email"] == "admin@example.com"
    assert body["res_data"]["pagination"] == {"page": 1, "per_page": 20, "total": 3, "pages": 1}


def test_error_code_change_alone_is_recorded(app, as_, world):
    create(as_("admin"), world.cp_a)
    as_("admin").put(
        "/api/v1/connectors/1",
        {"connector_cp_id": world.cp_a, "connector_error_code": "HighTemperature"},
    )
    with app.app_context():
        query = db.select(ConnectorStatusHistory).order_by(ConnectorStatusHistory.id)
        rows = db.session.scalars(query).all()
        assert [(r.status, r.error_code) for r in rows] == [
            ("Available", "NoError"),
            ("Available", "HighTemperature"),
        ]


def test_history_pagination(as_, world):
    create(as_("admin"), world.cp_a)
    for status in ("Preparing", "Charging", "Finishing", "Available"):
        as_("admin").put(
            "/api/v1/connectors/1", {"connector_cp_id": world.cp_a, "connector_status": status}
        )
    url = f"/api/v1/connectors/chargepoint/{world.cp_a}/1/history?per_page=2&page=3"
    body = as_("admin").get(url).get_json()["res_data"]
    assert [i["status"] for i in body["items"]] == ["Available"]
    assert body["pagination"] == {"page": 3, "per_page": 2, "total": 5, "pages": 3}


@pytest.mark.parametrize("query", ["page=0", "per_page=0", "per_page=101", "page=x"])
def test_bad_pagination_is_422(as_, world, query):
    create(as_("admin"), world.cp_a)
    url = f"/api/v1/connectors/chargepoint/{world.cp_a}/1/history?{query}"
    errors = errors_of(as_("admin").get(url))
    assert list(errors) == [query.split("=")[0]]


def test_delete_removes_connector_and_history(app, as_, world):
    create(as_("admin"), world.cp_a)
    response = as_("admin").delete("/api/v1/connectors/1", {"connector_cp_id": world.cp_a})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Connector)) == 0
        count = db.select(db.func.count()).select_from(ConnectorStatusHistory)
        assert db.session.scalar(count) == 0


def test_delete_accepts_query_parameter(as_, world):
    create(as_("admin"), world.cp_a)
    response = as_("admin").delete(f"/api/v1/connectors/1?connector_cp_id={world.cp_a}")
    assert response.status_code == 200
    assert response.get_json()["message"] == "Connector deleted successfully"


def test_delete_without_chargepoint_id_is_422(as_, world):
    errors = errors_of(as_("admin").delete("/api/v1/connectors/1"))
    assert list(errors) == ["connector_cp_id"]


def test_delete_bad_query_parameter_is_422(as_, world):
    errors = errors_of(as_("admin").delete("/api/v1/connectors/1?connector_cp_id=0"))
    assert list(errors) == ["connector_cp_id"]
