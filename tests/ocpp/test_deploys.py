"""Deploys that lose nothing: gunicorn told to stop (TERM) or to reload (HUP) while charge
points send StatusNotifications. Every charge point socket is closed with 1012 "service
restart" once its frame in hand is answered; every acknowledged status is stored, none
twice; after a reload the charge points come straight back. Browsers' live sockets close
with 1012 too, and event streams end, so that nothing holds a stopping worker open."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dashboard.extensions import db
from dashboard.models import ConnectorStatusHistory
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV, recorded_statements
from tests.live.test_channel import _signed_in_cookie
from tests.ocpp.conftest import open_socket, raw_exchange, run
from tests.servers import ROOT, start_gunicorn, stop_process

FLEET = 12
STATUSES = ("Available", "Preparing", "Charging", "Finishing")


@pytest.fixture
def server(app, database_url, tmp_path):
    """A gunicorn server of its own (it is stopped or reloaded by the test)."""
    process, port = start_gunicorn(database_url, tmp_path / "server.log", env=LIVE_SERVER_ENV)
    yield process, port
    if process.poll() is None:
        stop_process(process)


class ChargePointRun:
    """One charge point: boots, then sends StatusNotifications until its socket closes;
    with `reconnect`, connects again (at once, as after a 1012) and goes on until `until`."""

    def __init__(self, port: int, identity: str, until: float, reconnect: bool):
        self.port, self.identity, self.until, self.reconnect = port, identity, until, reconnect
        self.acked: list[str] = []
        self.close_codes: list[int | None] = []
        self.sessions = 0

    async def run(self):
        n = 0
        while time.monotonic() < self.until:
            try:
                async with open_socket(f"ws://127.0.0.1:{self.port}/ocpp", self.identity) as ws:
                    self.sessions += 1
                    boot = {"chargePointVendor": "Acme", "chargePointModel": "M-1"}
                    await raw_exchange(ws, [2, f"boot-{n}", "BootNotification", boot])
                    while time.monotonic() < self.until:
                        n += 1
                        message_id = f"{self.identity}-{n}"
                        status = {
                            "connectorId": 1,
                            "errorCode": "NoError",
                            "status": STATUSES[n % len(STATUSES)],
                        }
                        reply = await raw_exchange(
                            ws, [2, message_id, "StatusNotification", status], timeout=10
                        )
                        if reply[0] == 3:
                            self.acked.append(message_id)
                        await asyncio.sleep(0.02)
            except ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
                if not self.reconnect:
                    return
            except OSError:  # the server is gone (stopped), or not listening for a moment
                if not self.reconnect:
                    return
                await asyncio.sleep(0.05)


def _fleet(app, world) -> list[str]:
    identities = [f"D-{n:02d}" for n in range(FLEET)]
    with app.app_context():
        for identity in identities:
            create_chargepoint(SYSTEM, identity=identity, company_id=world.company_a, name=identity)
        db.session.commit()
    return identities


def _stored(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            select(ConnectorStatusHistory.message_id, func.count())
            .where(ConnectorStatusHistory.message_id.like("D-%"))
            .group_by(ConnectorStatusHistory.message_id)
        )
        return dict(rows.all())


def _under_load(app, world, server, sig, seconds: float, reconnect: bool):
    """The fleet sends statuses; after 2 s the server gets `sig`. Returns each charge
    point's run and the seconds from the signal until every run had ended."""
    process, port = server
    until = time.monotonic() + seconds
    runs = [ChargePointRun(port, identity, until, reconnect) for identity in _fleet(app, world)]

    async def scenario():
        tasks = [asyncio.create_task(r.run()) for r in runs]
        await asyncio.sleep(2)
        signalled = time.monotonic()
        process.send_signal(sig)
        await asyncio.gather(*tasks)
        return time.monotonic() - signalled

    return runs, run(scenario(), timeout=60)


def _each_acknowledged_stored_once(app, runs) -> list[str]:
    stored = _stored(app)
    acked = [m for r in runs for m in r.acked]
    assert [m for m in acked if stored.get(m) != 1] == []
    assert all(count == 1 for count in stored.values())
    return acked


def test_a_stop_closes_charge_points_with_1012_and_loses_nothing(app, world, server, tmp_path):
    runs, closing = _under_load(app, world, server, signal.SIGTERM, 30, reconnect=False)
    server[0].wait(timeout=30)
    assert all(r.close_codes == [1012] for r in runs), [r.close_codes for r in runs]
    assert closing < 10  # not the 20 s of graceful_timeout
    # The server closed every socket without an error of its own (gunicorn read sockets
    # closed under it: a traceback each).
    assert "Socket error processing request" not in (tmp_path / "server.log").read_text()
    acked = _each_acknowledged_stored_once(app, runs)
    assert len(acked) > FLEET * 5
    with app.app_context():  # each marked disconnected, once
        from dashboard.models import ChargePoint, OutboxEvent

        fleet = select(ChargePoint.id).where(ChargePoint.identity.like("D-%"))
        assert (
            db.session.scalar(
                select(func.count()).where(
                    ChargePoint.id.in_(fleet), ChargePoint.connected_since.is_not(None)
                )
            )
            == 0
        )
        disconnected = db.session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "chargepoint.disconnected")
        )
        assert disconnected == FLEET


