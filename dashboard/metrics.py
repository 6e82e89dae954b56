"""Prometheus metrics, served at /metrics in the text format (`prometheus_client`).

Under gunicorn every worker counts in files of its own (the library's multiprocess mode:
`gunicorn.conf.py` sets PROMETHEUS_MULTIPROC_DIR before any worker starts, and forgets a
dead worker's live gauges), and a scrape of any worker adds them all up. Without that
setting (`flask run`, the tests' single process) the process's own registry is served.
What the database knows (connectors by status and company, charge points by connection
state) is read at the scrape, by the worker that serves it.

Labels are bounded: OCPP actions (anything else is "unknown"), outcomes, statuses, states
and company ids; never a charge point's identity.

Protected by METRICS_TOKEN (`Authorization: Bearer <token>`); without it, /metrics is off.
"""

from __future__ import annotations

import os
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OCPP_MESSAGES = Counter(
    "plugboard_ocpp_messages",
    "CALLs from charge points, by action and outcome (ok, or the CALLERROR code answered)",
    ["action", "outcome"],
)
INGEST_BATCH_SIZE = Histogram(
    "plugboard_ingest_batch_size",
    "StatusNotifications and heartbeats written per group commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
INGEST_COMMIT_SECONDS = Histogram(
    "plugboard_ingest_commit_seconds",
    "Time to write and commit one ingest batch",
    buckets=_FAST,
)
GC_PAUSE_SECONDS = Histogram(
    "plugboard_gc_pause_seconds",
    "Garbage collections of the worker, by generation (2: full), and how long each took",
    ["generation"],
    buckets=_FAST,
)
CALL_SECONDS = Histogram(
    "plugboard_call_seconds",
    "Round trip of calls to charge points, by action and outcome "
    "(answered, error, timeout, offline, unavailable)",
    ["action", "outcome"],
    buckets=_FAST + (30.0,),
)
BROWSER_SOCKETS = Gauge(
    "plugboard_browser_sockets",
    "Open live-channel sockets of browsers",
    multiprocess_mode="livesum",
)
OCPP_SOCKETS = Gauge(
    "plugboard_ocpp_sockets", "Open OCPP sockets of charge points", multiprocess_mode="livesum"
)
WEBHOOK_DELIVERIES = Counter(
    "plugboard_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered: 2xx; rejected: another status; "
    "unreachable: no answer, or an address refused)",
    ["outcome"],
)


class DatabaseCollector:
    """Gauges of what the database holds, read when scraped."""

    def collect(self):
        from dashboard.services.chargepoints import connection_counts
        from dashboard.services.connectors import status_counts

        connectors = GaugeMetricFamily(
            "plugboard_connectors",
            "Connectors by status and owning company",
            labels=["status", "company_id"],
        )
        for (status, company_id), count in sorted(status_counts().items()):
            connectors.add_metric([status, str(company_id)], count)
        yield connectors
        chargepoints = GaugeMetricFamily(
            "plugboard_chargepoints",
            "Charge points by connection state (online, stale, offline)",
            labels=["state"],
        )
        for state, count in connection_counts().items():
            chargepoints.add_metric([state], count)
        yield chargepoints


def exposition() -> tuple[bytes, str]:
    """The metrics of every worker (or of this process), and the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return generate_latest(registry) + generate_latest(database), CONTENT_TYPE_LATEST


def known_action(action: str) -> str:
    """The action as a label: an OCPP 1.6 action, else "unknown" (bounded)."""
    from dashboard.ocpp16.validation import KNOWN_ACTIONS

    return action if action in KNOWN_ACTIONS else "unknown"


# The action of a frame that could not be parsed as a CALL.
UNPARSED = "unparsed"


def count_ocpp_message(action: str, outcome: str) -> None:
    """Count a frame of a charge point in OCPP_MESSAGES: a CALL of `action` (or UNPARSED)
    answered with `outcome`."""
    _ocpp_messages(action, outcome).inc()


@lru_cache(maxsize=256)
def _ocpp_messages(action: str, outcome: str):
    # Kept, not looked up for every CALL: the label check and lookup cost 2 % of an
    # ingest worker at 1,000 statuses/s (py-spy).
    return OCPP_MESSAGES.labels(action if action == UNPARSED else known_action(action), outcome)
