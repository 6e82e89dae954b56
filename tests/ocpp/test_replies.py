"""A repeated message id: the same CALL gets the same answer, another CALL under that id is
handled as new, and an error is never replayed. Bad values a charge point sends (numbers
beyond a database integer, dates out of range, clocks far ahead, connector ids beyond the
limit) get a CALLERROR or are dated on receipt, never an InternalError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Connector
from dashboard.ocpp16 import frames
from dashboard.ocpp16.connection import Connection
from dashboard.ocpp16.frames import Frame, OcppError
from tests.ocpp.conftest import open_socket, raw_exchange, run
from tests.ocpp.test_chargepoint_flow import history, iso

BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "M"}]


def status(message_id, connector_id=1, state="Available", error_code="NoError", **extra):
    payload = {"connectorId": connector_id, "errorCode": error_code, "status": state}
    return [2, message_id, "StatusNotification", {**payload, **extra}]


def exchange(server, *frames_to_send, identity="CP-A"):
    async def scenario():
        async with open_socket(server, identity) as ws:
            await raw_exchange(ws, BOOT)
            return [await raw_exchange(ws, frame) for frame in frames_to_send]

    return run(scenario())


def test_same_id_for_another_connector_is_stored_not_answered_from_the_cache(app, server, world):
    replies = exchange(
        server,
        status("dup-1", 1, "Available"),
        status("dup-1", 2, "Faulted", "GroundFailure"),
    )
    assert replies == [[3, "dup-1", {}], [3, "dup-1", {}]]
    stored = [(r.connector_id, r.status, r.error_code) for r in history(app, world.cp_a)]
    assert stored == [(1, "Available", "NoError"), (2, "Faulted", "GroundFailure")]


def test_same_id_and_content_is_answered_once_stored_once(app, server, world):
    frame = status("same-1", 1, "Charging", timestamp=iso(datetime.now(UTC)))
    assert exchange(server, frame, frame) == [[3, "same-1", {}]] * 2
    assert len(history(app, world.cp_a)) == 1


class _Flaky:
    """A handler that fails the first time (a database restart, say), then works."""

    def __init__(self):
        self.calls = 0

    def __call__(self, connection, frame):
        self.calls += 1
        if self.calls == 1:
            error = OcppError(frames.INTERNAL_ERROR, "database unavailable")
            return frames.call_error(frame.message_id, error)
        return frames.call_result(frame.message_id, {})


def test_an_error_is_never_replayed_to_a_retry():
    handler = _Flaky()
    connection = Connection(None, "CP", 1, handler, lambda connection: None)
    frame = Frame(frames.CALL, "r-1", "Heartbeat", {})
    assert connection._answer(frame).startswith('[4,"r-1","InternalError"')
    assert connection._answer(frame) == '[3,"r-1",{}]'  # the retry was handled again
    assert connection._answer(frame) == '[3,"r-1",{}]'  # and now answered from memory
    assert handler.calls == 2


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (status("big", 2**31), "connectorId"),
        (status("big", 2**40), "connectorId"),
        (status("old", timestamp="0001-01-01T00:00:00+01:00"), "timestamp"),
        (status("late", timestamp="9999-12-31T23:59:59-01:00"), "timestamp"),
        (status("many", 33), "connectorId"),
    ],
)
def test_values_no_database_can_hold_are_a_property_constraint_violation(
    app, server, world, frame, field
):
    reply = exchange(server, frame, status("after", 1, "Charging"))
    assert reply[0][:3] == [4, frame[1], "PropertyConstraintViolation"]
    assert reply[0][4] == {"field": field}
    assert reply[1] == [3, "after", {}]  # the charge point goes on, and so does its batch
    assert [r.status for r in history(app, world.cp_a)] == ["Charging"]


def test_a_clock_far_ahead_does_not_freeze_the_connector(app, server, world):
    now = datetime.now(UTC)
    exchange(
        server,
        status("f1", 1, "Charging", timestamp="2099-01-01T00:00:00Z"),
        # the charge point's clock, corrected at its next boot, a little ahead of ours
        status("f2", 1, "Finishing", timestamp=iso(now + timedelta(seconds=5))),
        status("f3", 1, "Available", timestamp=iso(now + timedelta(seconds=6))),
    )
    rows = history(app, world.cp_a)
    assert [(r.status, r.applied) for r in rows] == [
        ("Charging", True),
        ("Finishing", True),
        ("Available", True),
    ]
    assert rows[0].event_time.year == now.year  # dated on receipt, not in 2099
    with app.app_context():
        connector = db.session.scalar(select(Connector).where(Connector.connector_id == 1))
        assert connector.connector_status == "Available"


def test_connectors_beyond_the_limit_are_refused(app, server, world):
    replies = exchange(server, status("c32", 32), status("c33", 33))
    assert replies[0] == [3, "c32", {}]
    assert replies[1][2] == "PropertyConstraintViolation"
    assert "at most 32" in replies[1][3]
