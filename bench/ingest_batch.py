"""The ingest batch alone: what writing a batch of StatusNotifications costs the worker.

    .venv/bin/python bench/ingest_batch.py [--batches 40] [--size 500] [--profile]
        [--history ROWS] [--unstamped]

On a throwaway PostgreSQL (as in production) with 10,000 charge points of two connectors,
the batcher of `dashboard.ocpp16.ingest` writes `--batches` batches of `--size` statuses
(each for another connector, in a cycle of the usual transitions), in this process,
without sockets or gunicorn. Prints the process's CPU and the wall time per status, the
figure the fleet bench's capacity step depends on most (its "ingest batch" share of a
worker), and the CPU PostgreSQL spent on them, so that a change of the
ingest path can be measured in seconds rather than in a fifteen-minute fleet run.
`--profile` prints the functions that took the most time.

The connectors start with a status time, as in a fleet that has booted: statuses stamped
later than it are new, and need no look in the history. `--unstamped` sends them without
a time, as chargers that do not stamp theirs do: then every batch looks its statuses up in
the history, which `--history` fills with that many earlier rows first (the history is
kept: a fleet of 10,000 writes millions of rows a week).
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import clean_up, database
from fleet import database_cpu
from ocpp_load import fill
from sqlalchemy import text

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import ChargePoint, Connector
from dashboard.models.types import utcnow
from dashboard.ocpp16.ingest import STATUS, StatusBatcher, _Item

CYCLE = ("Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available")


def batches(cp_ids: list[int], size: int, count: int, stamped: bool = True):
    """`count` batches of `size` status items, each connector's statuses in order (with
    times of their own unless not `stamped`)."""
    connectors = itertools.cycle([(cp_id, n) for cp_id in cp_ids for n in (1, 2)])
    step: dict[tuple[int, int], int] = {}
    start = utcnow()
    serial = 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            cp_id, number = next(connectors)
            index = step.get((cp_id, number), 0)
            step[(cp_id, number)] = index + 1
            serial += 1
            batch.append(
                _Item(
                    cp_id,
                    {
                        "connector_id": number,
                        "status": CYCLE[index % len(CYCLE)],
                        "error_code": "NoError",
                        "message_id": f"m{serial}",
                        "event_time": start + timedelta(milliseconds=serial) if stamped else None,
                    },
                    STATUS,
                )
            )
        yield batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="charge points")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--history", type=int, default=0, help="earlier history rows")
    parser.add_argument("--unstamped", action="store_true", help="statuses without a time")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-ingest-"))
    url, server = database("postgresql", workdir)
    try:
        fill(url, args.count, connectors=2)
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            cp_ids = list(db.session.scalars(db.select(ChargePoint.id)))
            now = utcnow()
            db.session.execute(db.update(ChargePoint).values(connected_since=now, last_seen=now))
            day_before = now - timedelta(days=1)
            db.session.execute(db.update(Connector).values(status_timestamp=day_before))
            if args.history:
                db.session.execute(
                    text(
                        "INSERT INTO connector_status_history (connector_id, connector_cp_id,"
                        " status, error_code, event_time, received, source, unexpected, applied,"
                        " message_id) SELECT 1 + g % 2, (:ids)[1 + g % :count], 'Available',"
                        " 'NoError', :then - interval '1 second' * g,"
                        " :then - interval '1 second' * g, 'ocpp', false, true, 'h' || g"
                        " FROM generate_series(1, :rows) AS g"
                    ),
                    {"ids": cp_ids, "count": len(cp_ids), "then": day_before, "rows": args.history},
                )
            db.session.commit()
            if args.history:
                db.session.execute(text("ANALYZE connector_status_history"))
                db.session.commit()
            writer = StatusBatcher(app)  # its write only: its thread starts on a submit
            work = list(batches(cp_ids, args.size, args.batches + 2, not args.unstamped))
            for batch in work[:2]:  # warm: caches, statements, the connection
                writer._write(batch)
            database_began = database_cpu(server)
            profile = cProfile.Profile() if args.profile else None
            cpu, wall = [], []
            for batch in work[2:]:
                began, began_cpu = time.perf_counter(), time.process_time()
                if profile:
                    profile.enable()
                writer._write(batch)
                if profile:
                    profile.disable()
                cpu.append(time.process_time() - began_cpu)
                wall.append(time.perf_counter() - began)
                failed = [item.error for item in batch if item.error]
                if failed:
                    raise SystemExit(f"{len(failed)} failed: {failed[0]!r}")
            database_used = database_cpu(server) - database_began
        per = 1e6 / args.size
        print(
            f"{args.batches} batches of {args.size} statuses, {args.count:,} charge points, "
            f"{'unstamped' if args.unstamped else 'stamped'}, {args.history:,} rows of history: "
            f"process CPU per status {statistics.median(cpu) * per:.0f} µs (median batch; "
            f"mean {statistics.mean(cpu) * per:.0f}), wall {statistics.median(wall) * per:.0f} µs; "
            f"PostgreSQL {database_used / args.batches * per:.0f} µs"
        )
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    finally:
        clean_up([], server, workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
