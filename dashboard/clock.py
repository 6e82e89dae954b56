"""Work that runs on a clock, inside every web worker: no extra daemon to deploy.

- the sweep (`services.incidents.sweep`) every INCIDENT_SWEEP_SECONDS: one process at a
  time gets through (a PostgreSQL advisory lock; SQLite has one worker);
- webhook deliveries (`services.webhooks`), woken by every commit that wrote events (the
  event bus carries the wake-up between processes) and at least once a second;
- the daily uptime aggregates (`services.uptime.aggregate_due`), one process at a time;
- pruning of old events, delivery log rows and meter values, hourly;
- the incident e-mail digest (`services.digests`), when SMTP_URL is set.

Started once per process, by the first request it serves (after gunicorn's fork), unless
BACKGROUND_JOBS is off (the unit tests call the jobs themselves).
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from dashboard.extensions import db
from dashboard.live import events as bus

log = logging.getLogger(__name__)

_started = False
_start_lock = threading.Lock()


def start(app: Flask) -> None:
    """Start this process's clock threads (once)."""
    global _started
    if _started:
        return
    with _start_lock:
        if _started:
            return
        _started = True
    from dashboard.services import webhooks

    bus.subscribe(
        lambda event: webhooks.events_committed() if event.get("type") == "outbox" else None
    )
    threading.Thread(target=_sweeper, args=(app,), name="sweeper", daemon=True).start()
    if app.config["WEBHOOK_CONCURRENCY"] > 0:  # 0: this process delivers no webhooks
        threading.Thread(target=_dispatcher, args=(app,), name="dispatcher", daemon=True).start()
    for number in range(app.config["WEBHOOK_CONCURRENCY"]):
        threading.Thread(
            target=_deliverer, args=(app,), name=f"deliverer-{number}", daemon=True
        ).start()
    log.info("background jobs started")


def _run(app: Flask, job, name: str):
    with app.app_context():
        try:
            return job()
        except Exception:
            db.session.rollback()
            log.exception("background job %s failed", name)
            return None
        finally:
            db.session.remove()


def _sweeper(app: Flask) -> None:
    from dashboard import gc_tuning
    from dashboard.services import digests, incidents, maintenance, uptime

    interval = app.config["INCIDENT_SWEEP_SECONDS"]
    while True:
        time.sleep(interval)
        _run(app, incidents.sweep, "incident sweep")
        # One day per round: a web worker's greenlets wait while a chunk is computed, so
        # a long backfill goes on a day each round rather than in one long stretch.
        _run(app, lambda: uptime.aggregate_due(max_days=1), "uptime aggregates")
        _run(app, maintenance.prune_due, "pruning")
        _run(app, digests.send_due, "e-mail digest")
        gc_tuning.record_pauses()


# Wake-ups closer together than this are taken as one: under load, every commit of a batch
# of StatusNotifications wakes the deliverers, and a look for work per commit would cost
# more than the deliveries. A busy endpoint keeps its runner up to BUSY_RUN seconds.
ROUND_INTERVAL = 0.1
BUSY_RUN = 2.0


_work = threading.Condition()


def _dispatcher(app: Flask) -> None:
    """Looks for webhook work (one read) when events are committed, at least once a
    second, and wakes the runners only when there is some: under load the commits come by
    the dozen a second, and each runner looking for itself would cost more than it
    delivers."""
    from dashboard.services import webhooks

    while True:
        webhooks.wait_for_events(1.0)
        time.sleep(ROUND_INTERVAL)
        if _run(app, webhooks.has_work, "webhooks"):
            with _work:
                _work.notify_all()


def _deliverer(app: Flask) -> None:
    """One of WEBHOOK_CONCURRENCY runners of this process (several endpoints at once: one
    slow receiver does not hold up the others): when woken, it claims and delivers until
    no endpoint is due."""
    from dashboard.services import webhooks

    def run():
        return webhooks.deliver_due(budget=BUSY_RUN, idle=webhooks.wait_for_events)

    while True:
        with _work:
            _work.wait(2.0)
        _run(app, run, "webhooks")
