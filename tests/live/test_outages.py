"""Outages of Redis and PostgreSQL, on real servers (two gunicorn servers sharing PostgreSQL
and a Redis that the test stops and starts again).

While Redis is away: sign-in works (limits counted in memory), charge points connect and
are served by the process they reach, a call to a charge point held by the other process
is a clear 503 envelope, and the log says so once per interval, not per message. When it
returns: every open page reloads, and calls cross processes again. While PostgreSQL is
away, a StatusNotification gets an InternalError, and its retry after PostgreSQL returns is
stored (an error is never replayed from the reply cache)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from ocpp.v16 import call

from dashboard import create_app
from dashboard.extensions import db
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV, TEST_CONFIG
from tests.live.test_access import SignedIn, collect, live_socket
from tests.ocpp.conftest import Session, open_socket, raw_exchange
from tests.servers import PostgresServer, RedisServer, start_gunicorn, stop_process


@pytest.fixture(scope="module")
def outage_servers(postgresql_url, tmp_path_factory):
    """Two servers on the session's PostgreSQL with a Redis of their own (also holding the
    sign-in limits); yields (redis, port_a, port_b, log paths)."""
    redis = RedisServer().start()
    env = {
        **LIVE_SERVER_ENV,
        "REDIS_URL": redis.url,
        "RATELIMIT_STORAGE_URI": redis.url,
        "LOG_LEVEL": "info",
    }
    logs = tmp_path_factory.mktemp("outage")
    first = start_gunicorn(postgresql_url, logs / "a.log", workers=1, env=env)
    second = start_gunicorn(postgresql_url, logs / "b.log", workers=1, env=env)
    yield redis, first[1], second[1], (logs / "a.log", logs / "b.log")
    stop_process(first[0])
    stop_process(second[0])
    redis.stop()


@pytest.fixture
def backend():
    """Two servers need PostgreSQL."""
    return "postgresql"


def availability(port: int, token: str, cp_id: int) -> tuple[int, dict]:
    body = json.dumps({"id": "x", "req_data": {"connector_cp_id": cp_id, "type": "Inoperative"}})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/connectors/1/availability",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def keep_alive(session: Session) -> None:
    """Heartbeats, so that the server keeps a socket it would close when silent."""
    while True:
        await asyncio.sleep(1.5)
        await session.cp.call(call.Heartbeat(), suppress=False)


def test_a_redis_outage_breaks_only_what_needs_redis(app, world, outage_servers):
    redis, host_a, host_b, logs = outage_servers
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()
    browser_b = SignedIn(host_b, "admin@example.com").cookie
    token = world.tokens["admin"]
    marks = [log.stat().st_size for log in logs]

    async def scenario():
        async with live_socket(host_b, browser_b, "connectors") as page:
            await asyncio.sleep(0.5)
            redis.stop()
            await asyncio.sleep(1.5)  # the listeners have noticed

            # Sign-in: limits fall back to memory.
            signed_in = await asyncio.to_thread(SignedIn, host_a, "a@example.com")
            assert any(cookie.name == "session" for cookie in signed_in.jar)

            async with open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as first:
                charge_point = Session(first, "CP-A")
                assert (await charge_point.boot()).status == "Accepted"
                # A reconnect to the same process replaces the old socket, and is served.
                async with open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as second:
                    await asyncio.wait_for(first.wait_closed(), 5)
                    replacement = Session(second, "CP-A")
                    alive = asyncio.create_task(keep_alive(replacement))
                    await asyncio.sleep(6)  # longer than any wait for Redis
                    assert await replacement.status(1, "Charging") is not None
                    local = await asyncio.to_thread(availability, host_a, token, world.cp_a)
                    remote = await asyncio.to_thread(availability, host_b, token, world.cp_a)

                    redis.start()  # the same port, empty
                    frames: list[str] = []
                    await collect(page, frames, 8)
                    after = await asyncio.to_thread(availability, host_b, token, world.cp_a)
                    alive.cancel()
                    await replacement.stop()
            return local, remote, after, frames, charge_point

    local, remote, after, frames, charge_point = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert local == (200, local[1]) and local[1]["res_data"] == {"status": "Accepted"}
    assert remote[0] == 503 and "Redis is unavailable" in remote[1]["message"]
    assert any('id="live-resync"' in frame for frame in frames)  # the page reloads
    assert after[0] == 200 and after[1]["res_data"] == {"status": "Accepted"}
    written = [log.read_text()[mark:] for log, mark in zip(logs, marks, strict=True)]
    assert not any("Traceback" in text for text in written), written
    assert all(text.count("Redis unavailable") <= 6 for text in written), written


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL of this test's own (it stops it), with CP-A registered."""
    server = PostgresServer().start()
    url = server.create_database("outage")
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from dashboard.cli import create_company
        from dashboard.services.permissions import sync_builtin_roles

        db.create_all()
        sync_builtin_roles()
        company = create_company("Company A")
        create_chargepoint(SYSTEM, identity="CP-A", company_id=company.id)
        db.session.commit()
        db.engine.dispose()
    process, port = start_gunicorn(url, tmp_path / "server.log", workers=1, env=LIVE_SERVER_ENV)
    yield server, port, app
    stop_process(process)
    server.stop()


def test_a_status_refused_during_a_database_restart_is_stored_when_retried(own_postgres):
    server, port, app = own_postgres
    frame = [
        2,
        "pg-1",
        "StatusNotification",
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
    ]

    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{port}/ocpp", "CP-A") as ws:
            boot = [2, "b", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}]
            assert (await raw_exchange(ws, boot))[2]["status"] == "Accepted"
            await asyncio.to_thread(server.pause)
            during = await raw_exchange(ws, frame, timeout=40)
            await asyncio.to_thread(server.resume)
            replies = []
            for _ in range(20):  # the charge point retries the same message, same id
                replies.append(await raw_exchange(ws, frame, timeout=40))
                if replies[-1][0] == 3:
                    break
                await asyncio.sleep(0.5)
            return during, replies

    during, replies = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert during[:3] == [4, "pg-1", "InternalError"]
    assert replies[-1] == [3, "pg-1", {}]
    with app.app_context():
        from dashboard.models import ConnectorStatusHistory

        rows = db.session.scalars(db.select(ConnectorStatusHistory)).all()
        assert [(r.status, r.error_code) for r in rows] == [("Faulted", "GroundFailure")]
        db.session.remove()
        db.engine.dispose()
