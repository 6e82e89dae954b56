"""Two servers (think: two hosts, or two workers) on one PostgreSQL and one Redis: a charge
point on one, browsers on the other."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect

from dashboard.extensions import db
from dashboard.live.views import ACCOUNT_CHANGED
from dashboard.services.connectors import create_connector
from dashboard.services.permissions import SYSTEM
from tests.conftest import LIVE_SERVER_ENV
from tests.live.test_access import SignedIn, _closed_by
from tests.live.test_channel import _signed_in_cookie
from tests.ocpp.conftest import Session, open_socket
from tests.servers import serve_two


@pytest.fixture(scope="session")
def two_servers(postgresql_url, redis_server, tmp_path_factory):
    """Ports of two gunicorn servers (one gevent worker each) sharing PostgreSQL and Redis."""
    logs = tmp_path_factory.mktemp("two-servers")
    yield from serve_two(postgresql_url, redis_server.url, logs, LIVE_SERVER_ENV)


@pytest.fixture
def backend():
    """These tests need PostgreSQL: SQLite has no place for two servers' writers."""
    return "postgresql"


@pytest.fixture
def setup(app, world, two_servers):
    with app.app_context():
        create_connector(SYSTEM, connector_id=1, connector_cp_id=world.cp_a, source="api")
        db.session.commit()
    return two_servers


async def _browser(port: int, cookie: str, frames: list, ready: asyncio.Event, stop):
    async with connect(
        f"ws://127.0.0.1:{port}/live/ws?view=connectors",
        proxy=None,
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
    ) as ws:
        ready.set()
        while not stop.is_set():
            try:
                frames.append(await asyncio.wait_for(ws.recv(), 0.2))
            except TimeoutError:
                continue


def test_status_on_one_server_reaches_browsers_on_the_other(setup, world):
    host_a, host_b = setup
    admin_cookie = _signed_in_cookie(host_b, "admin@example.com")
    other_company_cookie = _signed_in_cookie(host_b, "b@example.com")

    async def scenario():
        admin_frames, other_frames = [], []
        stop = asyncio.Event()
        ready = [asyncio.Event(), asyncio.Event()]
        browsers = [
            asyncio.create_task(_browser(host_b, admin_cookie, admin_frames, ready[0], stop)),
            asyncio.create_task(
                _browser(host_b, other_company_cookie, other_frames, ready[1], stop)
            ),
        ]
        await asyncio.gather(*(r.wait() for r in ready))
        await asyncio.sleep(0.5)  # the hub is subscribed
        async with open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            await session.status(1, "Charging")
            for _ in range(50):
                if any("status-charging" in frame for frame in admin_frames):
                    break
                await asyncio.sleep(0.1)
            await session.stop()
        stop.set()
        await asyncio.gather(*browsers)
        return admin_frames, other_frames

    admin_frames, other_frames = asyncio.run(asyncio.wait_for(scenario(), 30))
    row = f'id="connector-{world.cp_a}-1" hx-swap-oob="true"'
    assert any(row in frame and "status-charging" in frame for frame in admin_frames)
    assert other_frames == []


def test_change_availability_asked_on_one_server_reaches_the_other(setup, world):
    host_a, host_b = setup

    def ask():
        body = json.dumps(
            {"id": "x", "req_data": {"connector_cp_id": world.cp_a, "type": "Inoperative"}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{host_b}/api/v1/connectors/1/availability",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {world.tokens['admin']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())

    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            answer = await asyncio.to_thread(ask)
            await session.stop()
            return answer, session.cp.received

    (status, body), received = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert status == 200 and body["res_data"] == {"status": "Accepted"}
    assert received == [("ChangeAvailability", {"connector_id": 1, "type": "Inoperative"})]


def test_reconnect_to_the_other_server_closes_the_first_socket(setup, world):
    host_a, host_b = setup

    async def scenario():
        async with (
            open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as first,
            open_socket(f"ws://127.0.0.1:{host_b}/ocpp", "CP-A"),
        ):
            await asyncio.wait_for(first.wait_closed(), 10)
            return first.close_code

    assert asyncio.run(scenario()) == 1000


def test_deactivation_on_one_server_closes_the_users_sockets_on_the_other(setup, world):
    host_a, host_b = setup
    admin = SignedIn(host_a, "admin@example.com")
    user = SignedIn(host_b, "a@example.com")

    def deactivate():
        admin.post_form(
            f"/admin/users/{world.user_a}",
            {"action": "update", "role": "company_user", "company_id": str(world.company_a)},
        )

    assert _closed_by(host_b, user.cookie, deactivate) == (ACCOUNT_CHANGED, 401)


def test_a_reset_asked_on_one_server_reaches_the_charge_point_on_the_other(setup, world):
    host_a, host_b = setup

    def ask():
        body = json.dumps({"id": "x", "req_data": {"type": "Soft"}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{host_b}/api/v1/chargepoints/{world.cp_a}/reset",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {world.tokens['admin']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())

    async def scenario():
        async with open_socket(f"ws://127.0.0.1:{host_a}/ocpp", "CP-A") as ws:
            session = Session(ws, "CP-A")
            await session.boot()
            answer = await asyncio.to_thread(ask)
            await session.stop()
            return answer, session.cp.received

    (status, body), received = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert status == 200 and body["res_data"] == {"status": "Accepted"}
    assert received == [("Reset", {"type": "Soft"})]
