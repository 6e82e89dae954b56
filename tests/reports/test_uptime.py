"""The uptime arithmetic on constructed histories, on both backends. Each expectation is
worked out by hand in minutes: September 2026 has 30 × 1,440 = 43,200 minutes, October
44,640, the year 2025 525,600."""

from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.services import uptime
from dashboard.services.permissions import SYSTEM
from tests.reports.conftest import Histories, at

SEPTEMBER = (at("2026-09-01 00:00"), at("2026-10-01 00:00"))
OCTOBER = (at("2026-10-01 00:00"), at("2026-11-01 00:00"))
NOW = at("2026-11-27 12:00")


def _report(cp_id, period, number=None):
    results = uptime.report(
        SYSTEM, uptime.Scope(cp_id=cp_id, connector_id=number), *period, outages=True, now=NOW
    )
    return {result.connector_id: result for result in results}


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 6)


@pytest.fixture
def h(app, world):
    with app.app_context():
        yield Histories()
        db.session.rollback()


def _connected_port(h, cp_id, number=1, since="2026-08-31 00:00"):
    h.port(cp_id, number, since)
    h.log(cp_id, since, "connected")
    h.status(cp_id, number, since, "Available")


def test_offline_and_stale_spans_are_outages(h, world):
    cp = world.cp_a
    _connected_port(h, cp)
    h.log(cp, "2026-09-10 10:00", "disconnected")
    h.log(cp, "2026-09-10 12:30", "connected")  # 150 minutes offline
    h.log(cp, "2026-09-20 00:00", "stale")
    h.log(cp, "2026-09-20 00:45", "back")  # 45 minutes stale
    h.status(cp, 1, "2026-09-25 08:00", "Charging")  # up
    h.status(cp, 1, "2026-09-25 09:00", "Finishing")  # up
    port = _report(cp, SEPTEMBER)[1]
    assert _minutes(port.seconds) == 43_200
    assert _minutes(port.outage_seconds) == 195
    assert port.excluded_seconds == 0
    assert [(o.cause, _minutes(o.seconds)) for o in port.outages] == [
        ("offline", 150),
        ("stale", 45),
    ]
    assert port.uptime == pytest.approx((43_200 - 195) / 43_200 * 100)
    assert port.meets_target


def test_a_fault_across_a_month_boundary_counts_in_each_month(h, world):
    cp = world.cp_a
    _connected_port(h, cp)
    h.status(cp, 1, "2026-09-30 23:00", "Faulted", "GroundFailure")
    h.status(cp, 1, "2026-10-01 01:00", "Available")
    september = _report(cp, SEPTEMBER)[1]
    [fault] = september.outages
    assert (fault.cause, fault.error_code, _minutes(fault.seconds)) == (
        "faulted",
        "GroundFailure",
        60,
    )
    assert fault.lasts and not fault.began_before
    october = _report(cp, OCTOBER)[1]
    [rest] = october.outages
    assert _minutes(rest.seconds) == 60 and rest.began_before and not rest.lasts
    assert october.uptime == pytest.approx((44_640 - 60) / 44_640 * 100)


def test_excluded_maintenance_does_not_count(h, world):
    cp = world.cp_a
    _connected_port(h, cp)
    h.status(cp, 1, "2026-09-05 08:00", "Unavailable")
    h.status(cp, 1, "2026-09-05 12:00", "Available")  # 240 minutes out
    uptime.exclude(
        SYSTEM,
        cp,
        1,
        starts=at("2026-09-05 08:00"),
        ends=at("2026-09-05 11:00"),  # 180 of them excluded
        cause="maintenance",
        reason="Cable replaced",
        now=NOW,
    )
    port = _report(cp, SEPTEMBER)[1]
    assert (_minutes(port.outage_seconds), _minutes(port.excluded_seconds)) == (240, 180)
    [outage] = port.outages
    assert outage.excluded and [e.reason for e in outage.exclusions] == ["Cable replaced"]
    assert port.uptime == pytest.approx((43_200 - (240 - 180)) / 43_200 * 100)


