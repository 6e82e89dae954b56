"""Jobs that keep the database in shape, and the mark that lets exactly one process run
each of them per period (`claim_job`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from dashboard.extensions import db, insert_ignoring_duplicates
from dashboard.models import JobMark
from dashboard.models.types import utcnow
from dashboard.services import outbox
from dashboard.services.charging import prune_meter_values

PRUNE_EVERY = timedelta(hours=1)


def claim_job(name: str, every: timedelta, now: datetime | None = None) -> datetime | None:
    """Whether this process is the one to run job `name` now: at most once per `every`,
    in one process only, across restarts (one conditional UPDATE decides). Returns when
    it last ran (the epoch if never), or None when it is not due or another process has
    it. Commits."""
    now = now or utcnow()
    never = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    db.session.execute(insert_ignoring_duplicates(JobMark).values(name=name, at=never))
    mark = db.session.get(JobMark, name)
    previous = mark.at
    claimed = db.session.execute(
        update(JobMark)
        .where(JobMark.name == name, JobMark.at == previous, JobMark.at <= now - every)
        .values(at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return previous if claimed else None


def prune(now: datetime | None = None) -> dict[str, int]:
    """Remove what is older than its retention period: events and webhook delivery log
    rows (EVENTS_RETENTION_DAYS), sampled meter values (METER_VALUES_RETENTION_DAYS)."""
    now = now or utcnow()
    config = current_app.config
    return {
        "events": outbox.prune(now - timedelta(days=config["EVENTS_RETENTION_DAYS"])),
        "meter_values": prune_meter_values(
            now - timedelta(days=config["METER_VALUES_RETENTION_DAYS"])
        ),
    }


def prune_due() -> None:
    """Prune, hourly, in one process."""
    if claim_job("prune", PRUNE_EVERY) is not None:
        prune()
        db.session.commit()
