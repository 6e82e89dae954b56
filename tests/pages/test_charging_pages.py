"""Charging sessions in the pages: the sessions list and its CSV, the connector page's
current session with its chart and recent sessions, energy and power on charging rows,
and the id tags administration."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint, Company, IdTag
from dashboard.services import charging
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.pages.test_admin import post

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def charging_now(app, world):
    """CP-A connector 1 charging (card-1, 7.4 kW, 2.5 kWh so far); CP-B: a past session."""
    with app.app_context():
        for cp_id in (world.cp_a, world.cp_b):
            create_connector(SYSTEM, connector_id=1, connector_cp_id=cp_id, source="api")
        cp_a = db.session.get(ChargePoint, world.cp_a)
        cp_b = db.session.get(ChargePoint, world.cp_b)
        going, _ = charging.start_transaction(
            cp_a,
            connector_id=1,
            id_tag="card-1",
            meter_start=10000,
            timestamp=NOW - timedelta(minutes=30),
        )
        samples = [
            (
                NOW - timedelta(minutes=20),
                [{"value": "11000"}, {"value": "7400", "measurand": "Power.Active.Import"}],
            ),
            (
                NOW - timedelta(minutes=10),
                [{"value": "12500"}, {"value": "7400", "measurand": "Power.Active.Import"}],
            ),
        ]
        charging.record_meter_values(cp_a.id, 1, going.id, samples)
        past, _ = charging.start_transaction(
            cp_b,
            connector_id=1,
            id_tag="=SUM(A1)",
            meter_start=0,
            timestamp=NOW - timedelta(days=2),
        )
        charging.stop_transaction(
            cp_b,
            transaction_id=past.id,
            meter_stop=20000,
            timestamp=NOW - timedelta(days=2) + timedelta(hours=2),
        )
        db.session.commit()
        return going.id, past.id


def test_a_charging_row_shows_the_session_energy_and_the_power_now(as_user, world, charging_now):
    page = as_user("admin@example.com").text(f"/chargepoints/{world.cp_a}")
    row = page.split(f'id="connector-{world.cp_a}-1"')[1].split("</tr>")[0]
    assert "2.50 kWh · 7.4 kW" in row


def test_the_sessions_page_lists_filters_and_exports(as_user, world, charging_now):
    going, past = charging_now
    admin = as_user("admin@example.com")
    page = admin.text("/sessions")
    assert f'id="session-{going}"' in page and f'id="session-{past}"' in page
    only_going = admin.text("/sessions?active=1")
    assert f'id="session-{going}"' in only_going and f'id="session-{past}"' not in only_going
    by_tag = admin.text("/sessions?tag=CARD-1")
    assert f'id="session-{going}"' in by_tag and f'id="session-{past}"' not in by_tag
    # To the past session's day: the one going started 30 minutes ago, which is yesterday
    # from midnight to half past (a window to yesterday failed then).
    by_day = admin.text(
        f"/sessions?from={(NOW - timedelta(days=3)).date()}&to={(NOW - timedelta(days=2)).date()}"
    )
    assert f'id="session-{past}"' in by_day and f'id="session-{going}"' not in by_day
    rows = list(csv.DictReader(io.StringIO(admin.text("/sessions.csv"))))
    by_id = {int(row["transaction_id"]): row for row in rows}
    assert by_id[past]["energy_wh"] == "20000" and by_id[past]["active"] == "no"
    assert by_id[past]["id_tag"] == "'=SUM(A1)"  # never a formula in a spreadsheet
    assert by_id[going]["active"] == "yes"


def test_company_users_see_only_their_companys_sessions(as_user, world, charging_now):
    going, past = charging_now
    page = as_user("a@example.com").text("/sessions")
    assert f'id="session-{going}"' in page and f'id="session-{past}"' not in page
    export = as_user("a@example.com").text("/sessions.csv")
    assert "CP-B" not in export
    assert "CP-B" not in as_user("a@example.com").text(f"/sessions?company={world.company_b}")


def test_the_connector_page_shows_the_session_going_on_with_its_chart(as_user, world, charging_now):
    page = as_user("admin@example.com").text(f"/chargepoints/{world.cp_a}/connectors/1")
    assert 'id="current-session"' in page and "card-1" in page
    assert '<dd id="session-energy">2.50 kWh</dd>' in page
    assert '<dd id="session-power">7.4 kW</dd>' in page
    assert 'id="session-chart"' in page and "polyline" in page
    assert "Recent sessions" in page


def test_id_tags_administration(app, as_user, world):
    admin = as_user("admin@example.com")
    assert (
        post(
            admin,
            "/admin/idtags",
            {"action": "mode", "company_id": str(world.company_a), "mode": "list"},
        ).status_code
        == 302
    )
    response = post(
        admin,
        "/admin/idtags",
        {"action": "add", "company_id": str(world.company_a), "tag": "x" * 21},
    )
    assert response.status_code == 422 and 'id="tag-error"' in response.get_data(as_text=True)
    response = post(
        admin,
        "/admin/idtags",
        {
            "action": "add",
            "company_id": str(world.company_a),
            "tag": "Card-1",
            "status": "Blocked",
            "expiry_date": "2030-01-31",
            "note": "lost",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        db.session.add(
            IdTag(company_id=world.company_a, tag="seen-1", tag_key="SEEN-1", registered=False)
        )
        db.session.commit()
        card = db.session.scalar(db.select(IdTag).where(IdTag.tag_key == "CARD-1"))
        seen = db.session.scalar(db.select(IdTag).where(IdTag.tag_key == "SEEN-1"))
        assert db.session.get(Company, world.company_a).authorization_mode == "list"
        assert (card.status, card.expiry.date().isoformat(), card.note) == (
            "Blocked",
            "2030-01-31",
            "lost",
        )
    page = admin.text("/admin/idtags")
    assert "seen only" in page and "Card-1" in page
    post(admin, "/admin/idtags", {"action": "adopt", "idtag_id": str(seen.id)})
    post(
        admin, "/admin/idtags", {"action": "status", "idtag_id": str(card.id), "status": "Accepted"}
    )
    post(admin, "/admin/idtags", {"action": "delete", "idtag_id": str(seen.id)})
    with app.app_context():
        assert db.session.get(IdTag, card.id).status == "Accepted"
        assert db.session.get(IdTag, seen.id) is None
    assert as_user("a@example.com").get("/admin/idtags").status_code == 403
