"""The incidents sweep after a fleet-wide outage: opening, then resolving, thousands of
offline conditions at once.

    .venv/bin/python bench/sweep.py [--count 10000]

On a throwaway PostgreSQL with `--count` charge points of one company, all disconnected
an hour ago (a pending offline condition each, as their disconnections left them): one
sweep opens them all (past the hold-down), then, every charge point connected again, one
sweep resolves them all, each at its own reconnect time. Prints each sweep's wall time
(the sweep holds its lock meanwhile, and every condition is announced: an event and a
live message each) and checks what it wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import clean_up, database
from ocpp_load import fill

from dashboard import create_app
from dashboard.extensions import db, insert_all
from dashboard.models import ChargePoint, Incident, OutboxEvent
from dashboard.models.types import utcnow
from dashboard.services import incidents


def _count(*where) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Incident).where(*where))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="charge points")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-sweep-"))
    url, server = database("postgresql", workdir)
    try:
        fill(url, args.count)
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            gone = utcnow() - timedelta(hours=1)
            owners = db.session.execute(db.select(ChargePoint.id, ChargePoint.company_id)).all()
            conditions = [
                incidents._condition("offline", company, cp_id, None, gone, detail="disconnected")
                for cp_id, company in owners
            ]
            insert_all(Incident.__table__, conditions)
            db.session.commit()

            began = time.perf_counter()
            if not incidents.sweep():
                raise SystemExit("the sweep was held")
            opening = time.perf_counter() - began
            opened = _count(Incident.state == "open")

            back = utcnow()
            db.session.execute(db.update(ChargePoint).values(connected_since=back, last_seen=back))
            db.session.commit()
            began = time.perf_counter()
            if not incidents.sweep():
                raise SystemExit("the sweep was held")
            resolving = time.perf_counter() - began
            resolved = _count(Incident.state == "resolved", Incident.resolved_at == back)
            events = db.session.scalar(
                db.select(db.func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.type.in_(("incident.opened", "incident.resolved")))
            )
        print(
            f"{args.count:,} offline conditions: one sweep opened {opened:,} in {opening:.2f} s, "
            f"the next resolved {resolved:,} (each at its reconnect) in {resolving:.2f} s; "
            f"{events:,} events"
        )
        return 0 if opened == resolved == args.count and events == 2 * args.count else 1
    finally:
        clean_up([], server, workdir)


if __name__ == "__main__":
    sys.exit(main())
