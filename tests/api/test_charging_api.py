"""The transactions and id tags of the API: envelopes, filters, permissions and company
policy as the rest of the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint, IdTag
from dashboard.services import charging

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(app, world):
    """CP-A: a finished session (card-1, 1000 → 4000 Wh) with samples, and one going on;
    CP-B (company B): a finished session."""
    with app.app_context():
        cp_a = db.session.get(ChargePoint, world.cp_a)
        cp_b = db.session.get(ChargePoint, world.cp_b)
        done, _ = charging.start_transaction(
            cp_a, connector_id=1, id_tag="card-1", meter_start=1000, timestamp=T0
        )
        charging.record_meter_values(
            cp_a.id,
            1,
            done.id,
            [
                (
                    T0 + timedelta(minutes=10),
                    [
                        {"value": "2.5", "unit": "kWh"},
                        {"value": "7200", "measurand": "Power.Active.Import"},
                    ],
                )
            ],
        )
        charging.stop_transaction(
            cp_a, transaction_id=done.id, meter_stop=4000, timestamp=T0 + timedelta(hours=1)
        )
        going, _ = charging.start_transaction(
            cp_a, connector_id=2, id_tag="CARD-2", meter_start=0, timestamp=T0 + timedelta(days=1)
        )
        other, _ = charging.start_transaction(
            cp_b, connector_id=1, id_tag="card-b", meter_start=0, timestamp=T0
        )
        charging.stop_transaction(cp_b, transaction_id=other.id, meter_stop=10, timestamp=T0)
        db.session.commit()
        return {"done": done.id, "going": going.id, "other": other.id}


def test_a_transaction_with_its_meter_values(as_, sessions):
    response = as_("admin").get(f"/api/v1/transactions/{sessions['done']}")
    body = response.get_json()
    assert response.status_code == 200 and body["message"] == "Transaction retrieved successfully"
    data = body["res_data"]
    assert {
        k: data[k] for k in ("transaction_id", "meter_start_wh", "meter_stop_wh", "energy_wh")
    } == {
        "transaction_id": sessions["done"],
        "meter_start_wh": 1000,
        "meter_stop_wh": 4000,
        "energy_wh": 3000,
    }
    assert data["stop_reason"] == "Local" and data["peak_power_w"] == "7200"
    assert data["active"] is False and data["orphan"] is False
    values = {(v["measurand"], v["value"], v["normalised"]) for v in data["meter_values"]}
    assert ("Energy.Active.Import.Register", "2.5", "2500") in values


def test_filters_of_the_transaction_list(as_, world, sessions):
    admin = as_("admin")

    def ids(query):
        items = admin.get(f"/api/v1/transactions{query}").get_json()["res_data"]["items"]
        return {item["transaction_id"] for item in items}

    assert ids("") == set(sessions.values())
    assert ids("?active=true") == {sessions["going"]}
    assert ids("?active=false") == {sessions["done"], sessions["other"]}
    assert ids("?id_tag=card-2") == {sessions["going"]}  # case-insensitive
    assert ids(f"?chargepoint_id={world.cp_a}&connector_id=1") == {sessions["done"]}
    assert ids("?from=2026-11-02T00:00:00Z") == {sessions["going"]}
    assert ids("?to=2026-11-02T00:00:00Z") == {sessions["done"], sessions["other"]}
    page = admin.get(f"/api/v1/chargepoints/{world.cp_a}/transactions?per_page=1").get_json()
    assert page["res_data"]["pagination"]["total"] == 2
    assert page["res_data"]["items"][0]["transaction_id"] == sessions["going"]  # newest first


def test_company_users_see_only_their_companys_sessions(as_, world, sessions):
    mine = as_("user_a").get("/api/v1/transactions").get_json()["res_data"]["items"]
    assert {item["transaction_id"] for item in mine} == {sessions["done"], sessions["going"]}
    assert as_("user_b").get(f"/api/v1/transactions/{sessions['done']}").status_code == 404
    assert as_("user_b").get(f"/api/v1/chargepoints/{world.cp_a}/transactions").status_code == 404


@pytest.mark.parametrize(
    "query",
    ["?active=yes", "?from=yesterday", "?to=2026-13-01", "?chargepoint_id=x", "?id_tag=%00"],
)
def test_bad_filters_are_a_422_envelope(as_, sessions, query):
    response = as_("admin").get(f"/api/v1/transactions{query}")
    assert response.status_code == 422 and response.get_json()["status"] is False


def test_id_tags_are_managed_by_superadmins_and_read_by_their_company(app, as_, world):
    admin = as_("admin")
    created = admin.post(
        "/api/v1/idtags",
        {
            "company_id": world.company_a,
            "tag": "Card-7",
            "status": "Blocked",
            "expiry_date": "2027-01-01T00:00:00Z",
            "parent_tag": "FLEET",
            "note": "lost",
        },
    )
    assert created.status_code == 201
    tag = created.get_json()["res_data"]
    assert (tag["tag"], tag["status"], tag["registered"]) == ("Card-7", "Blocked", True)
    again = admin.post("/api/v1/idtags", {"company_id": world.company_a, "tag": "CARD-7"})
    assert again.status_code == 409  # the same tag, whatever its case
    updated = admin.put(f"/api/v1/idtags/{tag['idtag_id']}", {"status": "Accepted", "note": None})
    assert updated.get_json()["res_data"]["status"] == "Accepted"
    assert updated.get_json()["res_data"]["note"] is None

    assert as_("user_a").get(f"/api/v1/idtags/{tag['idtag_id']}").status_code == 200
    assert as_("user_b").get(f"/api/v1/idtags/{tag['idtag_id']}").status_code == 404
    assert as_("user_b").get("/api/v1/idtags").get_json()["res_data"]["items"] == []
    assert (
        as_("user_a")
        .post("/api/v1/idtags", {"company_id": world.company_a, "tag": "x"})
        .status_code
        == 403
    )
    assert as_("user_a").delete(f"/api/v1/idtags/{tag['idtag_id']}").status_code == 403
    assert admin.delete(f"/api/v1/idtags/{tag['idtag_id']}").status_code == 200
    with app.app_context():
        assert db.session.get(IdTag, tag["idtag_id"]) is None


def test_a_tag_only_seen_is_adopted(app, as_, world):
    with app.app_context():
        db.session.add(
            IdTag(company_id=world.company_a, tag="seen", tag_key="SEEN", registered=False)
        )
        db.session.commit()
    response = as_("admin").post(
        "/api/v1/idtags", {"company_id": world.company_a, "tag": "SEEN", "status": "Accepted"}
    )
    assert response.status_code == 201 and response.get_json()["res_data"]["registered"] is True
    with app.app_context():
        assert db.session.query(IdTag).count() == 1


def test_an_id_tag_of_a_company_that_is_not_there_is_a_404(as_, world):
    assert as_("admin").post("/api/v1/idtags", {"company_id": 999, "tag": "ok"}).status_code == 404


@pytest.mark.parametrize(
    "req_data",
    [
        {"company_id": 1, "tag": ""},
        {"company_id": 1, "tag": "x" * 21},
        {"company_id": 1, "tag": "ok", "status": "Maybe"},
        {"company_id": 1, "tag": "ok", "expiry_date": "soon"},
        {"tag": "ok"},
        {"company_id": 1, "tag": "a\x00b"},
    ],
)
def test_bad_id_tags_are_refused_beside_the_field(as_, world, req_data):
    response = as_("admin").post("/api/v1/idtags", req_data)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["res_data"]["errors"]
