"""The ingest batch alone: what writing a batch of StatusNotifications costs the worker.

    .venv/bin/python bench/ingest_batch.py [--batches 40] [--size 500] [--profile]

On a throwaway PostgreSQL (as in production) with 10,000 charge points of two connectors,
the batcher of `dashboard.ocpp16.ingest` writes `--batches` batches of `--size` statuses
(each for another connector, in a cycle of the usual transitions), in this process,
without sockets or gunicorn. Prints the process's CPU and the wall time per status, the
figure the fleet bench's capacity step depends on most (its "ingest batch" share of a
worker), so that a change of the ingest path can be measured in seconds rather than in a
fifteen-minute fleet run. `--profile` prints the functions that took the most time.
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
from ocpp_load import fill

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import ChargePoint
from dashboard.models.types import utcnow
from dashboard.ocpp16.ingest import STATUS, StatusBatcher, _Item

CYCLE = ("Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available")


def batches(cp_ids: list[int], size: int, count: int):
    """`count` batches of `size` status items, each connector's statuses in order."""
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
                        "event_time": start + timedelta(milliseconds=serial),
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
            db.session.commit()
            writer = StatusBatcher(app)  # its write only: its thread starts on a submit
            work = list(batches(cp_ids, args.size, args.batches + 2))
            for batch in work[:2]:  # warm: caches, statements, the connection
                writer._write(batch)
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
        per = 1e6 / args.size
        print(
            f"{args.batches} batches of {args.size} statuses, {args.count:,} charge points: "
            f"process CPU per status {statistics.median(cpu) * per:.0f} µs (median batch; "
            f"mean {statistics.mean(cpu) * per:.0f}), wall {statistics.median(wall) * per:.0f} µs"
        )
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    finally:
        clean_up([], server, workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
