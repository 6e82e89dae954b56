"""The overview, the charge point page and the all-connectors list: what each user sees,
fragments for htmx, filters, CSV, and a constant number of queries per page."""

from __future__ import annotations

import csv
import io
import re

import pytest

from dashboard.extensions import db
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.connectors import create_connector, update_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import recorded_statements


@pytest.fixture
def connectors(app, world):
    """Company A: CP-A with 1 Charging (CCS) and 2 Available (Type2). Company B: CP-B with
    1 Faulted (Type2, info starting with '=')."""
    with app.app_context():
        for n, kind in ((1, "CCS"), (2, "Type2")):
            create_connector(
                SYSTEM,
                connector_id=n,
                connector_cp_id=world.cp_a,
                connector_type=kind,
                source="api",
            )
        update_connector(SYSTEM, world.cp_a, 1, connector_status="Charging", source="api")
        create_connector(
            SYSTEM,
            connector_id=1,
            connector_cp_id=world.cp_b,
            connector_type="Type2",
            connector_status="Faulted",
            connector_error_code="GroundFailure",
            source="api",
        )
        from dashboard.models import Connector

        db.session.get(Connector, (1, world.cp_b)).info = "=HYPERLINK(1)"
        db.session.commit()


def test_overview_lists_visible_chargepoints_with_summary(as_user, connectors):
    page = as_user("admin@example.com").text("/")
    assert 'id="chargepoint-1"' in page and 'id="chargepoint-2"' in page
    assert "status-charging" in page and "status-faulted" in page
    assert "Company B" in page


def test_company_user_sees_only_own_company_everywhere(as_user, world, connectors):
    browser = as_user("a@example.com")
    overview = browser.text("/")
    assert "CP-A" in overview and "CP-B" not in overview and "Company B" not in overview
    listing = browser.text("/connectors")
    assert f'id="connector-{world.cp_a}-1"' in listing
    assert f'id="connector-{world.cp_b}-1"' not in listing
    assert 'class="warn">GroundFailure' not in listing
    # Filters that name the other company change nothing.
    assert "CP-B" not in browser.text(f"/connectors?company={world.company_b}")
    assert "CP-B" not in browser.text(f"/?company={world.company_b}")
    export = browser.text("/connectors.csv")
    assert "CP-A" in export and "CP-B" not in export
    other = browser.get(f"/chargepoints/{world.cp_b}")
    missing = browser.get("/chargepoints/999")
    assert other.status_code == missing.status_code == 404
    assert "CP-B" not in other.get_data(as_text=True)


def test_company_user_sees_no_company_filter(as_user, connectors):
    assert 'name="company"' not in as_user("a@example.com").text("/connectors")
    assert 'name="company"' in as_user("admin@example.com").text("/connectors")


def test_htmx_request_gets_the_fragment(as_user, connectors):
    browser = as_user("admin@example.com")
    response = browser.get("/connectors?status=Charging", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]
    assert fragment.lstrip().startswith('<div id="connector-table"') and "<html" not in fragment
    assert "status-charging" in fragment and "status-faulted" not in fragment
    boosted = browser.get("/connectors", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=Charging", {"A-1"}),
        ("status=Available", {"A-2"}),
        ("error_code=GroundFailure", {"B-1"}),
        ("type=Type2", {"A-2", "B-1"}),
        ("enabled=no", set()),
        ("enabled=yes", {"A-1", "A-2", "B-1"}),
        ("q=cp-b", {"B-1"}),
        ("status=Nonsense", {"A-1", "A-2", "B-1"}),
        ("q=cp-%00b&type=%00", {"B-1"}),  # NUL, which PostgreSQL refuses, is dropped
    ],
)
def test_connector_filters(as_user, world, connectors, query, expected):
    page = as_user("admin@example.com").text(f"/connectors?{query}")
    ids = {
        "A-1": f"connector-{world.cp_a}-1",
        "A-2": f"connector-{world.cp_a}-2",
        "B-1": f"connector-{world.cp_b}-1",
    }
    assert {name for name, element in ids.items() if f'id="{element}"' in page} == expected


@pytest.mark.parametrize("path", ["/?q=%00", "/connectors.csv?q=%00&type=%00"])
def test_a_nul_character_in_a_filter_is_no_error(as_user, connectors, path):
    as_user("admin@example.com").text(path)  # 200, body read


