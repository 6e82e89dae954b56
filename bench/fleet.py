"""Fleet benchmark: 10,000 charge points on PostgreSQL, 2 gevent workers and Redis, driven by
a lean load generator (bench/fleet_client.py: raw pre-serialised frames, several
processes), beside the bare asyncio server (bench/bare_server.py) in the same run.

For each server: the fleet connects as after a restart (a reconnect storm: each charge
point at a uniform random time within `--storm` seconds; it boots and reports every
connector); then StatusNotifications are offered in steps of rising rate.
Prints, per step and server, what was acknowledged per second with p50 / p99, the worker
CPU per acknowledged message (from /proc), and the load generator's own CPU; then the
capacity of each (the highest step acknowledged at ≥ 98 % of what was offered with p99
under 1 s), Plugboard's against the bare server's and against 2,000 persisted/s; every
acknowledged status checked in the database; and the resident memory per 1,000 connected
charge points per worker.

    .venv/bin/python bench/fleet.py [--count 10000] [--rates 500,1000,1500,2000,2500]
        [--seconds 10] [--clients 2] [--storm 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, clean_up, database, serve, start_bare_server
from fleet_client import GAP, schedule
from ocpp_load import PREFIX, fill, stored_statuses

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def drive(url: str, args, steps: list[tuple[float, float]], servers: list[int]) -> dict:
    """Run the client processes against `url`; sample the servers' CPU per step and their
    memory once connected. Returns the merged figures."""
    share = args.count // args.clients
    connect_time = args.storm + 40
    start_at = time.time() + connect_time
    per_client = ",".join(f"{rate / args.clients}:{seconds}" for rate, seconds in steps)
    memory_before = {pid: rss_mb(pid) for pid in servers}
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
    server_cpu = []
    for begin in schedule(start_at, steps):
        time.sleep(max(0.0, begin - time.time()))
        before = cpu_seconds(servers)
        time.sleep(steps[len(server_cpu)][1] + GAP - 0.5)
        server_cpu.append(cpu_seconds(servers) - before)
    lines = []
    for client in clients:
        out, _ = client.communicate(timeout=600)
        lines.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    connected = sum(c[0]["connected"] for c in lines)
    figures = {
        "connected": connected,
        "failed": sum(c[0]["failed"] for c in lines),
        "connect_seconds": max(c[0]["seconds"] for c in lines),
        "p99_connect_ms": max(c[0]["p99_connect_ms"] for c in lines),
        "memory_mb_per_1000_per_worker": {
            pid: grown / max(1, connected / len(servers)) * 1000 for pid, grown in memory.items()
        },
        "steps": [],
    }
    for index, (rate, seconds) in enumerate(steps):
        parts = [c[1 + index] for c in lines]
        acked = sum(p["acked"] for p in parts)
        figures["steps"].append(
            {
                "rate": rate,
                "acked_per_s": acked / seconds,
                "sent": sum(p["sent"] for p in parts),
                "skipped": sum(p["skipped"] for p in parts),
                "errors": sum(p["errors"] for p in parts),
                "p50_ms": max(p["p50_ms"] for p in parts),
                "p99_ms": max(p["p99_ms"] for p in parts),
                "server_cpu_ms_per_ack": server_cpu[index] / max(1, acked) * 1000,
                "client_cpu_share": sum(p["client_cpu"] for p in parts) / (seconds + 2),
                "dropped": max(p["dropped"] for p in parts),
            }
        )
    return figures


def capacity(figures: dict) -> float:
    best = 0.0
    for step in figures["steps"]:
        if step["acked_per_s"] >= 0.98 * step["rate"] and step["p99_ms"] < 1000:
            best = max(best, step["acked_per_s"])
    return best


def show(name: str, figures: dict) -> None:
    print(
        f"{name}: {figures['connected']:,} connected ({figures['failed']} failed) in "
        f"{figures['connect_seconds']:.0f} s, p99 connect {figures['p99_connect_ms']:.0f} ms"
    )
    for step in figures["steps"]:
        print(
            f"  offered {step['rate']:>6,.0f}/s: acknowledged {step['acked_per_s']:>6,.0f}/s, "
            f"p50 {step['p50_ms']:>7.1f} ms, p99 {step['p99_ms']:>7.1f} ms, "
            f"errors {step['errors']}, not sent (all busy) {step['skipped']}, "
            f"server CPU {step['server_cpu_ms_per_ack']:.2f} ms/ack, "
            f"load generator CPU {step['client_cpu_share']:.2f} cores"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rates", default="500,1000,1500,2000,2500")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--storm", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    steps = [(float(rate), args.seconds) for rate in args.rates.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-fleet-"))
    url, server = database("postgresql", workdir)
    process = bare = None
    try:
        fill(url, args.count, connectors=2)  # a fleet reconnecting after a restart
        process, port = serve(url, args.workers, workdir / "gunicorn.log")
        time.sleep(2)
        workers = children(process.pid)
        print(
            f"{args.count:,} charge points x 2 connectors, {args.clients} load generator "
            f"processes, connecting within {args.storm:.0f} s; gunicorn {len(workers)} gevent "
            "workers, PostgreSQL, Redis"
        )
        plugboard = drive(f"ws://127.0.0.1:{port}/ocpp", args, steps, workers)
        process.terminate()
        process.wait(timeout=60)
        process = None
        show("plugboard", plugboard)
        stored = stored_statuses(url)
        acked = sum(s["acked_per_s"] * args.seconds for s in plugboard["steps"])
        expected = acked + 2 * plugboard["connected"]
        print(
            f"plugboard: {stored:,} status rows stored for {expected:,.0f} acknowledged: "
            f"{'all persisted' if stored >= expected else 'MISSING'}"
        )
        for pid, mb in plugboard["memory_mb_per_1000_per_worker"].items():
            print(f"plugboard: worker {pid}: {mb:.1f} MB resident per 1,000 charge points")

        bare, bare_port = start_bare_server()
        baseline = drive(f"ws://127.0.0.1:{bare_port}/ocpp", args, steps, [bare.pid])
        show("bare asyncio server", baseline)

        ours, theirs = capacity(plugboard), capacity(baseline)
        worst_memory = max(plugboard["memory_mb_per_1000_per_worker"].values())
        print()
        print(
            f"capacity (>= 98 % acknowledged, p99 < 1 s): plugboard {ours:,.0f}/s, "
            f"bare {theirs:,.0f}/s, ratio {ours / theirs if theirs else 0:.2f}"
        )
        print(
            f"goal: plugboard >= 0.5 of the bare server: "
            f"{'met' if theirs and ours >= 0.5 * theirs else 'NOT met'}"
        )
        print(f"goal: >= 2,000 persisted/s at p99 < 1 s: {'met' if ours >= 2000 else 'NOT met'}")
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
        print(
            f"goal: < 60 MB per 1,000 charge points per worker: {worst_memory:.1f} MB, "
            f"{'met' if worst_memory < 60 else 'NOT met'}"
        )
        return 0
    finally:
        clean_up((process, bare), server, workdir)


if __name__ == "__main__":
    sys.exit(main())
