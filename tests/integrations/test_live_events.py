"""Events through real servers (gunicorn, gevent workers): webhooks that survive a SIGKILL
of the server while the receiver is down, the SSE stream resumed with Last-Event-ID, and
one incident with two servers sweeping."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import time
import urllib.request

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import OutboxEvent
from tests.conftest import LIVE_SERVER_ENV
from tests.integrations.receiver import Receiver
from tests.integrations.test_webhooks import _endpoint
from tests.servers import free_port, start_gunicorn, stop_process


def _api(port: int, token: str, method: str, path: str, req_data=None):
    body = None
    if req_data is not None:
        body = json.dumps({"id": "t", "req_data": req_data, "timestamp": "2024-01-15T10:30:00Z"})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body.encode() if body else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _kill(process) -> None:
    """SIGKILL the gunicorn master and its workers: nothing gets to clean up."""
    children = [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and _parent(int(pid)) == process.pid
    ]
    for pid in [process.pid, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(10)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_webhooks_lose_nothing_when_the_server_is_killed_while_the_receiver_is_down(
    app, world, connectors, database_url, tmp_path, as_
):
    env = {**LIVE_SERVER_ENV, "WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_CONCURRENCY": "4"}
    server, port = start_gunicorn(database_url, tmp_path / "first.log", env=env)
    receiver_port = free_port()
    receiver = Receiver(receiver_port)
    token = world.tokens["admin"]  # writes are a superadmin's
    try:
        hook = _endpoint(as_, "user_a", receiver.url, event_types=["connector.status_changed"])
        receiver.stop()  # the receiver goes down
        statuses = ["Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]
        for status in statuses:
            _api(
                port,
                token,
                "PUT",
                "/api/v1/connectors/1",
                {"connector_cp_id": world.cp_a, "connector_status": status},
            )
        time.sleep(2)  # attempts fail meanwhile
        _kill(server)
    except BaseException:
        stop_process(server)
        raise
    receiver = Receiver(receiver_port)  # both come back
    server, port = start_gunicorn(database_url, tmp_path / "second.log", env=env)
    try:
        received = receiver.wait_for(len(statuses), timeout=60)
    finally:
        stop_process(server)
        receiver.stop()
    events = receiver.verified(hook["secret"])
    firsts = []
    for event in events:  # at least once: a repeat may come, never a gap or a reordering
        if event["id"] not in [e["id"] for e in firsts]:
            firsts.append(event)
    assert [e["data"]["status"] for e in firsts] == statuses
    assert [e["id"] for e in firsts] == sorted(e["id"] for e in firsts)
    assert len(received) >= len(statuses)


def _sse(port: int, token: str, last_id: int | None, count: int, timeout: float = 15) -> list:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    connection.request("GET", "/api/v1/events", headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events, fields = [], {}
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        line = response.fp.readline().decode().rstrip("\n")
        if line == "":
            if "data" in fields:
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    connection.close()
    return events


def test_the_event_stream_resumes_from_last_event_id_without_gaps_or_repeats(
    app, world, connectors, live_port
):
    admin, user_a = world.tokens["admin"], world.tokens["user_a"]

    def change(status):
        for cp_id in (world.cp_a, world.cp_b):
            _api(
                live_port,
                admin,
                "PUT",
                "/api/v1/connectors/1",
                {"connector_cp_id": cp_id, "connector_status": status},
            )

    change("Preparing")
    first = _sse(live_port, user_a, None, 3)  # company A's only, from the start
    assert [(e[1], e[2]["data"].get("status")) for e in first] == [
        ("connector.created", None),
        ("connector.status_changed", "Available"),
        ("connector.status_changed", "Preparing"),
    ]
    assert {e[2]["company_id"] for e in first} == {world.company_a}
    last = first[-1][0]
    change("Charging")
    change("Finishing")
    rest = _sse(live_port, user_a, last, 2)
    assert [e[2]["data"]["status"] for e in rest] == ["Charging", "Finishing"]
    with app.app_context():
        expected = list(
            db.session.scalars(
                select(OutboxEvent.id)
                .where(OutboxEvent.company_id == world.company_a, OutboxEvent.id > last)
                .order_by(OutboxEvent.id)
            )
        )
    assert [e[0] for e in rest] == expected  # no gap, no repeat
    # Polling gives the same.
    page = _api(live_port, user_a, "GET", f"/api/v1/events?after={last}&limit=1")["res_data"]
    assert [e["id"] for e in page["events"]] == expected[:1] and page["more"] is True