def test_a_csv_download_stopped_early_gives_its_cursor_back(as_user, connectors):
    response = as_user("admin@example.com").get("/connectors.csv")
    chunks = iter(response.response)
    assert next(chunks).startswith(b"chargepoint_identity,")
    response.close()  # the client went away: no cursor is left for the garbage collector


def test_filters_survive_in_the_page_and_the_export_link(as_user, connectors):
    page = as_user("admin@example.com").text("/connectors?status=Charging&type=CCS")
    assert "<option selected>Charging</option>" in page
    assert 'value="CCS"' in page
    assert "/connectors.csv?status=Charging&amp;type=CCS" in page


def test_csv_export_has_every_row_of_the_filter_and_defuses_formulas(as_user, connectors):
    response = as_user("admin@example.com").get("/connectors.csv?type=Type2")
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["chargepoint_identity"], r["connector_id"]) for r in rows] == [
        ("CP-A", "2"),
        ("CP-B", "1"),
    ]
    assert rows[1]["info"] == "'=HYPERLINK(1)"
    assert rows[1]["company"] == "Company B"


def test_chargepoint_page_shows_details_and_connectors(as_user, world, connectors):
    page = as_user("a@example.com").text(f"/chargepoints/{world.cp_a}")
    assert "A one" in page and "CP-A" in page
    assert f'id="connector-{world.cp_a}-1"' in page and f'id="connector-{world.cp_a}-2"' in page
    assert "offline" in page


def test_empty_states(as_user):
    page = as_user("b@example.com").text("/connectors?status=Charging")
    assert "No connector matches these filters." in page


def test_overview_connection_filter(app, as_user, world):
    from dashboard.models import ChargePoint
    from dashboard.models.types import utcnow

    with app.app_context():
        cp = db.session.get(ChargePoint, world.cp_a)
        cp.connected_since = cp.last_seen = utcnow()
        db.session.commit()
    browser = as_user("admin@example.com")
    online = browser.text("/?connection=online")
    assert "CP-A" in online and "CP-B" not in online
    offline = browser.text("/?connection=offline")
    assert "CP-B" in offline and "CP-A" not in offline


def test_unknown_page_is_404_in_the_layout(as_user):
    response = as_user("a@example.com").get("/nothing-here")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "404 · Not Found" in page and "Plugboard" in page


def test_pages_send_security_headers(as_user):
    response = as_user("a@example.com").get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def _count_queries(app, browser, path) -> int:
    with recorded_statements(app) as statements:
        browser.text(path)
    return len(statements)


def _add(app, world, how_many: int, start: int) -> None:
    with app.app_context():
        for n in range(start, start + how_many):
            cp = create_chargepoint(SYSTEM, identity=f"EXTRA-{n}", company_id=world.company_a)
            for c in (1, 2):
                create_connector(SYSTEM, connector_id=c, connector_cp_id=cp.id, source="api")
        db.session.commit()


@pytest.mark.parametrize("path", ["/", "/connectors"])
def test_queries_per_page_do_not_grow_with_rows(app, as_user, world, path):
    browser = as_user("admin@example.com")
    _add(app, world, 2, 0)
    few = _count_queries(app, browser, path)
    _add(app, world, 15, 100)
    many = _count_queries(app, browser, path)
    assert few == many


def test_the_connector_timeline_spans_its_time_and_says_what_it_covers(as_user, world, connectors):
    page = as_user("admin@example.com").text(f"/chargepoints/{world.cp_a}/connectors/1")
    # The hours before the first status are a band of their own, the statuses after it.
    bands = re.findall(r'<rect class="fill-(\w+)" x="([\d.e-]+)" y="0" width="([\d.e-]+)"', page)
    timeline = bands[: page.split('id="timeline"')[1].count("<rect")]
    assert timeline[0][0] == "nodata" and float(timeline[0][1]) == 0
    end = float(timeline[-1][1]) + float(timeline[-1][2])
    assert abs(end - 1000) < 0.01  # together they span the whole period
    assert "Statuses known for" in page and "of the last 24h" in page
    assert "nothing was recorded before" in page