def test_an_exclusion_of_the_whole_charge_point_covers_each_port_and_overlaps_count_once(h, world):
    cp = world.cp_a
    _connected_port(h, cp, 1)
    _connected_port(h, cp, 2)
    h.log(cp, "2026-09-12 00:00", "disconnected")
    h.log(cp, "2026-09-12 06:00", "connected")  # 360 minutes offline, both ports
    for starts, ends in (
        ("2026-09-11 22:00", "2026-09-12 02:00"),
        ("2026-09-12 01:00", "2026-09-12 03:00"),
    ):
        uptime.exclude(
            SYSTEM,
            cp,
            None,
            starts=at(starts),
            ends=at(ends),
            cause="utility",
            reason="Grid outage",
            now=NOW,
        )
    ports = _report(cp, SEPTEMBER)
    for number in (1, 2):
        # 00:00 to 03:00 covered (the overlap once): 180 of the 360 minutes.
        assert _minutes(ports[number].excluded_seconds) == 180
        assert _minutes(ports[number].outage_seconds) == 360


def test_a_port_created_mid_month_is_measured_from_its_creation(h, world):
    cp = world.cp_a
    h.log(cp, "2026-08-31 00:00", "connected")
    h.port(cp, 1, "2026-09-16 00:00")
    h.status(cp, 1, "2026-09-16 00:00", "Available")
    h.status(cp, 1, "2026-09-20 10:00", "Faulted", "OverVoltage")
    h.status(cp, 1, "2026-09-20 12:00", "Available")
    port = _report(cp, SEPTEMBER)[1]
    assert _minutes(port.seconds) == 15 * 1440  # 21,600
    assert port.start == at("2026-09-16 00:00")
    assert port.uptime == pytest.approx((21_600 - 120) / 21_600 * 100)


def test_an_unknown_start_is_out_until_the_first_status(h, world):
    cp = world.cp_a
    h.port(cp, 1, "2026-08-01 00:00")
    h.log(cp, "2026-08-01 00:00", "connected")
    h.status(cp, 1, "2026-09-03 06:00", "Available")  # the first status ever
    port = _report(cp, SEPTEMBER)[1]
    [outage] = port.outages
    assert outage.cause == "unknown"
    assert _minutes(outage.seconds) == 2 * 1440 + 360  # 3,240
    assert port.uptime == pytest.approx((43_200 - 3_240) / 43_200 * 100)
    assert not port.meets_target


def test_no_connection_known_is_offline_and_the_charge_point_status_takes_every_port_out(h, world):
    cp = world.cp_a
    h.port(cp, 1, "2026-08-01 00:00")
    h.port(cp, 2, "2026-08-01 00:00")
    h.status(cp, 1, "2026-08-01 00:00", "Available")
    h.status(cp, 2, "2026-08-01 00:00", "Available")
    h.log(cp, "2026-09-01 12:00", "connected")  # offline (unknown) until then: 720 minutes
    h.log(cp, "2026-09-08 09:00", "status", "Unavailable", "NoError")
    h.log(cp, "2026-09-08 09:30", "status", "Available", "NoError")  # 30 minutes, both ports
    # A fault while offline: the charge point being offline is the cause.
    h.log(cp, "2026-09-09 00:00", "disconnected")
    h.status(cp, 1, "2026-09-09 00:10", "Faulted", "OtherError")
    h.log(cp, "2026-09-09 00:20", "connected")
    h.status(cp, 1, "2026-09-09 00:40", "Available")
    ports = _report(cp, SEPTEMBER)
    assert [(o.cause, _minutes(o.seconds)) for o in ports[1].outages] == [
        ("offline", 720),
        ("chargepoint_unavailable", 30),
        ("offline", 20),
        ("faulted", 20),
    ]
    assert [(o.cause, _minutes(o.seconds)) for o in ports[2].outages] == [
        ("offline", 720),
        ("chargepoint_unavailable", 30),
        ("offline", 20),
    ]


def test_a_year_has_its_own_minutes(h, world):
    cp = world.cp_a
    _connected_port(h, cp, since="2024-12-31 00:00")
    h.status(cp, 1, "2025-03-01 00:00", "Faulted", "PowerMeterFailure")
    h.status(cp, 1, "2025-03-02 04:00", "Available")  # 1,680 minutes
    port = _report(cp, (at("2025-01-01 00:00"), at("2026-01-01 00:00")))[1]
    assert _minutes(port.seconds) == 525_600
    assert port.uptime == pytest.approx((525_600 - 1_680) / 525_600 * 100)


def test_a_period_not_over_is_measured_up_to_now(h, world):
    cp = world.cp_a
    _connected_port(h, cp)
    port = _report(cp, (at("2026-11-01 00:00"), at("2026-12-01 00:00")))[1]
    assert port.end == NOW
    assert _minutes(port.seconds) == 26 * 1440 + 720
    assert port.uptime == 100
