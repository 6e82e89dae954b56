"""Group commit of what a fleet sends most, one batcher per worker process:
StatusNotifications, MeterValues, the "last seen" of Heartbeats, and, for a fleet that
reconnects at once, the connected and disconnected marks and the BootNotifications.

Each is handed to the batcher and answered only once its transaction has committed, so an
acknowledged status or meter value is a stored one. While one batch is being written, the
next one gathers: under load, hundreds of messages share one transaction, one query that
loads their connectors (with the sessions going on at them), batched INSERTs of history
rows and samples, and one UPDATE of "last seen" for all their charge points, instead of a
transaction each. Every change still goes through its service (`record_ocpp_status` and
`apply_status`, `record_meter_values`): only the commit is shared. A batch that fails is
replayed one message at a time, so one bad message fails alone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload, lazyload

from dashboard.extensions import among, db, of_this_process
from dashboard.metrics import INGEST_BATCH_SIZE, INGEST_COMMIT_SECONDS
from dashboard.models import ChargePoint, Connector, Transaction
from dashboard.models.types import utcnow
from dashboard.ocpp16.gatherer import Gatherer
from dashboard.services.chargepoints import (
    is_registered,
    record_boot,
    record_connected,
    record_disconnections,
)
from dashboard.services.charging import record_meter_values
from dashboard.services.connectors import (
    may_be_retry,
    record_ocpp_status,
    recorded_already,
    status_event,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
# A batch that lost a deadlock (or a serialization conflict) is written again whole, this
# many times in all, before the replay one message at a time: the conflict was another
# transaction's timing, not a bad message (in a deploy, the old workers' disconnect marks
# and the new workers' connect marks lock the same charge points; a batch of 500 replayed
# one by one took the old worker past its graceful timeout).
BATCH_ATTEMPTS = 3
# How long a notification may wait for its batch before the charge point gets an error.
SUBMIT_TIMEOUT = 30.0
# Where each process keeps its batcher, in the application's extensions.
_BATCHER = "ocpp_status_batcher"


STATUS, METER, SEEN = "status", "meter", "seen"
CONNECTED, DISCONNECTED, BOOT = "connected", "disconnected", "boot"


@dataclass
class _Item:
    cp_id: int
    fields: dict
    kind: str = STATUS
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    result: object = None


class StatusBatcher(Gatherer):
    """Writes the StatusNotifications of every connection of this process in batches."""

    limit = MAX_BATCH
    timeout = SUBMIT_TIMEOUT
    thread_name = "ocpp-ingest"

    def submit(self, cp_id: int, kind: str = STATUS, **fields):
        """Record one message or event of charge point `cp_id`: a StatusNotification
        (`fields`: the arguments of `record_ocpp_status`), MeterValues (those of
        `record_meter_values`), only that it was seen, that it connected (returns the mark
        of `record_connected`), that it disconnected (`since`: that mark), or a
        BootNotification (`payload`; returns (registration status, registered), or None
        for a charge point no longer there). Returns once committed, or raises what
        recording it raised."""
        item = self._submit(_Item(cp_id, fields, kind), "the status was not stored in time")
        return item.result

    def _handle(self, batch: list[_Item]) -> None:
        self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        INGEST_BATCH_SIZE.observe(len(batch))
        try:
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                try:
                    self._record(batch)
                    db.session.commit()
                    break
                except OperationalError as exc:
                    db.session.rollback()
                    db.session.expunge_all()
                    if attempt == BATCH_ATTEMPTS or not _transient(exc):
                        raise
                    log.info("a batch of %d was a deadlock's victim; again", len(batch))
            INGEST_COMMIT_SECONDS.observe(time.perf_counter() - started)
        except Exception as exc:
            db.session.rollback()
            log.warning(
                "a batch of %d statuses failed (%s); replaying one by one",
                len(batch),
                str(exc).splitlines()[0][:300],
            )
            for item in batch:
                try:
                    self._record([item])
                    db.session.commit()
                except Exception as exc:
                    db.session.rollback()
                    item.error = exc
        finally:
            db.session.expunge_all()  # start each batch from the database, not memory
            for item in batch:
                item.done.set()

    def _record(self, batch: list[_Item]) -> None:
        connects = {item.cp_id for item in batch if item.kind == CONNECTED}
        if connects:  # one UPDATE for every charge point that connected
            since = record_connected(*connects)
            for item in batch:
                if item.kind == CONNECTED:
                    item.result = since
        marks = [(item.cp_id, item.fields["since"]) for item in batch if item.kind == DISCONNECTED]
        if marks:
            record_disconnections(marks)
        reported = {
            item.cp_id
            for item in batch
            if item.kind in (STATUS, METER) and item.fields.get("connector_id")
        }
        cp_ids = {item.cp_id for item in batch if item.kind != DISCONNECTED}
        # One query puts every connector of the batch (and the others of its charge
        # points) in the session: the lookups of record_ocpp_status then hit the identity
        # map, which holds objects only while something refers to them: hence `loaded`,
        # kept until the batch is recorded. Not their companies: ingest needs only ids.
        # With meter values among them, the same query reads the session going on at each
        # connector (the one a charging connector's meter values go to): a round trip
        # fewer per batch than a SELECT of the sessions of its own (the fleet bench's
        # steady state with a third charging showed no latency gain from it, a hair less
        # CPU: README, Benchmarks, 29 November, sixth session).
        query = (
            select(Connector)
            .options(joinedload(Connector.chargepoint).lazyload(ChargePoint.company))
            .where(among(Connector.connector_cp_id, reported))
        )
        transactions = []
        if not reported:
            loaded = []
        elif any(item.kind == METER for item in batch):
            rows = db.session.execute(
                query.add_columns(Transaction).outerjoin(
                    Transaction, Transaction.id == Connector.transaction_id
                )
            ).all()
            loaded = [connector for connector, _ in rows]
            transactions = [transaction for _, transaction in rows if transaction is not None]
        else:
            loaded = db.session.scalars(query).all()
        by_key = {(c.connector_cp_id, c.connector_id): c for c in loaded}
        known = set(by_key)
        loaded_cps = {c.connector_cp_id for c in loaded}
        # The charge points that boot, or whose connectors are reported for the first
        # time, so that neither needs a query of its own.
        unloaded = {item.cp_id for item in batch if item.kind in (STATUS, METER, BOOT)}
        unloaded -= loaded_cps
        chargepoints = (
            db.session.scalars(
                select(ChargePoint)
                .options(lazyload(ChargePoint.company))
                .where(among(ChargePoint.id, unloaded))
            ).all()
            if unloaded
            else []
        )
        # The other sessions the meter values name (an earlier session's late values, an
        # id never given), in one query: record_meter_values then finds every session in
        # the session's identity map instead of reading each (a round trip per message).
        sessions = (
            {item.fields.get("transaction_id") for item in batch if item.kind == METER}
            - {None}
            - {transaction.id for transaction in transactions}
        )
        if sessions:
            transactions += db.session.scalars(
                select(Transaction).where(among(Transaction.id, sessions))
            ).all()
        # Retries among the statuses (the same message sent again), found in one query,
        # among those that may be one: usually none, and no query.
        recorded = recorded_already(
            [
                status_event(item.cp_id, **item.fields)
                for item in batch
                if item.kind == STATUS
                and may_be_retry(
                    by_key.get((item.cp_id, item.fields["connector_id"])),
                    item.fields.get("event_time"),
                )
            ]
        )
        for item in batch:
            if item.kind == METER:
                record_meter_values(item.cp_id, **item.fields)
                continue
            if item.kind == BOOT:
                item.result = _boot(item.cp_id, item.fields["payload"])
                continue
            if item.kind != STATUS:
                continue  # done above, or the UPDATE of "last seen" below is all it needs
            key = (item.cp_id, item.fields["connector_id"])
            if key in known:
                record_ocpp_status(item.cp_id, **item.fields, recorded=recorded)
            else:
                # A connector seen for the first time is looked up in the database:
                # without autoflush, or that lookup would write the batch so far,
                # statement by statement. A later status for it in this batch then finds
                # the connector registered here.
                with db.session.no_autoflush:
                    record_ocpp_status(item.cp_id, **item.fields, recorded=recorded)
                known.add(key)
        del loaded, chargepoints, transactions, by_key
        if cp_ids:
            db.session.execute(
                update(ChargePoint)
                .where(among(ChargePoint.id, cp_ids))
                .values(last_seen=utcnow())
                .execution_options(synchronize_session=False)
            )


def _boot(cp_id: int, payload: dict) -> tuple[str, bool] | None:
    # The boots of a batch are written by the unit of work, a statement per charge point
    # (an executemany psycopg sends row by row: 1.2–1.8 s for 500 in a storm). Writing them
    # as one UPDATE of arrays, like the connectors, was measured twice and made the storm
    # worse both times: on 28 November (p99 handshake 3.8–12.5 s, 0.4 ms more CPU per
    # charge point) and on 29 November (five storms with it: 53–59 s to connect 10,000,
    # p99 handshake 22–29 s, 6.7–7.7 ms per charge point, up to 326 timed out; two without
    # it, alternated with the first two: 42 and 39 s, 1.7 and 0.7 s, 5.9 and 5.4 ms). The
    # slow batch paces the storm; with a fast one the workers fell behind the connects.
    chargepoint = db.session.get(ChargePoint, cp_id)  # loaded with the batch
    if chargepoint is None:  # deleted while connected
        return None
    status = record_boot(chargepoint, payload)
    return status, is_registered(chargepoint)


def _transient(exc: OperationalError) -> bool:
    """Whether the database refused the transaction for its timing only: PostgreSQL's
    deadlock_detected (40P01) and serialization_failure (40001)."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def batcher() -> StatusBatcher:
    """This process's batcher for the current application."""
    return of_this_process(_BATCHER, StatusBatcher)


def behind(app: Flask) -> bool:
    """Whether this process is behind with storing what its charge points send: more than
    a batch waiting in its batcher for `app`."""
    found = app.extensions.get(_BATCHER)
    return found is not None and found.backlog > MAX_BATCH
