"""The group commit of StatusNotifications: many notifications share a transaction, each
is answered only once stored, and one that cannot be stored fails alone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from dashboard.extensions import db
from dashboard.models import Connector, ConnectorStatusHistory
from dashboard.ocpp16.ingest import StatusBatcher
from tests.conftest import recorded_statements


def submit_all(app, batcher, submissions):
    """Submit from one thread each, as connections do; returns each one's error or None."""
    results = [None] * len(submissions)
    start = threading.Barrier(len(submissions))

    def worker(index, cp_id, fields):
        with app.app_context():
            start.wait()
            try:
                batcher.submit(cp_id, **fields)
            except Exception as exc:
                results[index] = exc

    threads = [
        threading.Thread(target=worker, args=(i, cp_id, fields))
        for i, (cp_id, fields) in enumerate(submissions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def status(connector_id, status_name, n=0):
    return {
        "connector_id": connector_id,
        "status": status_name,
        "error_code": "NoError",
        "message_id": f"m-{connector_id}-{n}",
        "event_time": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
    }


def test_concurrent_notifications_are_all_stored(app, world):
    batcher = StatusBatcher(app)
    submissions = [(world.cp_a, status(n, "Charging", n)) for n in range(1, 21)]
    submissions += [(world.cp_b, status(n, "Preparing", n)) for n in range(1, 21)]
    assert submit_all(app, batcher, submissions) == [None] * 40
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Connector)) == 40
        rows = db.session.scalar(select(func.count()).select_from(ConnectorStatusHistory))
        assert rows == 40


def test_one_bad_notification_fails_alone(app, world):
    batcher = StatusBatcher(app)
    submissions = [(world.cp_a, status(n, "Charging", n)) for n in range(1, 6)]
    submissions.append((99999, status(1, "Charging")))  # no such charge point
    results = submit_all(app, batcher, submissions)
    assert results[:5] == [None] * 5
    assert results[5] is not None
    with app.app_context():
        stored = db.session.scalars(select(Connector.connector_id).order_by("connector_id"))
        assert list(stored) == [1, 2, 3, 4, 5]


def test_a_batch_registers_new_connectors_once_without_falling_back(app, world, caplog):
    """Connectors reported for the first time are registered in the batch: a second status
    for one of them in the same batch finds it, and nothing needs the one-by-one replay."""
    from dashboard.ocpp16.ingest import _Item

    batcher = StatusBatcher(app)
    items = [
        _Item(world.cp_a, status(7, "Preparing", 1)),
        _Item(world.cp_b, status(3, "Available", 1)),
        _Item(world.cp_a, status(7, "Charging", 2)),
        _Item(world.cp_a, status(8, "Faulted", 1)),
    ]
    with app.app_context():
        batcher._write(items)
    assert [item.error for item in items] == [None] * 4
    assert "replaying" not in caplog.text
    with app.app_context():
        seven = db.session.get(Connector, (7, world.cp_a))
        assert seven.connector_status == "Charging"
        history = db.session.scalars(
            select(ConnectorStatusHistory.status)
            .where(ConnectorStatusHistory.connector_cp_id == world.cp_a)
            .where(ConnectorStatusHistory.connector_id == 7)
            .order_by(ConnectorStatusHistory.event_time)
        ).all()
        assert history == ["Preparing", "Charging"]
        assert db.session.get(Connector, (3, world.cp_b)).connector_status == "Available"
        assert db.session.get(Connector, (8, world.cp_a)).connector_status == "Faulted"


