"""Benchmark of events for integrations: StatusNotifications ingested while every change is
fanned out as a signed webhook, against the same run without webhooks.

PostgreSQL, gunicorn with 2 gevent workers and Redis, N charge points of 10 companies
sending StatusNotifications at a total rate (the lean load generator of bench/fleet.py,
bench/fleet_client.py: raw pre-serialised frames, its own CPU reported). First run: no webhook
endpoint. Second run: one endpoint per company (10), each wanting
`connector.status_changed`, served by asyncio receivers in their own process
(bench/webhook_receiver.py). Prints the ingest throughput of both runs and their ratio,
and for the second, the p50 / p95 / p99 from an event's commit (its timestamp, taken just
before the commit) to its receipt, overall and per 5 s of the run (a lag that grows shows
deliveries falling behind), and how many events arrived of those committed. Goals:
p95 under 1 s; throughput within 10 % of the run without webhooks.

    .venv/bin/python bench/events.py [--count 1000] [--rate 1000] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, clean_up, database, free_port, serve
from fleet_client import WINDOW, quantile
from ocpp_load import PREFIX, fill

from dashboard import create_app
from dashboard.cli import create_company
from dashboard.extensions import db
from dashboard.models import ChargePoint, OutboxEvent, WebhookDelivery, WebhookEndpoint
from dashboard.services.outbox import last_event_id
from dashboard.services.webhooks import new_secret

COMPANIES = 10


def spread(url: str) -> list[int]:
    """The charge points of the load, shared among 10 companies; returns their ids."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        first = db.session.scalar(db.select(ChargePoint.company_id).limit(1))
        companies = [first] + [create_company(f"Events {n}").id for n in range(2, COMPANIES + 1)]
        for index, company_id in enumerate(companies):
            db.session.execute(
                db.update(ChargePoint)
                .where(ChargePoint.id % COMPANIES == index)
                .values(company_id=company_id)
            )
        db.session.commit()
        return companies


def add_endpoints(url: str, companies: list[int], ports: list[int]) -> None:
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        start = last_event_id()
        for company_id, port in zip(companies, ports, strict=True):
            db.session.add(
                WebhookEndpoint(
                    company_id=company_id,
                    url=f"http://127.0.0.1:{port}/hook",
                    event_types=["connector.status_changed"],
                    secret=new_secret(),
                    cursor=start,
                )
            )
        db.session.commit()


def committed_since(url: str, after: int) -> int:
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        return db.session.scalar(
            db.select(db.func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.id > after, OutboxEvent.type == "connector.status_changed")
        )


def run_client(url: str, args, run: str) -> dict:
    """The lean load generator for one step of `args.duration` seconds at `args.rate`,
    after connecting every charge point at `args.ramp` a second: its figures."""
    start_at = time.time() + args.count / args.ramp + 10
    command = [
        str(ROOT / ".venv/bin/python"),
        str(ROOT / "bench/fleet_client.py"),
        *("--url", url, "--prefix", PREFIX, "--count", str(args.count)),
        *("--connectors", str(args.connectors), "--ramp", str(args.ramp)),
        *("--start-at", str(start_at), "--steps", f"{args.rate}:{args.duration}"),
        *("--run", run),
    ]
    timeout = start_at - time.time() + args.duration + 120
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"load client failed:\n{result.stderr[-3000:]}")
    connect, step = (json.loads(line) for line in result.stdout.splitlines() if line[:1] == "{")
    if connect["connected"] < args.count:
        raise RuntimeError(f"only {connect['connected']} of {args.count} charge points connected")
    return {
        "per_second": step["acked"] / args.duration,
        "p50_ms": step["p50_ms"],
        "p99_ms": step["p99_ms"],
        "errors": step["errors"],
        "client_cpu": step["client_cpu"] / (args.duration + 2),
    }


def round_trips(url: str, after: int) -> str:
    """From the delivery log: per WINDOW seconds, the deliveries made a second and their
    mean round trip (from the request sent to the answer read, as the worker saw it)."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        rows = db.session.execute(
            db.select(WebhookDelivery.created, WebhookDelivery.duration_ms)
            .where(WebhookDelivery.event_id > after)
            .order_by(WebhookDelivery.id)
        ).all()
    if not rows:
        return "-"
    first = min(created for created, _ in rows)
    windows: dict[int, list[int]] = {}
    for created, duration in rows:
        windows.setdefault(int((created - first).total_seconds() // WINDOW), []).append(duration)
    return ", ".join(
        f"{len(windows.get(n, [])) / WINDOW:.0f}/s at "
        f"{sum(windows.get(n, [0])) / max(1, len(windows.get(n, []))):.1f} ms"
        for n in range(max(windows) + 1)
    )


def sessions(url: str) -> int:
    """PostgreSQL sessions opened so far in the database: connections a pool opened (and
    closed again) beyond its size show here."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        count = db.session.scalar(
            db.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        )
        db.engine.dispose()
        return count


