"""GET /api/v1/reports/uptime and the exclusions, through the API: the figures, company
policy, and clear errors for bad input."""

from __future__ import annotations

import pytest

SEPTEMBER = "from=2026-09-01T00:00:00Z&to=2026-10-01T00:00:00Z"


def test_the_report_of_a_port_with_its_outages(as_, world, history):
    body = as_("user_a").get(f"/api/v1/reports/uptime?{SEPTEMBER}").json
    assert body["status"] is True
    data = body["res_data"]
    [port] = data["items"]
    assert (port["chargepoint_id"], port["identity"], port["connector_id"]) == (
        world.cp_a,
        "CP-A",
        1,
    )
    assert (port["minutes"], port["outage_minutes"], port["excluded_minutes"]) == (43200, 210, 0)
    assert port["uptime"] == pytest.approx((43200 - 210) / 43200 * 100)
    assert port["meets_target"] is True
    assert [(o["cause"], o["minutes"], o["error_code"]) for o in port["outages"]] == [
        ("offline", 150, None),
        ("faulted", 60, "GroundFailure"),
    ]
    assert port["outages"][0]["start"] == "2026-09-10T10:00:00Z"
    assert data["totals"]["outage_minutes"] == 210
    assert data["pagination"]["total"] == 1


def test_company_policy(as_, world, history):
    admin = as_("admin").get(f"/api/v1/reports/uptime?{SEPTEMBER}").json["res_data"]
    assert sorted(p["identity"] for p in admin["items"]) == ["CP-A", "CP-B"]
    assert admin["totals"]["minutes"] == 2 * 43200
    only_b = as_("admin").get(f"/api/v1/reports/uptime?{SEPTEMBER}&company_id={world.company_b}")
    assert [p["identity"] for p in only_b.json["res_data"]["items"]] == ["CP-B"]
    user_a = as_("user_a")
    for query in (f"chargepoint_id={world.cp_b}", f"company_id={world.company_b}"):
        response = user_a.get(f"/api/v1/reports/uptime?{SEPTEMBER}&{query}")
        assert response.status_code == 404, query
    assert as_(None).get("/api/v1/reports/uptime").status_code == 401


@pytest.mark.parametrize(
    "query, field",
    [
        ("from=yesterday", "from"),
        ("from=2026-09-10T00:00:00Z&to=2026-09-01T00:00:00Z", "to"),
        ("from=2025-01-01T00:00:00Z&to=2026-09-01T00:00:00Z", "to"),
        ("chargepoint_id=x", "chargepoint_id"),
    ],
)
def test_bad_periods_are_422_with_the_reason(as_, history, query, field):
    response = as_("admin").get(f"/api/v1/reports/uptime?{query}")
    assert response.status_code == 422
    assert field in response.json["res_data"]["errors"]


def test_operators_exclude_an_outage_and_the_uptime_follows(as_, world, history):
    exclusion = {
        "chargepoint_id": world.cp_a,
        "connector_id": 1,
        "starts": "2026-09-10T10:00:00Z",
        "ends": "2026-09-10T12:30:00Z",
        "cause": "utility",
        "reason": "Utility feeder outage, ticket 4711",
    }
    assert as_("user_a").post("/api/v1/reports/exclusions", exclusion).status_code == 403
    created = as_("admin").post("/api/v1/reports/exclusions", exclusion)
    assert created.status_code == 201, created.json
    row = created.json["res_data"]
    assert row["created_by"] == "admin@example.com" and row["cause"] == "utility"
    [port] = as_("user_a").get(f"/api/v1/reports/uptime?{SEPTEMBER}").json["res_data"]["items"]
    assert (port["outage_minutes"], port["excluded_minutes"]) == (210, 150)
    offline = port["outages"][0]
    assert offline["excluded"] is True
    assert offline["exclusions"][0]["reason"] == "Utility feeder outage, ticket 4711"
    assert port["uptime"] == pytest.approx((43200 - 60) / 43200 * 100)
    listed = as_("user_a").get(f"/api/v1/reports/exclusions?{SEPTEMBER}").json["res_data"]
    assert [e["reason"] for e in listed] == ["Utility feeder outage, ticket 4711"]
    assert as_("user_b").get(f"/api/v1/reports/exclusions?{SEPTEMBER}").json["res_data"] == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"cause": "aliens"}, "cause"),
        ({"reason": "  "}, "reason"),
        ({"ends": "2026-09-10T09:00:00Z"}, "ends"),
        ({"starts": "2999-01-01T00:00:00Z", "ends": None}, "starts"),
        ({"chargepoint_id": "one"}, "chargepoint_id"),
    ],
)
def test_a_bad_exclusion_is_422_beside_its_field(as_, world, history, change, field):
    exclusion = {
        "chargepoint_id": world.cp_a,
        "starts": "2026-09-10T10:00:00Z",
        "ends": "2026-09-10T12:30:00Z",
        "cause": "maintenance",
        "reason": "Planned",
        **change,
    }
    response = as_("admin").post("/api/v1/reports/exclusions", exclusion)
    assert response.status_code == 422, response.json
    assert field in response.json["res_data"]["errors"]


def test_an_exclusion_for_a_missing_port_is_404(as_, world, history):
    base = {"starts": "2026-09-10T10:00:00Z", "cause": "vandalism", "reason": "Cable cut"}
    missing = as_("admin").post(
        "/api/v1/reports/exclusions", {**base, "chargepoint_id": world.cp_a, "connector_id": 9}
    )
    assert missing.status_code == 404


def test_a_period_in_a_year_before_1000_keeps_four_digits(as_, history):
    """strftime's %Y writes the year 497 as "497", which is no RFC 3339 date-time (found
    by the schema fuzzer); the report says its period as it was asked."""
    body = as_("user_a").get("/api/v1/reports/uptime?from=0497-05-14T10:39:32Z").json
    data = body["res_data"]
    assert (data["start"], data["end"]) == ("0497-05-14T10:39:32Z", "0497-06-01T00:00:00Z")
