"""Statuses kept fresh: a charge point that reconnects and says nothing is asked for its
statuses (TriggerMessage) once the connection has settled, and a socket that stops
answering pings is closed, its charge point then shown offline. On a server of their own
with a settling period of 1 s and pings every second."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from dashboard.extensions import db
from dashboard.models import ChargePoint, Command
from dashboard.models.types import utcnow
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV
from tests.ocpp.conftest import Session, open_socket, run
from tests.servers import start_gunicorn, stop_process


@pytest.fixture(scope="module")
def quick_server(postgresql_url, tmp_path_factory):
    env = {**LIVE_SERVER_ENV, "OCPP_STATUS_SETTLE_SECONDS": "1", "OCPP_PING_INTERVAL": "1"}
    log = tmp_path_factory.mktemp("fresh") / "server.log"
    process, port = start_gunicorn(postgresql_url, log, workers=1, env=env)
    yield port
    stop_process(process)


@pytest.fixture
def backend():
    return "postgresql"


@pytest.fixture
def booted_before(app, world):
    """CP-A booted in an earlier connection, with two connectors."""
    with app.app_context():
        for number in (1, 2):
            create_connector(SYSTEM, connector_id=number, connector_cp_id=world.cp_a, source="api")
        db.session.get(ChargePoint, world.cp_a).last_boot = utcnow()
        db.session.commit()


def api(port, token, path):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["res_data"]


def test_a_silent_reconnect_is_asked_for_every_status(app, world, quick_server, booted_before):
    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{quick_server}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            for _ in range(40):  # says nothing; the server asks within about a second
                await asyncio.sleep(0.1)
                if session.cp.received:
                    break
            asked = list(session.cp.received)
            for number in (1, 2):  # ... and the charge point answers with its statuses
                await session.status(number, "Available")
            await session.stop()
            return asked

    asked = run(scenario())
    assert asked == [("TriggerMessage", {"requested_message": "StatusNotification"})]
    connectors = api(
        quick_server, world.tokens["admin"], f"/api/v1/connectors/chargepoint/{world.cp_a}"
    )
    assert all(c["status_reported_at"] is not None for c in connectors)
    with app.app_context():
        (logged,) = db.session.scalars(db.select(Command)).all()
        assert (logged.action, logged.source, logged.outcome) == (
            "TriggerMessage",
            "system",
            "answered",
        )


def test_only_the_connectors_not_reported_are_asked_for(world, quick_server, booted_before):
    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{quick_server}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.status(1, "Charging")
            await asyncio.sleep(2)
            await session.stop()
            return session.cp.received

    assert run(scenario()) == [
        ("TriggerMessage", {"requested_message": "StatusNotification", "connector_id": 2})
    ]


def test_a_dead_socket_is_found_within_two_pings(world, quick_server, booted_before):
    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{quick_server}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            for number in (1, 2):
                await session.status(number, "Charging")
            online = await asyncio.to_thread(
                api, quick_server, world.tokens["admin"], f"/api/v1/chargepoints/{world.cp_a}"
            )
            # The charge point's network goes: nothing it is sent is read, pings included.
            ws.transport.pause_reading()
            went = time.monotonic()
            while time.monotonic() - went < 6:
                await asyncio.sleep(0.25)
                now = await asyncio.to_thread(
                    api, quick_server, world.tokens["admin"], f"/api/v1/chargepoints/{world.cp_a}"
                )
                if now["chargepoint_connection"] == "offline":
                    return online, time.monotonic() - went
            return online, None

    online, found_after = run(scenario())
    assert online["chargepoint_connection"] == "online"
    assert found_after is not None and found_after < 3.5  # two intervals of 1 s, and slack


def test_no_charge_point_is_asked_while_the_process_is_behind(app, monkeypatch):
    """While more than a batch of messages waits to be stored (a reload: the charge points
    are sending their statuses already), a settled connection is not asked for its
    statuses; it is looked at again a period later, and asked once the backlog is gone."""
    import threading
    from types import SimpleNamespace

    from dashboard.ocpp16 import FreshStatuses
    from dashboard.ocpp16.ingest import _BATCHER, MAX_BATCH, StatusBatcher

    app.config["OCPP_STATUS_SETTLE_SECONDS"] = 0.2
    waiting = StatusBatcher(app)
    waiting._queue.extend([object()] * (MAX_BATCH + 1))  # never written: no thread runs
    monkeypatch.setitem(app.extensions, _BATCHER, waiting)
    fresh = FreshStatuses(app)
    asked, was_asked = [], threading.Event()

    def ask(settled):
        asked.append([connection.cp_id for connection in settled])
        was_asked.set()

    monkeypatch.setattr(fresh, "_ask", ask)
    connection = SimpleNamespace(
        cp_id=7, settle_from=time.monotonic(), closed=threading.Event(), busy=False
    )
    fresh.watch(connection)
    assert not was_asked.wait(0.7)  # settled after 0.2 s, looked at again twice since
    waiting._queue.clear()
    assert was_asked.wait(2)
    assert asked == [[7]]