def test_a_batch_recognises_retries_with_one_query(app, world):
    """A status sent again (same message id and content: with its own time, or without one
    within the retry window) records nothing, whether its first sending was in an earlier
    batch or in the same one; a reused id with other content is a new event. The batch
    looks for all of them in one query, not one each."""
    from dashboard.ocpp16.ingest import _Item

    batcher = StatusBatcher(app)
    untimed = {**status(1, "Preparing", 1), "event_time": None, "message_id": "u-1"}
    with app.app_context():
        batcher._write([_Item(world.cp_a, status(1, "Charging", 5)), _Item(world.cp_a, untimed)])
    items = [
        _Item(world.cp_a, status(1, "Charging", 5)),  # sent again, timed
        _Item(world.cp_a, dict(untimed)),  # sent again, untimed
        _Item(world.cp_a, {**untimed, "status": "Finishing"}),  # the id reused: new
        _Item(world.cp_b, status(2, "Available", 1)),
        _Item(world.cp_b, status(2, "Available", 1)),  # twice in this batch
    ]
    with recorded_statements(app) as statements, app.app_context():
        batcher._write(items)
    assert [item.error for item in items] == [None] * 5
    looked_up = [s for s in statements if "message_id" in s and s.lstrip().startswith("SELECT")]
    assert len(looked_up) == 1
    with app.app_context():
        rows = db.session.execute(
            select(ConnectorStatusHistory.connector_cp_id, ConnectorStatusHistory.status).order_by(
                ConnectorStatusHistory.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (world.cp_a, "Charging"),
        (world.cp_a, "Preparing"),
        (world.cp_a, "Finishing"),
        (world.cp_b, "Available"),
    ]


def test_the_retry_lookup_reads_only_the_pairs_it_asks_for(app, world, backend):
    """The history is kept, so the lookup of retries must not grow with it: it reads the
    rows of each (charge point, message id) asked for, an index lookup each. Asked for by
    charge points and by message ids apart, it read every row of the batch's charge points
    whose message id was any of the batch's (33 ms for a batch of 150 with 200 rows of
    history per charge point). Here each charge point used the message id the other asks
    for: nothing is read, nothing is a retry."""
    from dashboard.ocpp16.ingest import _Item
    from dashboard.services.connectors import recorded_already, status_event

    if backend != "postgresql":
        pytest.skip("SQLite's driver does not count the rows a SELECT read")
    batcher = StatusBatcher(app)
    first_a = {**status(1, "Charging", 5), "message_id": "x"}
    first_b = {**status(1, "Charging", 5), "message_id": "y"}
    with app.app_context():
        batcher._write([_Item(world.cp_a, first_a), _Item(world.cp_b, first_b)])
    with app.app_context():
        engine = db.engine
    read = []

    def count(conn, cursor, statement, *args):
        if "connector_status_history" in statement and statement.lstrip().startswith("SELECT"):
            read.append(cursor.rowcount)

    event.listen(engine, "after_cursor_execute", count)
    try:
        with app.app_context():
            crossed = [
                status_event(world.cp_a, **{**first_a, "message_id": "y"}),
                status_event(world.cp_b, **{**first_b, "message_id": "x"}),
            ]
            assert recorded_already(crossed) == set()
            again = [status_event(world.cp_a, **first_a), status_event(world.cp_b, **first_b)]
            assert recorded_already(again) == set(again)
    finally:
        event.remove(engine, "after_cursor_execute", count)
    assert read == [0, 2]


def test_a_batch_writes_its_connectors_with_one_statement_per_set_of_columns(app, world, backend):
    """The connectors a batch changed are written together (on PostgreSQL one UPDATE for
    those that changed the same columns; the unit of work's statement per connector on
    SQLite), each with only what changed: a late status changes only the time it was
    reported (and the connector's updated time), not the status applied. Both backends
    end with the same rows."""
    from dashboard.ocpp16.ingest import _Item

    # Times of today: a status of a day that is over marks that day for the uptime
    # aggregates, which writes (and flushes) per status.
    now = datetime.now(UTC)
    base = max(now - timedelta(minutes=1), now.replace(hour=0, minute=0, second=0))

    def today(connector_id, name, n):
        return {**status(connector_id, name, n), "event_time": base + timedelta(seconds=n)}

    batcher = StatusBatcher(app)
    with app.app_context():
        batcher._write([_Item(world.cp_a, today(n, "Available", 10)) for n in (1, 2, 3)])
        before = {
            c.connector_id: (c.connector_updated, c.status_reported)
            for c in db.session.scalars(select(Connector))
        }
    items = [
        _Item(world.cp_a, {**today(1, "Preparing", 20), "info": "plugged"}),
        _Item(world.cp_a, {**today(2, "Preparing", 20), "info": "waiting"}),
        _Item(world.cp_a, today(3, "Charging", 5)),  # older than the state applied: late
    ]
    with recorded_statements(app) as statements, app.app_context():
        batcher._write(items)
    assert [item.error for item in items] == [None] * 3
    updates = [s for s in statements if s.lstrip().startswith("UPDATE connectors")]
    if backend == "postgresql":
        assert len(updates) == 2  # the status columns; only the report time (late)
    with app.app_context():
        after = {c.connector_id: c for c in db.session.scalars(select(Connector))}
        assert [after[n].connector_status for n in (1, 2, 3)] == [
            "Preparing",
            "Preparing",
            "Available",
        ]
        assert (after[1].info, after[2].info, after[3].info) == ("plugged", "waiting", None)
        assert after[3].status_timestamp == base + timedelta(seconds=10)
        for n in (1, 2, 3):
            assert after[n].status_reported > before[n][1]
            assert after[n].connector_updated > before[n][0]


def test_a_connector_deleted_under_a_batch_fails_it_as_the_unit_of_work_would(app, world):
    """A connector deleted by another transaction between the batch's read and its write:
    the batch's UPDATE matches fewer rows than it changed, the flush fails, and the replay
    one by one fails that status alone (the charge point gets an error, not a false
    acknowledgement); the other connector's status is stored."""
    from sqlalchemy import delete
    from sqlalchemy import event as sa_event

    from dashboard.ocpp16.ingest import _Item

    batcher = StatusBatcher(app)
    with app.app_context():
        batcher._write([_Item(world.cp_a, status(n, "Available", 1)) for n in (1, 2)])
    removed = []

    # Deleted as the batch loads its connectors: after its read, before its write (when
    # the batch's first flush came, it would wait for the batch's own locks).
    def remove_once(session, instance):
        if not removed:
            removed.append(True)
            with db.engine.begin() as other:
                other.execute(
                    delete(Connector).where(
                        Connector.connector_cp_id == world.cp_a, Connector.connector_id == 2
                    )
                )

    items = [
        _Item(world.cp_a, status(1, "Charging", 2)),
        _Item(world.cp_a, status(2, "Charging", 2)),
    ]
    with app.app_context():
        sa_event.listen(db.session(), "loaded_as_persistent", remove_once)
        try:
            batcher._write(items)
        finally:
            sa_event.remove(db.session(), "loaded_as_persistent", remove_once)
    assert items[0].error is None
    with app.app_context():
        assert db.session.get(Connector, (1, world.cp_a)).connector_status == "Charging"
        gone_or_new = db.session.get(Connector, (2, world.cp_a))
    # Replayed alone, the status of connector 2 registers it afresh (a connector a charge
    # point reports is registered): either way, nothing acknowledged is lost.
    assert items[1].error is None and gone_or_new.connector_status == "Charging"


def test_a_flush_of_a_connector_deleted_meanwhile_fails_on_both_backends(app, world):
    """The unit of work raises StaleDataError when an UPDATE matches no row; the UPDATE of
    arrays (PostgreSQL) does too, so that no change is taken as written when it was not."""
    from sqlalchemy import delete
    from sqlalchemy.orm.exc import StaleDataError

    from dashboard.ocpp16.ingest import _Item

    with app.app_context():
        StatusBatcher(app)._write([_Item(world.cp_a, status(n, "Available", 1)) for n in (1, 2)])
    with app.app_context():
        one, two = db.session.scalars(select(Connector).order_by(Connector.connector_id))
        with db.engine.begin() as other:
            other.execute(delete(Connector).where(Connector.connector_id == 2))
        one.connector_status = two.connector_status = "Unavailable"
        with pytest.raises(StaleDataError):
            db.session.flush()
        db.session.rollback()


@pytest.mark.parametrize("deadlocks", [1, 3])
def test_a_batch_that_lost_a_deadlock_is_written_again_whole(app, world, monkeypatch, deadlocks):
    """A deadlock is another transaction's timing, not a bad message: the batch is written
    again whole (up to BATCH_ATTEMPTS times), not replayed one message at a time; only when
    every attempt lost is it replayed one by one. Nothing is lost either way."""
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    from dashboard.ocpp16.ingest import BATCH_ATTEMPTS, _Item

    calls = []
    record = StatusBatcher._record

    def losing(self, batch):
        calls.append(len(batch))
        record(self, batch)
        if len(calls) <= deadlocks:
            raise OperationalError("UPDATE chargepoints", {}, DeadlockDetected("deadlock"))

    monkeypatch.setattr(StatusBatcher, "_record", losing)
    items = [_Item(world.cp_a, status(n, "Available", 1)) for n in (1, 2, 3)]
    with app.app_context():
        StatusBatcher(app)._write(items)
        stored = db.session.scalar(select(func.count()).select_from(ConnectorStatusHistory))
    assert [item.error for item in items] == [None] * 3 and stored == 3
    if deadlocks < BATCH_ATTEMPTS:
        assert calls == [3] * (deadlocks + 1)
    else:
        assert calls == [3] * BATCH_ATTEMPTS + [1, 1, 1]


def test_a_status_stored_by_the_batch_costs_its_handler_no_transaction(app, world):
    """The batch commits a StatusNotification; the handler's own session, left with
    nothing to write, begins no transaction only to commit it. A handler that writes
    itself (DataTransfer) still commits what it wrote."""
    from sqlalchemy import event as sa_event

    from dashboard.models import DataTransferMessage
    from dashboard.ocpp16 import frames
    from dashboard.ocpp16.connection import Connection
    from dashboard.ocpp16.handlers import handle_call

    with app.app_context():
        connection = Connection(None, "CP-A", world.cp_a, handle_call, lambda _: None)
        connection.registered = True
        session = db.session()
        begun = []
        sa_event.listen(session, "after_transaction_create", lambda s, t: begun.append(t))
        payload = '{"connectorId": 2, "errorCode": "NoError", "status": "Charging"}'
        frame = frames.parse(f'[2, "s-1", "StatusNotification", {payload}]')
        reply = handle_call(connection, frame)
        assert reply == '[3,"s-1",{}]'
        assert begun == []
        stored = db.session.get(Connector, (2, world.cp_a))
        assert stored is not None and stored.connector_status == "Charging"
        db.session.rollback()
        begun.clear()
        transfer = '[2, "d-1", "DataTransfer", {"vendorId": "acme", "data": "hello"}]'
        assert '"status"' in handle_call(connection, frames.parse(transfer))
        assert begun and not session.in_transaction()
    with app.app_context():
        kept = db.session.scalars(select(DataTransferMessage.data)).all()
        assert kept == ["hello"]


def test_the_meter_values_of_a_batch_read_their_sessions_in_one_query(app, world):
    """Meter values of three sessions in one batch: their transactions are read with the
    connectors (one SELECT in all, not one per message, nor one more for the sessions),
    and each session and connector gets its own energy; values of an earlier session of a
    connector (sent late) go to that session, read in one more SELECT."""
    from decimal import Decimal

    from dashboard.models import ChargePoint, Transaction
    from dashboard.ocpp16.ingest import METER, _Item
    from dashboard.services.charging import start_transaction

    started = datetime(2026, 1, 1, tzinfo=UTC)
    batcher = StatusBatcher(app)
    with app.app_context():
        batcher._write([_Item(world.cp_a, status(n, "Charging", n)) for n in (1, 2, 3)])
        chargepoint = db.session.get(ChargePoint, world.cp_a)
        sessions = {}
        for n in (1, 2, 3):
            transaction, _ = start_transaction(
                chargepoint, connector_id=n, id_tag="TAG", meter_start=1000 * n, timestamp=started
            )
            sessions[n] = transaction.id
        db.session.commit()
    items = [
        _Item(
            world.cp_a,
            {
                "connector_id": n,
                "transaction_id": sessions[n],
                "meter_values": [
                    (
                        started + timedelta(minutes=1),
                        [{"value": str(1000 * n + 500), "unit": "Wh"}],
                    )
                ],
            },
            METER,
        )
        for n in (1, 2, 3)
    ]
    with recorded_statements(app) as statements, app.app_context():
        batcher._write(items)
    assert [item.error for item in items] == [None] * 3
    read = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert len(read) == 1, read
    assert "transactions" in read[0] and "connectors" in read[0]
    with app.app_context():
        for n in (1, 2, 3):
            transaction = db.session.get(Transaction, sessions[n])
            assert transaction.last_energy_wh == Decimal(1000 * n + 500)
            connector = db.session.get(Connector, (n, world.cp_a))
            assert connector.session_energy_wh == Decimal(500)
        # a new session at connector 1; the first one's last values arrive late
        chargepoint = db.session.get(ChargePoint, world.cp_a)
        later, _ = start_transaction(
            chargepoint,
            connector_id=1,
            id_tag="TAG",
            meter_start=5000,
            timestamp=started + timedelta(hours=1),
        )
        db.session.commit()
        later = later.id
    late = [
        _Item(
            world.cp_a,
            {
                "connector_id": 1,
                "transaction_id": transaction_id,
                "meter_values": [(started + timedelta(minutes=m), [{"value": str(v)}])],
            },
            METER,
        )
        for transaction_id, m, v in ((sessions[1], 2, 1700), (later, 62, 5100))
    ]
    with recorded_statements(app) as statements, app.app_context():
        batcher._write(late)
    assert [item.error for item in late] == [None] * 2
    read = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert len(read) == 2, read  # the connectors with their sessions; the earlier session
    with app.app_context():
        assert db.session.get(Transaction, sessions[1]).last_energy_wh == Decimal(1700)
        assert db.session.get(Transaction, later).last_energy_wh == Decimal(5100)
        assert db.session.get(Connector, (1, world.cp_a)).session_energy_wh == Decimal(100)


def test_a_connector_flushed_by_the_batch_and_changed_again_is_written_again(app, world):
    """What the flush wrote is what the connector holds in memory (the updated time the
    flush gave a late status too), and a change after that flush, in the same
    transaction, is a change of its own."""
    from dashboard.services.connectors import apply_status

    now = datetime.now(UTC)

    def ocpp(connector, name, seconds):
        apply_status(
            connector,
            status=name,
            error_code="NoError",
            source="ocpp",
            event_time=now + timedelta(seconds=seconds),
        )

    with app.app_context():
        connector = db.session.get(Connector, (1, world.cp_a)) or Connector(
            connector_id=1, connector_cp_id=world.cp_a
        )
        db.session.add(connector)
        db.session.commit()
        ocpp(connector, "Preparing", -50)
        db.session.commit()
        ocpp(connector, "Finishing", -60)  # late: only the time it was reported changes
        db.session.flush()
        assert not db.session.dirty
        row = db.session.execute(
            select(
                Connector.connector_status,
                Connector.connector_updated,
                Connector.status_reported,
            ).where(Connector.connector_cp_id == world.cp_a, Connector.connector_id == 1)
        ).one()
        assert row == ("Preparing", connector.connector_updated, connector.status_reported)
        ocpp(connector, "Charging", -40)
        db.session.commit()
    with app.app_context():
        assert db.session.get(Connector, (1, world.cp_a)).connector_status == "Charging"
        assert db.session.scalars(
            select(ConnectorStatusHistory.status)
            .where(ConnectorStatusHistory.connector_cp_id == world.cp_a)
            .order_by(ConnectorStatusHistory.id)
        ).all()[-3:] == ["Preparing", "Finishing", "Charging"]
