"""The uptime page, the exclusion form and the NEVI CSV, signed in."""

from __future__ import annotations

import csv
import io

from tests.integrations.test_pages import _signed_in


def test_the_uptime_page_of_a_company_user_shows_its_own_ports(app, world, history):
    client, _ = _signed_in(app, "a@example.com")
    page = client.get("/reports?month=2026-09").get_data(as_text=True)
    assert "CP-A" in page and "CP-B" not in page
    assert "99.51 %" in page  # (43,200 − 210) / 43,200
    assert "Uptime per month" in page and "97 % target" in page
    # Another company's charge point is not found; the port view shows the outages.
    assert client.get(f"/reports?cp={world.cp_b}").status_code == 404
    port = client.get(f"/reports?month=2026-09&cp={world.cp_a}&port=1").get_data(as_text=True)
    assert "Charge point offline" in port and "GroundFailure" in port
    assert ">Exclude<" not in port and "Record the exclusion" not in port  # operators only


def test_an_operator_excludes_an_outage_and_bad_input_keeps_what_was_typed(app, world, history):
    client, token = _signed_in(app, "admin@example.com")
    url = f"/reports/exclusions?month=2026-09&cp={world.cp_a}&port=1"
    refused = client.post(
        url,
        data={
            "csrf_token": token,
            "cp": world.cp_a,
            "port": 1,
            "starts": "2026-09-10T12:00",
            "ends": "2026-09-10T11:00",
            "cause": "maintenance",
            "reason": "Firmware update",
        },
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'id="ends-error"' in text and "Must be after the start." in text
    assert 'value="Firmware update"' in text
    done = client.post(
        url,
        data={
            "csrf_token": token,
            "cp": world.cp_a,
            "port": 1,
            "starts": "2026-09-10T10:00:00+00:00",
            "ends": "2026-09-10T12:30:00+00:00",
            "cause": "utility",
            "reason": "Feeder outage",
        },
    )
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/reports?month=2026-09&cp={world.cp_a}&port=1")
    done = client.get(done.headers["Location"])
    text = done.get_data(as_text=True)
    assert "Electric utility service interruption — Feeder outage" in text
    assert "by admin@example.com" in text
    assert "99.86 %" in text  # (43,200 − (210 − 150)) / 43,200


def test_the_nevi_csv_of_a_quarter(app, world, history):
    client, _ = _signed_in(app, "a@example.com")
    response = client.get("/reports/nevi.csv?year=2026&quarter=3")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["record"] for r in rows] == ["port", "outage", "outage"]
    port, offline, fault = rows
    assert (port["station_id"], port["port_id"]) == ("CP-A", "1")
    assert (port["month_1"], port["month_2"], port["month_3"]) == ("2026-07", "2026-08", "2026-09")
    # The port was created on 31 August: no figures for July, one day of August.
    assert port["uptime_percent_1"] == "" and port["uptime_percent_2"] == "100.000"
    assert port["outage_minutes_3"] == "210.00" and port["excluded_minutes_3"] == "0.00"
    assert (offline["outage_cause"], offline["outage_duration_minutes"]) == ("offline", "150.00")
    assert (fault["outage_cause"], fault["error_code"]) == ("faulted", "GroundFailure")
    assert offline["outage_start"] == "2026-09-10T10:00:00+00:00"


def test_the_charge_point_and_connector_pages_show_the_ports_uptime(app, world, connectors_now):
    client, _ = _signed_in(app, "a@example.com")
    for path in (f"/chargepoints/{world.cp_a}", f"/chargepoints/{world.cp_a}/connectors/1"):
        page = client.get(path).get_data(as_text=True)
        assert 'id="uptime-summary-title"' in page and "This month" in page
        assert f"/reports?cp={world.cp_a}&amp;port=1" in page
