"""Benchmark of the dashboard's list pages, server side.

Fills a database with 10,000 charge points and 50,000 connectors (10 companies), then
renders in-process, with the Flask test client, the first page of the all-connectors list
and of filtered views, as a superadmin and as a company user, many times each. Prints
median and p95 milliseconds per page. Goal: under 50 ms each on PostgreSQL.

    .venv/bin/python bench/pages.py [--database postgresql|sqlite] [--repeat 50]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import database, fill

from dashboard import create_app

VIEWS = [
    ("all connectors, first page", "/connectors"),
    ("filtered: status=Charging", "/connectors?status=Charging"),
    ("filtered: type + enabled + sort", "/connectors?type=CCS&enabled=yes&sort=updated"),
    ("filtered: text search", "/connectors?q=bench%2012"),
    ("charge points overview", "/"),
]


def measure(client, path: str, repeat: int) -> tuple[float, float]:
    for _ in range(3):  # warm caches and the connection pool
        client.get(path)
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--chargepoints", type=int, default=10_000)
    parser.add_argument("--connectors-per-cp", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-pages-bench-"))
    url, server = database(args.database, workdir)
    try:
        ids = fill(url, args.chargepoints, args.connectors_per_cp)
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
        print(
            f"database: {args.database}; {args.chargepoints} charge points, "
            f"{args.chargepoints * args.connectors_per_cp} connectors, 10 companies; "
            f"{args.repeat} renders each, in-process"
        )
        worst = 0.0
        for who, user_id in (("superadmin", ids["admin"]), ("company user", ids["user"])):
            client = app.test_client()
            with client.session_transaction() as session:
                session["_user_id"] = str(user_id)
                session["_fresh"] = True
            for name, path in VIEWS:
                median, p95 = measure(client, path, args.repeat)
                worst = max(worst, median)
                print(f"{who:13} {name:34} median {median:6.1f} ms   p95 {p95:6.1f} ms")
        print(f"goal: every median under 50 ms: {'met' if worst < 50 else 'NOT met'}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
