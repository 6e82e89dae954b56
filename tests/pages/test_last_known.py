"""A connector of a charge point that is not connected shows its status as the last one
known, not as current: in the pages, the CSV export and the API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint
from dashboard.models.types import utcnow
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM


@pytest.fixture
def charging(app, world):
    """Connector 1 of CP-A Charging, CP-A connected and seen now; CP-B's offline."""
    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            create_connector(
                SYSTEM,
                connector_id=1,
                connector_cp_id=cp_id,
                connector_status="Charging",
                source="api",
            )
        online = db.session.get(ChargePoint, world.cp_a)
        online.connected_since = online.last_seen = utcnow()
        offline = db.session.get(ChargePoint, world.cp_b)
        offline.last_seen = utcnow() - timedelta(hours=2)
        db.session.commit()


def test_pages_mark_the_status_of_an_offline_charge_point_as_last_known(as_user, world, charging):
    listing = as_user("admin@example.com").text("/connectors")
    online_row = listing.split(f'id="connector-{world.cp_a}-1"')[1].split("</tr>")[0]
    offline_row = listing.split(f'id="connector-{world.cp_b}-1"')[1].split("</tr>")[0]
    assert "last-known" not in online_row and "status-charging" in online_row
    assert "last-known" in offline_row and "last known · offline" in offline_row
    assert "last seen" in offline_row
    page = as_user("admin@example.com").text(f"/chargepoints/{world.cp_b}")
    assert "last known · offline" in page


def test_the_csv_export_says_whether_each_status_is_current(as_user, world, charging):
    export = as_user("admin@example.com").text("/connectors.csv")
    rows = {row["chargepoint_identity"]: row for row in csv.DictReader(io.StringIO(export))}
    assert rows["CP-A"]["chargepoint_connection"] == "online"
    assert rows["CP-B"]["chargepoint_connection"] == "offline"
    assert rows["CP-B"]["chargepoint_last_seen"].endswith("Z")


def test_the_api_says_whether_each_status_is_current(as_, world, charging):
    admin = as_("admin")
    online = admin.get(f"/api/v1/connectors/chargepoint/{world.cp_a}/1").get_json()["res_data"]
    offline = admin.get(f"/api/v1/connectors/chargepoint/{world.cp_b}").get_json()["res_data"]
    assert (online["connector_status"], online["chargepoint_connection"]) == (
        "Charging",
        "online",
    )
    assert (offline[0]["connector_status"], offline[0]["chargepoint_connection"]) == (
        "Charging",
        "offline",
    )
    assert offline[0]["chargepoint_last_seen"].endswith("Z")
