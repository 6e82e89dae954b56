"""Fleet benchmark: 10,000 charge points on PostgreSQL, 2 gevent workers and Redis, driven by
a lean load generator (bench/fleet_client.py: raw pre-serialised frames, several
processes), beside the bare asyncio server (bench/bare_server.py) in the same run.

For each server: the fleet connects as after a restart (a reconnect storm: each charge
point at a uniform random time within `--storm` seconds; it boots and reports every
connector); then a third of the charge points start a charging session (`--sessions`
seconds: a StartTransaction each, spread over the step); then the steady state of the
fleet (`--steady` seconds: heartbeats every 60 s, a status change per connector every 2
minutes, MeterValues of energy and power every 30 s for the third charging, in their
sessions) while `--browsers` signed-in browser sockets of the fleet's company watch
the connectors list and `--probes` more charge points send StatusNotifications whose
fragments the browsers time (live latency, as bench/live_latency.py measures it; each
browser's page shows the probes' rows and says so, as the page's script does, so the
fleet's rows come as stubs); then
StatusNotifications are offered in steps of rising rate; last, a deploy (`--deploy`
seconds at `--deploy-rate`): 5 s in, gunicorn is reloaded (SIGHUP), its old workers close
every charge point socket with 1012 and the charge points come back within 30 s each
(uniform jitter, as in a storm).
Prints, per step and server, what was acknowledged per second with p50 / p99, the worker
CPU per acknowledged message (from /proc; for Plugboard also PostgreSQL's), and the load
generator's own CPU; then the capacity of each (the highest step acknowledged at ≥ 98 % of
what was offered with p99 under 1 s; a server that holds the top step has its limit above
it, said so, and the ratio is then a bound, not a measure), Plugboard's against the bare
server's and against 2,000 persisted/s; every acknowledged status checked in the
database; and the resident memory per 1,000 connected charge points per worker; for the
deploy, the sockets closed with 1012, how many came back and how soon, acknowledged
statuses missing and messages stored twice.

    .venv/bin/python bench/fleet.py [--count 10000]
        [--rates 1000,2000,3000,4000,6000,8000,10000,12000,14000] [--seconds 10]
        [--clients 2] [--storm 30] [--sessions 30] [--steady 30] [--browsers 10]
        [--deploy 75] [--deploy-rate 1000] [--no-bare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from common import ROOT, clean_up, database, serve, start_bare_server
from fleet_client import BOOT, GAP, WINDOW, quantile, schedule
from live_latency import CYCLE, PASSWORD, browser, login
from ocpp_load import PREFIX, fill, stored_statuses
from sqlalchemy import func, select, update
from websockets.asyncio.client import connect

from dashboard import create_app
from dashboard.cli import create_user
from dashboard.extensions import db
from dashboard.models import ChargePoint, Company, ConnectorStatusHistory, Transaction
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM

OBSERVER = "observer@example.com"
LAST_LOG = Path(tempfile.gettempdir()) / "plugboard-fleet-gunicorn.log"
DEPLOY_AFTER = 5.0  # seconds into the deploy step
WORKER_DIED = "was sent SIG"  # gunicorn's warning for a worker killed by a signal

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/`pid`/stat after the command name (utime is [11]), or None for
    a process that is gone (a worker replaced by a deploy)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def database_cpu(server) -> float:
    """The CPU seconds the throwaway PostgreSQL has used so far: its processes now (the
    postmaster, a backend per connection, its own workers) and those it has reaped (a
    parallel query's workers, a backend whose connection closed), whose time the kernel
    adds to the postmaster's children's time."""
    postmaster = server.postmaster_pid()
    fields = None if postmaster is None else _stat(postmaster)
    if fields is None:
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime
    return cpu_seconds([postmaster, *children(postmaster)]) + reaped


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _share(rate: float | str | None, clients: int) -> str:
    """A step's rate as each client process is told it."""
    if rate is None:
        return "steady"
    return rate if isinstance(rate, str) else str(rate / clients)


def drive(
    url: str,
    args,
    steps: list[tuple[float | str | None, float]],
    servers: list[int],
    observe=None,
    deploy=None,
    database=None,
) -> dict:
    """Run the client processes against `url`; sample the servers' CPU per step and their
    memory once connected; `observe(seconds)`, if given, runs in a thread through the
    steady step (rate None) and its result is returned as figures["live"]; `deploy()`, if
    given, is called DEPLOY_AFTER seconds into the last step; `database()`, if given,
    gives the database server's CPU seconds so far, whose use per step is given beside the
    servers'. Returns the merged figures."""
    share = args.count // args.clients
    connect_time = args.storm + 40
    start_at = time.time() + connect_time
    per_client = ",".join(f"{_share(rate, args.clients)}:{seconds}" for rate, seconds in steps)
    memory_before = {pid: rss_mb(pid) for pid in servers}
    storm_cpu = cpu_seconds(servers)
    clients = [
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/python"),
                str(ROOT / "bench/fleet_client.py"),
                "--url",
                url,
                "--prefix",
                PREFIX,
                "--first",
                str(1 + n * share),
                "--count",
                str(share),
                "--ramp",
                str(args.count / args.storm / args.clients),
                "--jitter",
                "--start-at",
                str(start_at),
                "--steps",
                per_client,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(args.clients)
    ]
    # Memory once every charge point is connected, just before the first step.
    time.sleep(max(0.0, start_at - time.time() - 1))
    memory = {pid: rss_mb(pid) - memory_before[pid] for pid in servers}
    storm_cpu = cpu_seconds(servers) - storm_cpu
    server_cpu, database_used = [], []
    observer, live = None, {}
    for begin, (rate, seconds) in zip(schedule(start_at, steps), steps, strict=True):
        time.sleep(max(0.0, begin - time.time()))
        if rate is None and observe is not None:
            observer = threading.Thread(target=lambda s=seconds: live.update(observe(s)))
            observer.start()
        before = cpu_seconds(servers)
        database_before = database() if database is not None else None
        if deploy is not None and len(server_cpu) == len(steps) - 1:
            time.sleep(DEPLOY_AFTER)
            deploy()
            time.sleep(seconds + GAP - 0.5 - DEPLOY_AFTER)
        else:
            time.sleep(seconds + GAP - 0.5)
        server_cpu.append(cpu_seconds(servers) - before)
        database_used.append(None if database is None else database() - database_before)
    if observer is not None:
        observer.join(timeout=120)
    lines = []
    for client in clients:
        out, _ = client.communicate(timeout=600)
        lines.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    connected = sum(c[0]["connected"] for c in lines)
    figures = {
        "connected": connected,
        "failed": sum(c[0]["failed"] for c in lines),
        "why_failed": sum((Counter(c[0]["why_failed"]) for c in lines), Counter()),
        "connect_seconds": max(c[0]["seconds"] for c in lines),
        "p99_connect_ms": max(c[0]["p99_connect_ms"] for c in lines),
        # the workers' CPU from the first connect to the first step, per charge point
        # connected (its handshake, connected mark, boot and statuses)
        "storm_cpu_ms_per_cp": storm_cpu / max(1, connected) * 1000,
        "memory_mb_per_1000_per_worker": {
            pid: grown / max(1, connected / len(servers)) * 1000 for pid, grown in memory.items()
        },
        "steps": [],
        "live": live,
    }
    for index, (rate, seconds) in enumerate(steps):
        parts = [c[1 + index] for c in lines]
        acked = sum(p["acked"] for p in parts)
        figures["steps"].append(
            {
                "rate": rate,
                "acked": acked,
                "acked_per_s": acked / seconds,
                "acked_statuses": sum(p["acked_statuses"] for p in parts),
                "sent": sum(p["sent"] for p in parts),
                "skipped": sum(p["skipped"] for p in parts),
                "errors": sum(p["errors"] for p in parts),
                "late": sum(p["late"] for p in parts),
                "by_kind": {  # the worst client's p50 and p99, every client's count
                    kind: [
                        max(p["by_kind"][kind][0] for p in parts if kind in p["by_kind"]),
                        max(p["by_kind"][kind][1] for p in parts if kind in p["by_kind"]),
                        sum(p["by_kind"][kind][2] for p in parts if kind in p["by_kind"]),
                    ]
                    for kind in sorted({k for p in parts for k in p["by_kind"]})
                },
                "p50_ms": max(p["p50_ms"] for p in parts),
                "p99_ms": max(p["p99_ms"] for p in parts),
                "server_cpu_ms_per_ack": server_cpu[index] / max(1, acked) * 1000,
                "database_cpu_ms_per_ack": (
                    None
                    if database_used[index] is None
                    else database_used[index] / max(1, acked) * 1000
                ),
                "client_cpu_share": sum(p["client_cpu"] for p in parts) / (seconds + 2),
                "dropped": max(p["dropped"] for p in parts),
                "deploy": deploy is not None and index == len(steps) - 1,
                "restarted": sum(p["restarted"] for p in parts),
                "back": sum(p["back"] for p in parts),
                "why_failed": sum((Counter(p["why_failed"]) for p in parts), Counter()),
                "closed_otherwise": sum((Counter(p["closed_otherwise"]) for p in parts), Counter()),
                "back_p50_ms": max(p["back_p50_ms"] for p in parts),
                "back_p99_ms": max(p["back_p99_ms"] for p in parts),
                "back_phases_p50_ms": {
                    name: max(p["back_phases_p50_ms"][name] for p in parts)
                    for name in parts[0]["back_phases_p50_ms"]
                },
                "back_seconds": max((p["back_seconds"] or 0.0) for p in parts),
                "worst_ms": [max(w) for w in zip(*(p["worst_ms"] for p in parts), strict=True)],
            }
        )
    return figures


def add_observers(url: str, probes: int) -> list[int]:
    """A user of the fleet's company, who watches; `probes` more charge points of it,
    whose ids are returned."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        company = db.session.scalar(select(Company).where(Company.name == "Load"))
        create_user(OBSERVER, PASSWORD, "company_user", company.id)
        for n in range(probes):
            create_chargepoint(SYSTEM, identity=f"PROBE-{n}", company_id=company.id)
        db.session.execute(
            update(ChargePoint)
            .where(ChargePoint.identity.like("PROBE-%"))
            .values(registration_status="Accepted")
        )
        db.session.commit()
        ids = db.session.scalars(
            select(ChargePoint.id).where(ChargePoint.identity.like("PROBE-%"))
        ).all()
        db.engine.dispose()
        return ids


async def observe(port: int, seconds: float, probes: list[int], browsers: int) -> dict:
    """Browser sockets of the fleet's company watch the connectors list while each probe
    charge point (`probes`: their ids) sends a StatusNotification a second carrying a
    unique `info`, which the row fragment shows: the time from sent to fragment received,
    on every socket. Each browser's page shows the probes' rows of the unfiltered list,
    and says so, as the page's script does: the rows of the fleet's 10,000 charge points,
    on other pages, come only as the stubs of new connectors (none here)."""
    cookie = await asyncio.to_thread(login, port, OBSERVER)
    stop, ready, received, sent, acks = asyncio.Event(), [], [], {}, []
    acked_in = []  # ms from each probe status sent to its acknowledgement
    shown = [f"connector-{cp_id}-{number}" for cp_id in probes for number in (1, 2)]
    watching = [
        asyncio.create_task(browser(port, cookie, 0, received, stop, ready, shown))
        for _ in range(browsers)
    ]
    for _ in range(100):
        if len(ready) == browsers:
            break
        await asyncio.sleep(0.1)

    async def probe(n: int) -> None:
        async with connect(
            f"ws://127.0.0.1:{port}/ocpp/PROBE-{n}",
            subprotocols=["ocpp1.6"],
            ping_interval=None,
            compression=None,
            open_timeout=30,
        ) as ws:
            await ws.send(BOOT.format(n=n))
            await ws.recv()
            start = time.monotonic() + n / len(probes)  # spread over each second
            step = 0
            while (due := start + step) < start + seconds - 2:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                token = f"m{n}-{step}"
                status = CYCLE[(step // 2) % len(CYCLE)]
                frame = json.dumps(
                    [
                        2,
                        f"p{step}",
                        "StatusNotification",
                        {
                            "connectorId": 1 + step % 2,
                            "errorCode": "NoError",
                            "status": status,
                            "info": token,
                        },
                    ]
                )
                sent[token] = time.monotonic()
                await ws.send(frame)
                if json.loads(await ws.recv())[0] == 3:
                    acks.append(token)
                    acked_in.append((time.monotonic() - sent[token]) * 1000)
                step += 1

    await asyncio.gather(*(probe(n) for n in range(len(probes))))
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*watching)
    latencies = [(at - sent[token]) * 1000 for _, token, at in received if token in sent]

    return {
        # the part of it that is the acknowledgement (the batch's commit), the rest being
        # the fan-out (Redis, the render, the sockets)
        "ack_p50_ms": quantile(acked_in, 0.5),
        "ack_p95_ms": quantile(acked_in, 0.95),
        "browsers": len(ready),
        "sent": len(sent),
        "acked": len(acks),
        "fragments": len(latencies),
        "p50_ms": quantile(latencies, 0.5),
        "p95_ms": quantile(latencies, 0.95),
        "p99_ms": quantile(latencies, 0.99),
    }


def stored_twice(url: str) -> int:
    """Messages of the fleet stored more than once (each message id is used once per
    charge point and connector)."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        History = ConnectorStatusHistory
        repeated = (
            select(History.connector_cp_id)
            .where(History.source == "ocpp")
            .group_by(History.connector_cp_id, History.connector_id, History.message_id)
            .having(func.count() > 1)
        )
        count = db.session.scalar(select(func.count()).select_from(repeated.subquery()))
        db.engine.dispose()
        return count


def stored_sessions(url: str) -> tuple[int, int]:
    """The sessions stored, and how many of them have their energy so far from meter
    values."""
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Transaction))
        metered = db.session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.last_energy_wh > Transaction.meter_start)
        )
        db.engine.dispose()
        return count, metered