def lag_by_window(arrivals: list) -> str:
    """The p95 from commit to receipt of the events committed in each WINDOW seconds."""
    if not arrivals:
        return "-"
    first = min(sent for _, sent, _ in arrivals)
    windows: dict[int, list[float]] = {}
    for _, sent, latency in arrivals:
        windows.setdefault(int((sent - first) // WINDOW), []).append(latency)
    return ", ".join(
        f"{quantile(windows.get(n, []), 0.95) * 1000:.0f} ms" for n in range(max(windows) + 1)
    )


def figures(run: dict) -> str:
    return (
        f"{run['per_second']:.0f} acknowledged/s, p50 {run['p50_ms']:.0f} ms, "
        f"p99 {run['p99_ms']:.0f} ms, {run['errors']} errors; load generator "
        f"{run['client_cpu'] * 100:.0f} % of a core"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="charge points")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1000, help="StatusNotifications/s")
    parser.add_argument("--ramp", type=float, default=200, help="connections per second")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.mix = "status"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-events-bench-"))
    url, server = database("postgresql", workdir)
    process = receivers = None
    env_networks = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32"}
    try:
        fill(url, args.count)
        companies = spread(url)
        print(
            f"{args.count} charge points of {COMPANIES} companies × {args.connectors} "
            f"connectors, {args.rate:.0f} StatusNotifications/s offered for "
            f"{args.duration:.0f} s; gunicorn {args.workers} gevent workers, PostgreSQL, Redis"
        )
        process, port = serve(url, args.workers, workdir / "off.log", env_networks)
        off = run_client(f"ws://127.0.0.1:{port}/ocpp", args, "off")
        process.terminate()
        process.wait(timeout=30)
        process = None
        print(f"webhooks off: {figures(off)}")

        ports = [free_port() for _ in companies]
        receivers = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/python"),
                str(ROOT / "bench/webhook_receiver.py"),
                *map(str, ports),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        receivers.stdout.readline()
        add_endpoints(url, companies, ports)
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            start = last_event_id()
        process, port = serve(url, args.workers, workdir / "on.log", env_networks)
        opened = sessions(url)
        on = run_client(f"ws://127.0.0.1:{port}/ocpp", args, "on")
        opened = sessions(url) - opened - 1
        committed = committed_since(url, start)
        time.sleep(3)  # the last deliveries
        receivers.send_signal(signal.SIGTERM)
        arrivals = json.loads(receivers.stdout.readline())["arrivals"]
        receivers.wait(timeout=10)
        receivers = None
        latencies = [latency for _, _, latency in arrivals]
        distinct = len({event_id for event_id, _, _ in arrivals})
        print(f"webhooks on: {figures(on)}; {opened} PostgreSQL sessions opened meanwhile")
        print(
            f"deliveries: {distinct} of {committed} committed connector.status_changed events "
            f"received ({len(arrivals) - distinct} repeats) by {len(ports)} endpoints; "
            "commit to receipt "
            + ", ".join(f"p{q} {quantile(latencies, q / 100) * 1000:.0f} ms" for q in (50, 95, 99))
        )
        print("commit to receipt per 5 s of the run, p95: " + lag_by_window(arrivals))
        print("deliveries per 5 s of the run (log): " + round_trips(url, start))
        ratio = on["per_second"] / off["per_second"]
        print(f"ingest with webhooks / without: {ratio:.2f}")
        p95_ok = quantile(latencies, 0.95) < 1.0
        print(
            f"goals: p95 commit to receipt < 1 s: {'met' if p95_ok else 'NOT met'}; "
            f"throughput within 10 %: {'met' if ratio >= 0.9 else 'NOT met'}; "
            f"every event received: {'yes' if distinct >= committed else 'NO'}"
        )
        return 0
    finally:
        clean_up((process, receivers), server, workdir)


if __name__ == "__main__":
    sys.exit(main())