def test_a_reload_brings_charge_points_straight_back_and_loses_nothing(app, world, server):
    runs, _ = _under_load(app, world, server, signal.SIGHUP, 6, reconnect=True)
    assert all(1012 in r.close_codes for r in runs), [r.close_codes for r in runs]
    assert all(r.sessions >= 2 for r in runs)  # back, to the new worker
    _each_acknowledged_stored_once(app, runs)


def _stream_ends(port: int, token: str, timeout: float) -> bool:
    """Open the event stream and read it; whether the server ended it within `timeout`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    connection.request("GET", "/api/v1/events", headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    try:
        response.read()  # to the end of the stream
        return True
    except TimeoutError:
        return False
    finally:
        connection.close()


def test_a_stop_closes_browser_sockets_with_1012_and_ends_event_streams(app, world, server):
    """A dashboard or an event stream left open does not hold a stopping worker until
    gunicorn's graceful timeout (20 s) kills it: the browser is told 1012 and reconnects
    (htmx's ws extension does, for 1012), the stream ends and its client resumes from
    Last-Event-ID elsewhere."""
    process, port = server
    cookie = _signed_in_cookie(port, "admin@example.com")

    async def scenario():
        stream = asyncio.create_task(
            asyncio.to_thread(_stream_ends, port, world.tokens["admin"], 15)
        )
        async with connect(
            f"ws://127.0.0.1:{port}/live/ws?view=connectors",
            proxy=None,
            additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        ) as ws:
            await asyncio.sleep(1)  # the stream is open too
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 15)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
        return code, await stream, signalled

    code, stream_ended, signalled = run(scenario(), timeout=40)
    process.wait(timeout=30)
    assert code == 1012
    assert stream_ended
    assert time.monotonic() - signalled < 10  # not the 20 s of graceful_timeout


def _get(connection: socket.socket) -> bytes:
    """GET /healthz on an open connection (kept alive); the start of the answer."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return connection.recv(200)


def test_a_stopping_worker_accepts_no_new_connection(app, world, server):
    """Told to stop, the worker stops accepting at once, not when gunicorn's loop next
    wakes (up to a second later, more on a busy worker): in a reload, a charge point that
    comes back that fast must reach a new worker, not the old one on its way out. An idle
    kept-alive HTTP connection holds the stopping worker open meanwhile."""
    process, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as kept:
        assert _get(kept).startswith(b"HTTP/1.1 200")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the worker's _drain ran; gunicorn's own loop has not woken
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as late:
                answer = _get(late)
        except OSError:  # refused, or left in the queue for processes that still accept
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200"), answer
    process.wait(timeout=30)


class _Socket:
    """A connection's part the registry uses: its identity, and whether it was drained;
    with `on_drain`, what to look at as it is told to close."""

    def __init__(self, identity: str, cp_id: int = 0, since=None, on_drain=None):
        self.identity, self.cp_id, self.since = identity, cp_id, since
        self.disconnect_recorded = False
        self.drained = False
        self.on_drain = on_drain

    def drain(self) -> None:
        self.drained = True
        if self.on_drain is not None:
            self.on_drain(self)

    def close(self, reason: int = 1000, message: str = "") -> None:
        pass


def test_a_connection_opened_while_the_process_stops_is_drained_at_once(monkeypatch):
    """gunicorn's worker accepts for up to a second after it was told to stop: a charge
    point that reconnected to it then is sent on (1012) at once, not kept until the
    graceful timeout kills it."""
    from dashboard.ocpp16 import registry

    monkeypatch.setattr(registry, "_connections", {})
    monkeypatch.setattr(registry, "_draining", False)
    before, after = _Socket("CP-BEFORE"), _Socket("CP-AFTER")
    registry.register(before)
    assert registry.drain_all() == 1 and before.drained
    registry.register(after)
    assert after.drained


def test_a_stopping_process_marks_its_charge_points_disconnected_before_closing(
    app, world, monkeypatch
):
    """The marks are written before the sockets close (so they never meet the new workers'
    connect marks for the same rows), in one statement for all, and each connection knows
    it needs no mark of its own as it closes."""
    from dashboard import ocpp16
    from dashboard.models import ChargePoint
    from dashboard.ocpp16 import registry
    from dashboard.services.chargepoints import record_connected

    monkeypatch.setattr(registry, "_connections", {})
    monkeypatch.setattr(registry, "_draining", False)
    with app.app_context():
        since = record_connected(world.cp_a, world.cp_b)
        db.session.commit()
    seen_at_close = []

    def look(connection):
        with app.app_context():
            seen_at_close.append(db.session.get(ChargePoint, connection.cp_id).connected_since)
            db.session.remove()

    sockets = [
        _Socket("CP-A", world.cp_a, since, look),
        _Socket("CP-B", world.cp_b, since, look),
        _Socket("CP-NEW", world.cp_a, None, look),  # its connected mark not written yet
    ]
    for connection in sockets:
        registry.register(connection)
    with recorded_statements(app) as statements:
        assert ocpp16.drain(app) == 3
    assert seen_at_close == [None, None, None]
    assert [c.drained for c in sockets] == [True] * 3
    assert [c.disconnect_recorded for c in sockets] == [True, True, False]
    assert sum(s.lstrip().upper().startswith("UPDATE CHARGEPOINTS") for s in statements) == 1


# A stopping worker under gevent: the listening socket is shared with other processes (as
# gunicorn's arbiter and workers share it), a watcher sits on a descriptor closed under it
# (harmless until libev rebuilds its epoll set), the server is told to stop, and then a
# connection arrives for the processes that still accept.
_STOPPING_WORKER = """
import os, socket
from gevent import monkey
monkey.patch_all()
import gevent
from dashboard.gunicorn_worker import ListenerKeepingServer

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
listener.set_inheritable(True)
address = listener.getsockname()
other = os.posix_spawn("/bin/sleep", ["sleep", "30"], dict(os.environ))
server = ListenerKeepingServer(listener, lambda client, address: client.close())
server.start()
read_end, write_end = os.pipe()
watcher = gevent.get_hub().loop.io(read_end, 1)
watcher.start(lambda: None)
gevent.sleep(0.05)
os.close(read_end)
server.close()
gevent.sleep(0.05)
late = socket.create_connection(address)
gevent.sleep(0.3)
os.kill(other, 9)
os.waitpid(other, 0)
print("alive", server.started, flush=True)
"""


def test_a_stopping_worker_survives_a_connection_to_its_shared_listener():
    """Closing its descriptor of the shared listening socket left the socket in the
    worker's epoll set; the next connection made libev rebuild the set, and a watcher on a
    closed descriptor then aborted the worker (`I/O watcher with invalid fd found in
    epoll_ctl`): old workers died so in reloads, their charge points cut without 1012.
    The worker's server stops accepting and keeps the descriptor instead."""
    result = subprocess.run(
        [sys.executable, "-c", _STOPPING_WORKER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split() == ["alive", "False"]


def test_a_connection_may_take_longer_than_keepalive_for_its_first_request(gunicorn_sqlite):
    """gunicorn waits `keepalive` (5 s) for each request of a connection, the first one
    too, and then closes it without a word: a worker too busy to read a new connection
    within 5 s (the new workers of a reload) cut thousands of reconnecting charge points
    ("did not receive a valid HTTP response"). The worker gives a first request
    FIRST_REQUEST_TIMEOUT; a kept-alive connection still closes after `keepalive` idle."""
    from dashboard.gunicorn_worker import FIRST_REQUEST_TIMEOUT

    assert FIRST_REQUEST_TIMEOUT >= 30
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn_sqlite, timeout=20)
    try:
        connection.connect()
        time.sleep(6.5)  # more than gunicorn's keepalive (5 s) before the first request
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok", "database": "ok"}
        started = time.monotonic()
        assert connection.sock.recv(65536) == b""  # idle after an answer: closed at keepalive
        assert 3 < time.monotonic() - started < 10
    finally:
        connection.close()


# A burst of connections waits in the listen queue before the worker's server starts; the
# server, set to one accept per wake-up as gunicorn sets it for several workers, counts the
# connections each wake-up (`_do_read`) accepted (`do_read`).
_BURST = """
import socket
from types import SimpleNamespace
from gevent import monkey
monkey.patch_all()
import gevent
from dashboard.gunicorn_worker import ACCEPTS_PER_WAKEUP, kept_server

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
clients = [socket.create_connection(listener.getsockname()) for _ in range(20)]
accepted, per_wakeup = [], []


class Counting(kept_server(SimpleNamespace(servers=[]))):
    def _do_read(self):
        per_wakeup.append(0)
        super()._do_read()

    def do_read(self):
        found = super().do_read()
        if found is not None:
            per_wakeup[-1] += 1
        return found


server = Counting(listener, lambda client, address: accepted.append(client))
server.max_accept = 1  # gunicorn's, with several workers
server.start()
for _ in range(100):
    if len(accepted) == len(clients):
        break
    gevent.sleep(0.01)
print(ACCEPTS_PER_WAKEUP, len(accepted), max(per_wakeup), len(per_wakeup))
"""


def test_a_worker_accepts_a_burst_of_connections_per_wakeup():
    """gunicorn makes each gevent worker of several accept one connection per turn of its
    loop; a fleet reconnecting at once then filled the listen queue (SYNs dropped, retried
    seconds later) while the workers fell behind. The worker's servers accept up to
    ACCEPTS_PER_WAKEUP each time the listener wakes them."""
    result = subprocess.run(
        [sys.executable, "-c", _BURST], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    most, accepted, largest, wakeups = map(int, result.stdout.split())
    assert most > 1
    assert accepted == 20
    assert largest == min(most, 20)  # a queued burst is taken in one wake-up
    assert wakeups < 20
