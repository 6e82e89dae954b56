"""Benchmark of the uptime reports: a year of history for 10,000 ports on PostgreSQL.

5,000 charge points with 2 connectors each (10,000 ports), 10 companies of 1,000 ports,
and for every port about 10 status changes a day for `--days` days (36.5 million rows for
a year), written day by day in time order as a fleet would write them; each charge point
drops off for 10 to 60 minutes about once a week, and reports its own status (connectorId
0) Unavailable for half an hour about once in two months. The history is generated inside
PostgreSQL (deterministic hashes, no random seed to keep).

Then the daily aggregates are computed as the sweep computes them (`aggregate_due`, one
process), timed; then, each timed as the median of 5 runs:
- the monthly report of one company (1,000 ports), the service call and the whole
  /reports page (the month's table and the twelve months' bars); goal under 1 s; and
  the same company's month so far (today computed from the history);
- the twelve-month view of one port (its bars) and the port's page (the bars and the
  month's outages); goal under 100 ms;
and a late StatusNotification for a day already aggregated: aggregated again, the month's
figures from the aggregates equal those from the history.

    .venv/bin/python bench/uptime.py [--ports 10000] [--days 365]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import clean_up, database, fill

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Company, User
from dashboard.models.types import utcnow
from dashboard.services import uptime
from dashboard.services.connectors import record_ocpp_status

PER_CP = 2
COMPANIES = 10
CHANGES_PER_DAY = 10
# The statuses a port moves through, weighted: out (Faulted, Unavailable) 1 in 20.
STATUSES = (
    ["Available"] * 16
    + ["Preparing"] * 4
    + ["Charging"] * 10
    + ["SuspendedEV"] * 2
    + ["Finishing"] * 4
    + ["Faulted", "Unavailable"]
)


def generate(url: str, days: int) -> tuple[float, int]:
    """Write `days` days of history ending today; returns the seconds it took and the
    number of status rows."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    statuses = "(ARRAY[" + ",".join(f"'{s}'" for s in STATUSES) + "])"
    step = 86400 // CHANGES_PER_DAY
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = conn.execute(
            "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
            f"- interval '{days} days'"
        ).fetchone()[0]
        conn.execute("UPDATE connectors SET connector_created = %s", (first,))
        conn.execute(
            "INSERT INTO connectivity_events (cp_id, kind, at) "
            "SELECT id, 'connected', %s FROM chargepoints",
            (first,),
        )
        conn.execute("DROP INDEX ix_history_connector_time")
        conn.execute("DROP INDEX ix_history_message")
        conn.execute("SET session_replication_role = replica")  # no FK trigger per row
        for day in range(days):
            conn.execute(
                f"""
                INSERT INTO connector_status_history
                    (connector_id, connector_cp_id, status, error_code, event_time, received,
                     source, unexpected, applied)
                SELECT connector_id, connector_cp_id, status,
                       CASE WHEN status = 'Faulted' THEN 'GroundFailure' ELSE 'NoError' END,
                       at, at, 'ocpp', false, true
                FROM (
                    SELECT c.connector_id, c.connector_cp_id,
                        {statuses}[1 + ((hashtext(c.connector_cp_id || ':' ||
                            c.connector_id || ':' || %(day)s || ':' || k) & 2147483647)
                            %% {len(STATUSES)})] AS status,
                        %(first)s::timestamptz + (%(day)s * interval '1 day')
                            + (k * {step} + (hashtext(c.connector_cp_id || '/' ||
                              c.connector_id || '/' || %(day)s || '/' || k) & 2147483647) %% {step})
                              * interval '1 second' AS at
                    FROM connectors c CROSS JOIN generate_series(0, {CHANGES_PER_DAY - 1}) k
                ) rows
                ORDER BY at
                """,
                {"day": day, "first": first},
            )
            # About once a week per charge point: offline for 10 to 60 minutes.
            conn.execute(
                """
                INSERT INTO connectivity_events (cp_id, kind, at)
                SELECT id, kind, at FROM (
                    SELECT id, 'disconnected' AS kind,
                        %(first)s::timestamptz + (%(day)s * interval '1 day')
                        + ((hashtext(id || ':' || %(day)s) & 2147483647) %% 80000)
                          * interval '1 second' AS at
                    FROM chargepoints WHERE (hashtext(id || '#' || %(day)s) & 2147483647) %% 7 = 0
                    UNION ALL
                    SELECT id, 'connected',
                        %(first)s::timestamptz + (%(day)s * interval '1 day')
                        + ((hashtext(id || ':' || %(day)s) & 2147483647) %% 80000
                           + 600 + (hashtext(id || '+' || %(day)s) & 2147483647) %% 3000)
                          * interval '1 second'
                    FROM chargepoints WHERE (hashtext(id || '#' || %(day)s) & 2147483647) %% 7 = 0
                    UNION ALL
                    SELECT id, 'status',
                        %(first)s::timestamptz + (%(day)s * interval '1 day')
                        + interval '3 hours'
                    FROM chargepoints WHERE (hashtext(id || '!' || %(day)s) & 2147483647) %% 60 = 0
                ) rows ORDER BY at
                """,
                {"day": day, "first": first},
            )
        conn.execute(
            "UPDATE connectivity_events SET status = 'Unavailable', error_code = 'NoError' "
            "WHERE kind = 'status'"
        )
        conn.execute(
            "INSERT INTO connectivity_events (cp_id, kind, at, status, error_code) "
            "SELECT cp_id, 'status', at + interval '30 minutes', 'Available', 'NoError' "
            "FROM connectivity_events WHERE kind = 'status' AND status = 'Unavailable'"
        )
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX ix_history_connector_time ON connector_status_history "
            "(connector_cp_id, connector_id, event_time)"
        )
        conn.execute(
            "CREATE INDEX ix_history_message ON connector_status_history "
            "(connector_cp_id, message_id)"
        )
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute("SELECT count(*) FROM connector_status_history").fetchone()[0]
    return time.perf_counter() - started, rows


