"""Benchmark of the Connectors API as served in production.

Fills a database with 10,000 charge points and 40,000 connectors, serves the app with
gunicorn (gunicorn.conf.py: gevent workers), and measures with wrk the requests per second
of GET /api/v1/connectors/chargepoint/{cp_id} (a random charge point each time, with a
Bearer token) beside the bare JSON endpoint /livez of the same app, in the same run.
Prints both and their ratio; the goal is a ratio of at least 0.5.

For reference it also measures /healthz: one `SELECT 1` through the same session and pool,
no authentication, no serialization. Its ratio to /livez is the most any endpoint that reads
the database on each request can reach here.

    .venv/bin/python bench/api.py [--database postgresql|sqlite] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, database, fill, serve, stop_process


def run_wrk(port: int, path: str, token: str, seconds: int, connections: int, script=None):
    """Requests per second of wrk against `path`; fails on any non-2xx answer."""
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script:
        command += ["-s", str(script)]
    command.append(f"http://127.0.0.1:{port}{path}")
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--chargepoints", type=int, default=10_000)
    parser.add_argument("--connectors-per-cp", type=int, default=4)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk (make bench does it)")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="plugboard-bench-"))
    url, server = database(args.database, workdir)
    process = None
    try:
        token = fill(url, args.chargepoints, args.connectors_per_cp)["token"]
        process, port = serve(url, args.workers, workdir / "gunicorn.log")
        os.environ["CP_COUNT"] = str(args.chargepoints)
        script = ROOT / "bench/connectors_by_cp.lua"
        # Warm up both paths (connection pools, caches) before measuring.
        run_wrk(port, "/livez", token, 2, args.connections)
        run_wrk(port, "/api/v1/connectors", token, 2, args.connections, script)
        run_wrk(port, "/healthz", token, 2, args.connections)
        bare, _ = run_wrk(port, "/livez", token, args.duration, args.connections)
        api, detail = run_wrk(
            port, "/api/v1/connectors", token, args.duration, args.connections, script
        )
        floor, _ = run_wrk(port, "/healthz", token, args.duration, args.connections)
        latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", detail)
        print(
            f"database: {args.database}; {args.chargepoints} charge points, "
            f"{args.chargepoints * args.connectors_per_cp} connectors; gunicorn "
            f"{args.workers} gevent workers; wrk {args.connections} connections, "
            f"{args.duration} s each"
        )
        print(f"bare JSON endpoint /livez:                 {bare:10.1f} req/s")
        print(
            f"GET /api/v1/connectors/chargepoint/{{id}}:  {api:10.1f} req/s "
            f"(mean latency {latency.group(1)})"
        )
        ratio = api / bare
        print(f"ratio: {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
        print(
            f"reference, /healthz (one SELECT 1, no auth): {floor:10.1f} req/s, "
            f"ratio {floor / bare:.2f}"
        )
        return 0
    finally:
        if process is not None:
            stop_process(process)
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
