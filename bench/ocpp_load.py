"""Load benchmark of the OCPP endpoint as served in production.

Starts a throwaway PostgreSQL, registers N charge points, serves the app with gunicorn
(gevent workers), and runs bench/ocpp_client.py in a separate process: N simulated charge
points connect at a ramp rate, boot, then send StatusNotifications at a total rate. Prints
connections held, acknowledged StatusNotifications per second, p50 / p99 acknowledgement
latency, and checks that every acknowledged status is in the database. Then runs the same
load against a bare asyncio server that acknowledges without storing anything, and prints
the ratio. Goals on 2 cores: 5,000 connections held, none dropped; >= 1,000 persisted
StatusNotifications per second on PostgreSQL.

The measured window starts 5 s after the last charge point connected. The default ramp
(100 connections per second) lets the server finish the connections and boots before it:
the window measures steady ingest. A faster ramp (--ramp 250) measures ingest while the
server is still working off a connect storm, which is slower.

    .venv/bin/python bench/ocpp_load.py [--count 5000] [--rate 1200] [--ramp 100] [--duration 30]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, clean_up, database, serve, start_bare_server

from dashboard import create_app
from dashboard.cli import create_company
from dashboard.extensions import db
from dashboard.models import ChargePoint, Connector, ConnectorStatusHistory, MeterValue
from dashboard.models.types import utcnow
from dashboard.services.permissions import sync_builtin_roles

PREFIX = "LOAD-"


def fill(url: str, count: int, connectors: int = 0) -> None:
    """`count` charge points of one company; with `connectors`, each has that many,
    Available, and has booted before: a fleet that reconnects rather than a new one."""
    from flask_migrate import upgrade

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        sync_builtin_roles()
        company = create_company("Load")
        now = utcnow()
        db.session.execute(
            db.insert(ChargePoint),
            [
                {
                    "identity": f"{PREFIX}{n:05d}",
                    "name": f"Load {n}",
                    "company_id": company.id,
                    "registration_status": "Accepted",
                    "created": now,
                    "updated": now,
                    "last_boot": now if connectors else None,
                }
                for n in range(1, count + 1)
            ],
        )
        if connectors:
            db.session.execute(
                db.insert(Connector),
                [
                    {
                        "connector_cp_id": cp_id,
                        "connector_id": number,
                        "connector_status": "Available",
                        "connector_error_code": "NoError",
                        "connector_created": now,
                        "connector_updated": now,
                    }
                    for cp_id in db.session.scalars(db.select(ChargePoint.id))
                    for number in range(1, connectors + 1)
                ],
            )
        db.session.commit()
        db.engine.dispose()


def stored_statuses(url: str) -> int:
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        count = db.session.scalar(
            db.select(db.func.count())
            .select_from(ConnectorStatusHistory)
            .where(ConnectorStatusHistory.source == "ocpp")
        )
        db.engine.dispose()
        return count


def stored_meter_values(url: str) -> int:
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        count = db.session.scalar(db.select(db.func.count()).select_from(MeterValue))
        db.engine.dispose()
        return count


def run_client(url: str, args) -> dict:
    command = [
        str(ROOT / ".venv/bin/python"),
        str(ROOT / "bench/ocpp_client.py"),
        "--url",
        url,
        "--prefix",
        PREFIX,
        "--count",
        str(args.count),
        "--rate",
        str(args.rate),
        "--ramp",
        str(args.ramp),
        "--duration",
        str(args.duration),
        "--connectors",
        str(args.connectors),
        "--mix",
        args.mix,
    ]
    timeout = args.count / args.ramp + args.duration + 180
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"load client failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(name: str, figures: dict) -> None:
    print(
        f"{name}: connected {figures['connected']}, held at the end "
        f"{figures['held_at_end']}, failed to connect {figures['failed_connects']}, "
        f"dropped {figures['dropped']}, call errors {figures['errors']}"
    )
    print(
        f"{name}: {figures['per_second']:.0f} messages acknowledged per second, "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="charge points")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1200, help="StatusNotifications/s")
    parser.add_argument("--ramp", type=float, default=100, help="connections per second")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--mix",
        choices=["status", "realistic"],
        default="status",
        help="status: StatusNotifications only; realistic: a third of the charge points "
        "charging (MeterValues), statuses on changes, heartbeats",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # gunicorn inherits it

    workdir = Path(tempfile.mkdtemp(prefix="plugboard-ocpp-bench-"))
    url, server = database(args.database, workdir)
    process = bare = None
    try:
        fill(url, args.count)
        process, port = serve(url, args.workers, workdir / "gunicorn.log")
        print(
            f"{args.count} charge points × {args.connectors} connectors, ramp "
            f"{args.ramp:.0f}/s, {args.rate:.0f} messages/s offered ({args.mix} mix) for "
            f"{args.duration:.0f} s; gunicorn {args.workers} gevent workers, "
            f"{args.database}"
        )
        plugboard = run_client(f"ws://127.0.0.1:{port}/ocpp", args)
        process.terminate()
        process.wait(timeout=30)
        process = None
        report("plugboard", plugboard)
        stored, stored_meters = stored_statuses(url), stored_meter_values(url)
        actions = plugboard["by_action"]
        # Every acknowledged StatusNotification, and the boot-time ones, are in the history;
        # every acknowledged MeterValues, its two samples.
        expected = actions.get("StatusNotification", 0)
        expected_meters = actions.get("MeterValues", 0)
        persisted_all = stored >= expected and stored_meters >= 2 * expected_meters
        print(
            f"plugboard: {stored} status rows stored for {expected} acknowledged "
            f"StatusNotifications, {stored_meters} samples for {expected_meters} acknowledged "
            f"MeterValues: {'all persisted' if persisted_all else 'MISSING'}"
        )
        print(f"plugboard: acknowledged by action: {json.dumps(actions)}")

        bare, bare_port = start_bare_server()
        baseline = run_client(f"ws://127.0.0.1:{bare_port}/ocpp", args)
        report("bare asyncio server", baseline)
        ratio = plugboard["per_second"] / baseline["per_second"]
        print(
            f"ratio plugboard / bare: {ratio:.2f} of the throughput, "
            f"p50 latency ×{plugboard['p50_ms'] / baseline['p50_ms']:.1f}"
        )
        goal_connections = plugboard["held_at_end"] >= 5000 and plugboard["dropped"] == 0
        goal_rate = plugboard["per_second"] >= 1000 and persisted_all
        print(
            f"goals: 5,000 held, none dropped: {'met' if goal_connections else 'NOT met'}; "
            f">= 1,000 persisted/s: {'met' if goal_rate else 'NOT met'}"
        )
        return 0
    finally:
        clean_up((process, bare), server, workdir)


if __name__ == "__main__":
    sys.exit(main())