def median_ms(job, runs: int = 5) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        job()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def verdict(value: float, goal: float) -> str:
    return "met" if value < goal else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-uptime-bench-"))
    url, server = database("postgresql", workdir)
    try:
        chargepoints = args.ports // PER_CP
        fill(url, chargepoints, PER_CP, companies=COMPANIES)
        seconds, rows = generate(url, args.days)
        print(
            f"history: {rows:,} status rows for {args.ports:,} ports over {args.days} days, "
            f"written in {seconds:.0f} s"
        )
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        with app.app_context():
            started = time.perf_counter()
            days = 0
            while done := uptime.aggregate_due():
                days += done
            took = time.perf_counter() - started
            print(
                f"aggregates: {days} days x {args.ports:,} ports in {took:.0f} s "
                f"({days * args.ports / took:,.0f} port-days/s, one process)"
            )
            measure(app)
    finally:
        clean_up((), server, workdir)


def measure(app) -> None:
    admin = db.session.scalar(db.select(User).where(User.email == "bench@example.com"))
    company = db.session.scalar(db.select(Company).order_by(Company.id).limit(1))
    today = utcnow().date()
    last_month = uptime.month_start((uptime.month_start(today) - timedelta(days=1)).date())
    month = (last_month, uptime.next_month(last_month))
    scope = uptime.Scope(company_id=company.id)
    ports = uptime.ports_in(admin, scope)
    report_ms = median_ms(lambda: uptime.report(admin, scope, *month))
    whole = uptime.total(uptime.report(admin, scope, *month), *month)
    print(
        f"monthly report of one company ({len(ports):,} ports, {last_month:%B %Y}): "
        f"{report_ms:.0f} ms (service), uptime of them all {whole.uptime:.2f} %"
    )
    this_month = (uptime.month_start(today), uptime.next_month(uptime.month_start(today)))
    current_ms = median_ms(lambda: uptime.report(admin, scope, *this_month))
    print(
        f"this month so far, same company: {current_ms:.0f} ms (service; today's part "
        "from the history)"
    )
    cp_id, number = ports[0][0], ports[0][1]
    port = uptime.Scope(cp_id=cp_id, connector_id=number)
    year_ms = median_ms(lambda: uptime.monthly(admin, port, last_month.date()))
    outages_ms = median_ms(lambda: uptime.report(admin, port, *month, outages=True))
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = admin.get_id()
        session["_fresh"] = True
    page = f"/reports?month={last_month:%Y-%m}"
    company_page_ms = median_ms(lambda: _ok(client.get(f"{page}&company={company.id}")))
    port_page_ms = median_ms(lambda: _ok(client.get(f"{page}&cp={cp_id}&port={number}")))
    print(f"twelve months of one port: {year_ms:.1f} ms (service)")
    print(f"one port's outages of a month: {outages_ms:.1f} ms (service)")
    print(f"pages: company {company_page_ms:.0f} ms, port {port_page_ms:.0f} ms")
    print()
    print(
        f"goal: monthly company report < 1000 ms: service {report_ms:.0f} ms "
        f"({verdict(report_ms, 1000)}), "
        f"page {company_page_ms:.0f} ms ({verdict(company_page_ms, 1000)})"
    )
    print(
        f"goal: 12-month view of one port < 100 ms: service {year_ms:.1f} ms "
        f"({verdict(year_ms, 100)}), page {port_page_ms:.0f} ms ({verdict(port_page_ms, 100)})"
    )
    late(admin, cp_id, number, month)


def _ok(response) -> None:
    assert response.status_code == 200, response.status_code


def late(admin, cp_id: int, number: int, month) -> None:
    """Two late StatusNotifications (Faulted, then Available 30 minutes later) in an up
    stretch ten days into last month: its day is aggregated again, the month's outage
    minutes grow by 30, and the figures from the aggregates equal those from history."""
    port = uptime.Scope(cp_id=cp_id, connector_id=number)
    before = uptime.report(admin, port, *month)[0]
    day = month[0] + timedelta(days=10)
    [detail] = uptime.report(admin, port, day, day + timedelta(days=1), outages=True)
    moment, gap = day, timedelta(minutes=31)
    for outage in detail.outages:  # the first up stretch of 31 minutes or more
        if outage.start - moment >= gap:
            break
        moment = max(moment, outage.end)
    for offset, status in ((1, "Faulted"), (31, "Available")):
        record_ocpp_status(
            cp_id,
            connector_id=number,
            status=status,
            error_code="HighTemperature" if status == "Faulted" else "NoError",
            message_id=f"bench-late-{offset}",
            event_time=moment + timedelta(minutes=offset),
        )
    db.session.commit()
    started = time.perf_counter()
    uptime.aggregate_due()
    took = (time.perf_counter() - started) * 1000
    summed = uptime.report(admin, port, *month)[0]
    computed = uptime.report(admin, port, *month, outages=True)[0]
    same = round(summed.outage_seconds) == round(computed.outage_seconds)
    grown = round((summed.outage_seconds - before.outage_seconds) / 60)
    print(
        f"late events: aggregated again in {took:.0f} ms; the month's outage minutes "
        f"{before.outage_seconds / 60:.0f} -> {summed.outage_seconds / 60:.0f} (+{grown}, "
        f"expected +30); from the history: {computed.outage_seconds / 60:.0f} "
        f"({'equal' if same else 'DIFFERENT'})"
    )


if __name__ == "__main__":
    main()
