"""How much of an acknowledgement's cost is the stack, and how much is Plugboard's own work.

    .venv/bin/python bench/stack_floor.py [--stacks asyncio,flask-sock]
        [--rates 2000,4000,6000,8000,10000,12000,14000] [--seconds 15] [--count 10000]

Drives bench/fleet.py's capacity steps (the same load generator: 10,000 charge points
connecting within 30 s, then StatusNotifications at each rate) against servers that
acknowledge every CALL and store nothing:

- `asyncio`: bench/bare_server.py, one process, the fleet bench's yardstick for goal 2;
- `flask-sock`: the same answers on the stack Plugboard's endpoint runs on
  (bench/bare_flask.py: Flask, flask-sock and simple-websocket under gunicorn with
  `--workers` gevent workers).

Prints each server's figures as bench/fleet.py does (its CPU per acknowledgement from
/proc, its resident memory per 1,000 connected charge points per process) and its
capacity (the highest step acknowledged at >= 98 % with p99 under 1 s). The gap between
`flask-sock` here and Plugboard in bench/fleet.py is what Plugboard itself does per
message (parsing and validation, the batch and its commit, events); the gap between the
two here is the stack's.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time

from common import ROOT, free_port, start_bare_server, stop_process
from fleet import capacity, capacity_text, children, drive, show


def start_flask_sock(workers: int) -> tuple[subprocess.Popen, int, list[int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--worker-class",
            "gevent",
            "--workers",
            str(workers),
            "--worker-connections",
            "12000",
            "--backlog",
            "4096",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(ROOT / "bench"),
            "--log-level",
            "warning",
            "bare_flask:app",
        ]
    )
    for _ in range(100):  # the workers, once gunicorn has forked them all
        time.sleep(0.1)
        pids = children(process.pid)
        if len(pids) == workers:
            break
    time.sleep(2)  # each worker imports the app before it accepts
    return process, port, children(process.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default="asyncio,flask-sock")
    parser.add_argument("--rates", default="2000,4000,6000,8000,10000,12000,14000")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--storm", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    steps = [(float(rate), args.seconds) for rate in args.rates.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    found = {}
    for stack in args.stacks.split(","):
        if stack == "asyncio":
            process, port = start_bare_server()
            servers, name = [process.pid], "bare asyncio server (1 process)"
        elif stack == "flask-sock":
            process, port, servers = start_flask_sock(args.workers)
            name = f"bare flask-sock on gunicorn ({len(servers)} gevent workers)"
        else:
            parser.error(f"unknown stack {stack!r}: asyncio or flask-sock")
        try:
            figures = drive(f"ws://127.0.0.1:{port}/ocpp", args, steps, servers)
        finally:
            stop_process(process)
        show(name, figures)
        for pid, mb in figures["memory_mb_per_1000_per_worker"].items():
            print(f"{name}: process {pid}: {mb:.1f} MB resident per 1,000 charge points")
        found[name] = capacity(figures)
    print()
    for name, (rate, at_top) in found.items():
        print(f"capacity (>= 98 % acknowledged, p99 < 1 s): {capacity_text(name, rate, at_top)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
