"""Daily aggregates: a report over months adds them up and gives the same figures as the
computation from the history, also after late history reached a day already aggregated."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from dashboard.extensions import db
from dashboard.models import JobMark, UptimeDay, UptimeDirty
from dashboard.models.types import utcnow
from dashboard.services import uptime
from dashboard.services.connectors import record_ocpp_status
from dashboard.services.permissions import SYSTEM
from tests.reports.conftest import Histories, at

NOW = at("2026-10-03 12:00")


@pytest.fixture
def h(app, world):
    with app.app_context():
        yield Histories()
        db.session.rollback()


def _aggregate(now=NOW) -> None:
    """Aggregate until nothing is left: every day over aggregated, no day marked. The test
    servers share this database and aggregate too; while one holds the aggregation, wait
    for it (briefly)."""
    caught_up = (now - uptime.AGGREGATE_GRACE).date()  # the first day not over
    for _ in range(200):
        done = uptime.aggregate_due(now)
        next_day = uptime._next_day()  # None: another process's first aggregation runs
        marked = next_day is not None and db.session.scalar(
            select(func.count()).select_from(UptimeDirty).where(UptimeDirty.day < next_day)
        )
        db.session.commit()
        if not done and next_day is not None and not marked and next_day >= caught_up:
            return
        time.sleep(0.05)
    raise AssertionError("the aggregation stayed held by another process")


def _days_aggregated() -> int:
    """Rows of days before NOW's (a test server, on today's clock, may add later ones)."""
    return db.session.scalar(
        select(func.count()).select_from(UptimeDay).where(UptimeDay.day < NOW.date())
    )


def _figures(results):
    return sorted(
        (
            r.connector_id,
            round(r.seconds),
            round(r.outage_seconds),
            round(r.excluded_seconds),
            r.outage_count,
        )
        for r in results
    )


def _both(cp_id, start, end, now=NOW):
    ports = uptime.ports_in(SYSTEM, uptime.Scope(cp_id=cp_id))
    summed = uptime.summarize(ports, start, end, now=now)
    computed = uptime.compute(ports, start, end, now=now)
    return _figures(summed), _figures(computed)


def _history(h, cp):
    h.port(cp, 1, "2026-08-30 12:00")
    h.port(cp, 2, "2026-09-15 06:00")
    h.log(cp, "2026-08-30 12:00", "connected")
    h.status(cp, 1, "2026-08-30 12:00", "Available")
    h.status(cp, 2, "2026-09-15 06:00", "Available")
    h.status(cp, 1, "2026-08-31 22:00", "Faulted", "GroundFailure")  # into September
    h.status(cp, 1, "2026-09-01 03:00", "Available")
    h.log(cp, "2026-09-10 23:00", "disconnected")
    h.log(cp, "2026-09-11 01:30", "connected")
    h.status(cp, 2, "2026-09-30 20:00", "Unavailable")  # into October, and on
    h.log(cp, "2026-10-03 08:00", "status", "Faulted", "InternalError")
    h.log(cp, "2026-10-03 09:00", "status", "Available", "NoError")
    db.session.commit()


def test_aggregates_give_the_figures_of_the_history(h, world):
    cp = world.cp_a
    _history(h, cp)
    _aggregate()
    days = _days_aggregated()
    # Port 1 from 30 August, port 2 from 15 September, to 2 October (3 October is today).
    assert days == 34 + 18
    for start, end in (
        (at("2026-09-01 00:00"), at("2026-10-01 00:00")),  # whole days
        (at("2026-08-30 17:00"), at("2026-09-11 00:30")),  # parts of days at both ends
        (at("2026-09-01 00:00"), at("2026-11-01 00:00")),  # to today, partly
        (at("2026-09-20 00:00"), at("2026-09-20 00:00") + timedelta(hours=5)),  # within a day
    ):
        summed, computed = _both(cp, start, end)
        assert summed == computed, (start, end)
    september, _ = _both(cp, at("2026-09-01 00:00"), at("2026-10-01 00:00"))
    # Port 1: 3 h of the fault that began in August, 150 minutes offline; port 2 from the
    # 15th at 06:00 (after the offline span), Unavailable from the 30th at 20:00.
    assert september == [
        (1, 30 * 86400, (180 + 150) * 60, 0, 2),
        (2, (15 * 1440 + 18 * 60) * 60, 240 * 60, 0, 1),
    ]


def test_late_history_makes_its_days_aggregated_again(h, world):
    cp = world.cp_a
    _history(h, cp)
    _aggregate()
    # A charge point's buffered StatusNotification arrives late: Faulted from the 20th at
    # 23:00, and nothing after it until the 22nd at 05:00 (so 21 September changes too).
    record_ocpp_status(
        cp,
        connector_id=1,
        status="Faulted",
        error_code="HighTemperature",
        message_id="late-1",
        event_time=at("2026-09-20 23:00"),
    )
    db.session.commit()
    assert db.session.scalars(select(UptimeDirty.day)).all() == [at("2026-09-20 00:00").date()]
    h.status(cp, 1, "2026-09-22 05:00", "Available")
    uptime.touch(cp, at("2026-09-22 05:00"), utcnow())
    db.session.commit()
    _aggregate()
    assert db.session.scalar(select(func.count()).select_from(UptimeDirty)) == 0
    summed, computed = _both(cp, at("2026-09-01 00:00"), at("2026-10-01 00:00"))
    assert summed == computed
    port_1 = summed[0]
    assert port_1[2] == (180 + 150 + 30 * 60) * 60  # the fault: 1,800 minutes
    # An exclusion recorded afterwards is aggregated too.
    uptime.exclude(
        SYSTEM,
        cp,
        1,
        starts=at("2026-09-21 00:00"),
        ends=at("2026-09-21 12:00"),
        cause="vandalism",
        reason="Display smashed",
    )
    db.session.commit()
    _aggregate()
    summed, computed = _both(cp, at("2026-09-01 00:00"), at("2026-10-01 00:00"))
    assert summed == computed and summed[0][3] == 720 * 60


def test_one_process_at_a_time_aggregates(app, world, h, backend):
    _history(h, world.cp_a)
    if backend == "postgresql":  # another process holds the lock: this one does nothing
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": uptime.AGGREGATE_LOCK})
            assert uptime.aggregate_due(NOW) == 0
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": uptime.AGGREGATE_LOCK})
            other.commit()
    assert uptime.aggregate_due(NOW, max_days=5) <= 5  # a backfill goes on in steps
    _aggregate()
    assert _days_aggregated() == 34 + 18


def test_the_twelve_months_add_up_as_each_month_does(h, world):
    cp = world.cp_a
    _history(h, cp)
    _aggregate()
    scope = uptime.Scope(cp_id=cp)
    bars = uptime.monthly(SYSTEM, scope, at("2026-10-01 00:00").date(), count=3, now=NOW)
    assert [bar.start.month for bar in bars] == [8, 9, 10]
    for bar in bars:
        ports = uptime.ports_in(SYSTEM, scope)
        whole = uptime.total(uptime.compute(ports, bar.start, bar.end, now=NOW), bar.start, bar.end)
        assert (round(bar.seconds), round(bar.outage_seconds), bar.outage_count) == (
            round(whole.seconds),
            round(whole.outage_seconds),
            whole.outage_count,
        ), bar.start
    assert bars[1].outage_count == 3  # the fault begun in August, offline, Unavailable


def test_days_the_aggregator_never_saw_are_read_from_the_history(h, world):
    """The aggregator ran before these ports (with history dated earlier) existed: their
    days are not aggregated, and the figures still come out right."""
    _history(h, world.cp_a)
    # The aggregator is past these days already (as if it had run before these ports,
    # with their backdated history, were written).
    db.session.add(JobMark(name=uptime.MARK, at=uptime.midnight(NOW.date())))
    db.session.commit()
    for start, end in (
        (at("2026-09-01 00:00"), at("2026-10-01 00:00")),
        (at("2026-08-30 17:00"), at("2026-10-03 11:00")),
    ):
        summed, computed = _both(world.cp_a, start, end)
        assert summed == computed
        assert summed[0][1] > 0
    bars = uptime.monthly(SYSTEM, uptime.Scope(cp_id=world.cp_a), NOW.date(), count=2, now=NOW)
    ports = uptime.ports_in(SYSTEM, uptime.Scope(cp_id=world.cp_a))
    for bar in bars:
        whole = uptime.total(uptime.compute(ports, bar.start, bar.end, now=NOW), bar.start, bar.end)
        assert round(bar.outage_seconds) == round(whole.outage_seconds) > 0


def test_a_report_as_of_an_earlier_time_adds_no_later_day(h, world):
    """Aggregates of days after the report's `now` (written by a process on a later clock)
    are not counted in it: the month so far ends at `now`."""
    cp = world.cp_a
    _history(h, cp)
    _aggregate(now=NOW + timedelta(days=10))
    scope = uptime.Scope(cp_id=cp)
    bar = uptime.monthly(SYSTEM, scope, NOW.date(), count=1, now=NOW)[0]
    ports = uptime.ports_in(SYSTEM, scope)
    whole = uptime.total(uptime.compute(ports, bar.start, bar.end, now=NOW), bar.start, bar.end)
    assert (round(bar.seconds), round(bar.outage_seconds)) == (
        round(whole.seconds),
        round(whole.outage_seconds),
    )
