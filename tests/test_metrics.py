"""/metrics: the token that guards it, and the totals of two gunicorn workers added up
(prometheus_client's multiprocess mode), with what the database holds."""

from __future__ import annotations

import asyncio
import glob
import os
import re
import time
import urllib.request

import pytest

from dashboard.extensions import db
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV
from tests.ocpp.conftest import open_socket, raw_exchange, run
from tests.servers import start_gunicorn, stop_process

TOKEN = "metrics-test-token"
FLEET = 24


def test_metrics_need_the_token(app, client):
    assert client.get("/metrics").status_code == 404  # no METRICS_TOKEN: off
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.mimetype == "text/plain"
    assert "plugboard_chargepoints" in right.get_data(as_text=True)


@pytest.fixture
def backend():
    """Two workers need PostgreSQL (and Redis)."""
    return "postgresql"


@pytest.fixture
def two_workers(app, postgresql_url, redis_server, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {
        **LIVE_SERVER_ENV,
        "REDIS_URL": redis_server.url,
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    process, port = start_gunicorn(postgresql_url, tmp_path / "server.log", workers=2, env=env)
    try:
        yield port, folder
    finally:
        stop_process(process)


def _scrape(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels) -> float:
    """The sample `name` with exactly these labels (in any order), 0 when absent."""
    wanted = {key: str(value) for key, value in labels.items()}
    for found in re.finditer(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", text, re.MULTILINE):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or ""))
        if pairs == wanted:
            return float(found.group(2))
    return 0.0


async def _fleet(port: int, identities: list[str]) -> None:
    """Each charge point in turn: a boot, two StatusNotifications (one broken), a
    heartbeat; then all stay connected while the metrics are read."""

    async def one(identity):
        ws = await open_socket(f"ws://127.0.0.1:{port}/ocpp", identity).__aenter__()
        boot = {"chargePointVendor": "Acme", "chargePointModel": "M-1"}
        assert (await raw_exchange(ws, [2, "b", "BootNotification", boot]))[0] == 3
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        assert (await raw_exchange(ws, [2, "s1", "StatusNotification", status]))[0] == 3
        broken = {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}
        reply = await raw_exchange(ws, [2, "s2", "StatusNotification", broken])
        assert reply[0] == 4
        assert (await raw_exchange(ws, [2, "h", "Heartbeat", {}]))[0] == 3
        return ws

    sockets = []
    for identity in identities:  # one after another: each worker waits to accept the next
        sockets.append(await one(identity))
        await asyncio.sleep(0.05)
    return sockets


def test_two_workers_scraped_give_the_totals(app, world, two_workers):
    port, folder = two_workers
    identities = [f"M-{n:02d}" for n in range(FLEET)]
    with app.app_context():
        for identity in identities:
            create_chargepoint(SYSTEM, identity=identity, company_id=world.company_a, name=identity)
        db.session.commit()

    async def scenario():
        sockets = await _fleet(port, identities)
        try:
            return [_scrape(port) for _ in range(6)]  # several scrapes: either worker answers
        finally:
            for ws in sockets:
                await ws.close()

    scrapes = run(scenario(), timeout=60)
    # Both workers served charge points: each counted in a file of its own.
    counting = [
        path for path in glob.glob(os.path.join(folder, "counter_*.db")) if os.path.getsize(path)
    ]
    assert len(counting) == 2, counting
    for text in scrapes:
        messages = "plugboard_ocpp_messages_total"
        assert _value(text, messages, action="BootNotification", outcome="ok") == FLEET
        assert _value(text, messages, action="StatusNotification", outcome="ok") == FLEET
        assert (
            _value(
                text, messages, action="StatusNotification", outcome="PropertyConstraintViolation"
            )
            + _value(text, messages, action="StatusNotification", outcome="FormationViolation")
            == FLEET
        )
        assert _value(text, messages, action="Heartbeat", outcome="ok") == FLEET
        assert _value(text, "plugboard_ocpp_sockets") == FLEET
        assert _value(text, "plugboard_chargepoints", state="online") == FLEET
        assert (
            _value(text, "plugboard_connectors", status="Available", company_id=world.company_a)
            == FLEET
        )
        # Each worker's batches: the connected marks, the boots, the StatusNotifications
        # and the heartbeats ("seen").
        assert _value(text, "plugboard_ingest_batch_size_sum") == 4 * FLEET
    assert "M-0" not in "".join(scrapes)  # no identity is a label
    # Each worker timed its collections (dashboard/gc_tuning.py), at least the full one
    # that froze the loaded application, and its sweeper moved them into the histogram.
    deadline = time.monotonic() + 15
    while True:
        text = _scrape(port)
        if _value(text, "plugboard_gc_pause_seconds_count", generation="2") >= 2:
            break
        assert time.monotonic() < deadline, "no garbage collection of both workers counted"
        time.sleep(0.5)