def capacity(figures: dict) -> tuple[float, bool]:
    """The highest step acknowledged at >= 98 % with p99 under 1 s, and whether that was
    the top step offered (then the server's limit lies above it, not measured)."""
    best, top, at_top = 0.0, 0.0, False
    for step in figures["steps"]:
        if not isinstance(step["rate"], float) or step["deploy"]:
            continue
        held = step["acked_per_s"] >= 0.98 * step["rate"] and step["p99_ms"] < 1000
        if held:
            best = max(best, step["acked_per_s"])
        if step["rate"] >= top:
            top, at_top = step["rate"], held
    return best, at_top


def capacity_text(name: str, rate: float, at_top: bool) -> str:
    return f"{name} {rate:,.0f}/s" + (" (the top step: its limit is higher)" if at_top else "")


def show(name: str, figures: dict) -> None:
    print(
        f"{name}: {figures['connected']:,} connected ({figures['failed']} failed) in "
        f"{figures['connect_seconds']:.0f} s, p99 connect {figures['p99_connect_ms']:.0f} ms, "
        f"server CPU {figures['storm_cpu_ms_per_cp']:.2f} ms per charge point"
    )
    for step in figures["steps"]:
        if step["rate"] is None:
            offered = "steady mix"
        elif step["rate"] == "sessions":
            offered = f"{step['acked']:,} sessions started"
        else:
            offered = f"offered {step['rate']:>6,.0f}/s"
        print(
            f"  {offered}: acknowledged {step['acked_per_s']:>6,.0f}/s, "
            f"p50 {step['p50_ms']:>7.1f} ms, p99 {step['p99_ms']:>7.1f} ms, "
            f"errors {step['errors']}, not sent (all busy) {step['skipped']}, "
            + (
                "server CPU n/a (workers replaced), "
                if step["deploy"]
                else f"server CPU {step['server_cpu_ms_per_ack']:.2f} ms/ack, "
            )
            + (
                ""
                if step["deploy"] or step["database_cpu_ms_per_ack"] is None
                else f"PostgreSQL {step['database_cpu_ms_per_ack']:.2f} ms/ack, "
            )
            + f"load generator CPU {step['client_cpu_share']:.2f} cores"
        )
        print(
            f"    slowest answer per {WINDOW} s: "
            + " ".join(f"{worst:.0f}" for worst in step["worst_ms"])
            + " ms"
        )
        if len(step["by_kind"]) > 1:  # the steady mix
            print(
                "    by kind: "
                + ", ".join(
                    f"{kind} p50 {p50:.1f} ms, p99 {p99:.1f} ms ({count:,})"
                    for kind, (p50, p99, count) in step["by_kind"].items()
                )
            )
        if step["late"]:  # the server was still answering the step before
            print(f"    answers to an earlier step's messages, not counted here: {step['late']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rates", default="1000,2000,3000,4000,6000,8000,10000,12000,14000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--storm", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--sessions",
        type=float,
        default=30,
        help="seconds in which a third of the fleet start a session, before the steady "
        "state; 0: none (the steady state's meter values then have no session)",
    )
    parser.add_argument("--steady", type=float, default=30, help="seconds; 0: none")
    parser.add_argument("--browsers", type=int, default=10)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument(
        "--deploy",
        type=float,
        default=75,
        help="seconds of a last step at --deploy-rate with a gunicorn reload (HUP); 0: none",
    )
    parser.add_argument("--deploy-rate", type=float, default=1000)
    parser.add_argument(
        "--bare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drive the bare asyncio server after Plugboard (--no-bare: Plugboard's figures "
        "only, in half the time; the capacity ratio is then not measured)",
    )
    args = parser.parse_args()
    steps = [(float(rate), args.seconds) for rate in args.rates.split(",")]
    if args.steady:
        steps.insert(0, (None, args.steady))
    if args.sessions:
        steps.insert(0, ("sessions", args.sessions))
    if args.deploy:
        steps.append((args.deploy_rate, args.deploy))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-fleet-"))
    url, server = database("postgresql", workdir)
    process = bare = None
    try:
        fill(url, args.count, connectors=2)  # a fleet reconnecting after a restart
        probes = add_observers(url, args.probes)
        process, port = serve(
            url,
            args.workers,
            workdir / "gunicorn.log",
            {"LOGIN_LIMIT_PER_ADDRESS": "1000 per minute"},
        )
        time.sleep(2)
        workers = children(process.pid)
        print(
            f"{args.count:,} charge points x 2 connectors, {args.clients} load generator "
            f"processes, connecting within {args.storm:.0f} s; gunicorn {len(workers)} gevent "
            "workers, PostgreSQL, Redis"
        )
        plugboard = drive(
            f"ws://127.0.0.1:{port}/ocpp",
            args,
            steps,
            workers,
            lambda seconds: asyncio.run(observe(port, seconds, probes, args.browsers)),
            (lambda: os.kill(process.pid, signal.SIGHUP)) if args.deploy else None,
            lambda: database_cpu(server),
        )
        process.terminate()
        process.wait(timeout=60)
        process = None
        show("plugboard", plugboard)
        stored = stored_statuses(url)
        acked = sum(s["acked_statuses"] for s in plugboard["steps"])
        back = sum(s["back"] for s in plugboard["steps"])  # each reported its connectors
        expected = acked + 2 * (plugboard["connected"] + back) + plugboard["live"].get("acked", 0)
        twice = stored_twice(url)
        print(
            f"plugboard: {stored:,} status rows stored for {expected:,.0f} acknowledged: "
            f"{'all persisted' if stored >= expected else 'MISSING'}"
        )
        started = next((s for s in plugboard["steps"] if s["rate"] == "sessions"), None)
        if started is not None:
            sessions, metered = stored_sessions(url)
            print(
                f"plugboard: {sessions:,} sessions stored for {started['acked']:,} started "
                f"(acknowledged): {'all' if sessions >= started['acked'] else 'MISSING'}; "
                f"{metered:,} with energy from their meter values"
            )
        for pid, mb in plugboard["memory_mb_per_1000_per_worker"].items():
            print(f"plugboard: worker {pid}: {mb:.1f} MB resident per 1,000 charge points")

        live = plugboard["live"]
        if live:
            print(
                f"plugboard: live, {live['browsers']} browser sockets of the fleet's company "
                f"watching the connectors list: {live['fragments']} probe fragments timed "
                f"({live['sent']} probe statuses), p50 {live['p50_ms']:.1f} ms, p95 "
                f"{live['p95_ms']:.1f} ms, p99 {live['p99_ms']:.1f} ms; the probes' "
                f"acknowledgements p50 {live['ack_p50_ms']:.1f} ms, p95 "
                f"{live['ack_p95_ms']:.1f} ms"
            )

        theirs = None
        if args.bare:
            bare, bare_port = start_bare_server()
            baseline = drive(f"ws://127.0.0.1:{bare_port}/ocpp", args, steps, [bare.pid])
            show("bare asyncio server", baseline)
            theirs, theirs_at_top = capacity(baseline)

        ours, ours_at_top = capacity(plugboard)
        worst_memory = max(plugboard["memory_mb_per_1000_per_worker"].values())
        print()
        if theirs is None:
            print(
                "capacity (>= 98 % acknowledged, p99 < 1 s): "
                + capacity_text("plugboard", ours, ours_at_top)
            )
            print("goal: plugboard >= 0.5 of the bare server: not measured (--no-bare)")
        else:
            ratio = f"ratio {ours / theirs if theirs else 0:.2f}"
            if ours_at_top and theirs_at_top:
                ratio += " (both held the top step: raise --rates for the real ratio)"
            elif theirs_at_top:
                ratio += " (the bare server's limit is higher: at most this)"
            print(
                "capacity (>= 98 % acknowledged, p99 < 1 s): "
                f"{capacity_text('plugboard', ours, ours_at_top)}, "
                f"{capacity_text('bare', theirs, theirs_at_top)}, {ratio}"
            )
            if theirs_at_top and ours >= 0.5 * theirs:
                verdict = "not measured (the bare server held the top step: raise --rates)"
            else:
                verdict = "met" if theirs and ours >= 0.5 * theirs else "NOT met"
            print(f"goal: plugboard >= 0.5 of the bare server: {verdict}")
        print(f"goal: >= 2,000 persisted/s at p99 < 1 s: {'met' if ours >= 2000 else 'NOT met'}")
        steady = next((s for s in plugboard["steps"] if s["rate"] is None), None)
        if steady is not None:
            met = steady["p99_ms"] < 200 and live and live["p95_ms"] < 100 and not steady["errors"]
            print(
                f"goal: steady state ({steady['acked_per_s']:,.0f} messages/s) p99 "
                f"acknowledgement < 200 ms and live p95 < 100 ms: p99 {steady['p99_ms']:.0f} ms, "
                f"live p95 {live.get('p95_ms', float('nan')):.0f} ms: "
                + ("met" if met else "NOT met")
            )
        print(
            f"goal: reconnect storm ({args.count:,} within {args.storm:.0f} s) all accepted, "
            f"booted and reported within 60 s, p99 handshake < 5 s: "
            f"{plugboard['connected']:,} in {plugboard['connect_seconds']:.0f} s, "
            f"{plugboard['failed']} failed, p99 {plugboard['p99_connect_ms'] / 1000:.1f} s: "
            + (
                "met"
                if plugboard["failed"] == 0
                and plugboard["connect_seconds"] < 60
                and plugboard["p99_connect_ms"] < 5000
                else "NOT met"
            )
        )
        if plugboard["why_failed"]:
            print(f"  failed connections, why: {dict(plugboard['why_failed'].most_common())}")
        deployed = next((s for s in plugboard["steps"] if s["deploy"]), None)
        if deployed is not None:
            print(
                f"goal: deploy (gunicorn HUP at {deployed['rate']:,.0f}/s): "
                f"{deployed['restarted']:,} sockets closed with 1012, {deployed['back']:,} back "
                f"within {deployed['back_seconds']:.0f} s, acknowledged lost: "
                f"{max(0, expected - stored):,.0f}, stored twice: {twice:,}, errors "
                f"{deployed['errors']}: "
                + (
                    "met"
                    if deployed["restarted"] == deployed["back"] == args.count
                    and deployed["back_seconds"] < 60
                    and stored >= expected
                    and twice == 0
                    else "NOT met"
                )
            )
            why = deployed["why_failed"] - plugboard["why_failed"]  # the step's own
            if why:
                print(f"  not back, why: {dict(why.most_common())}")
            if deployed["closed_otherwise"]:  # by close code; None: no close frame at all
                print(
                    "  closed by the server without a 1012: "
                    f"{dict(deployed['closed_otherwise'].most_common())}"
                )
            print(
                f"  coming back (connect, boot, every status) took p50 "
                f"{deployed['back_p50_ms']:,.0f} ms, p99 {deployed['back_p99_ms']:,.0f} ms "
                "(p50 of each part: "
                + ", ".join(
                    f"{name} {ms:,.0f} ms" for name, ms in deployed["back_phases_p50_ms"].items()
                )
                + ")"
            )
        print(
            f"goal: < 60 MB per 1,000 charge points per worker: {worst_memory:.1f} MB, "
            f"{'met' if worst_memory < 60 else 'NOT met'}"
        )
        return 0
    finally:
        if (workdir / "gunicorn.log").exists():  # kept: what the server said, for a look
            shutil.copy(workdir / "gunicorn.log", LAST_LOG)
            print(f"the server's log (warnings and errors): {LAST_LOG}")
            died = [
                line
                for line in LAST_LOG.read_text().splitlines()
                if WORKER_DIED in line and "SIGTERM" not in line  # TERM: a stop, not a death
            ]
            for line in died:  # a worker that died cut its sockets off without a 1012
                print(f"server: {line.strip()}")
        clean_up((process, bare), server, workdir)


if __name__ == "__main__":
    sys.exit(main())
