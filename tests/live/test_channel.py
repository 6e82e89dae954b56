"""The live channel: who gets which events, newest-wins queues, and admission."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from dashboard.live import events
from dashboard.live.channel import MAX_PENDING, Hub, LiveSocket
from tests.conftest import PASSWORD


def event(cp_id, company_id, connector_id=1, status="Charging"):
    return {
        "type": "connector",
        "action": "updated",
        "cp_id": cp_id,
        "company_id": company_id,
        "connector_id": connector_id,
        "status": status,
    }


def test_company_policy_decides_who_gets_an_event():
    hub = Hub()
    mine, other, admin = LiveSocket(1, False), LiveSocket(2, False), LiveSocket(None, True)
    page_of_cp = LiveSocket(1, False, cp_id=7)
    for socket in (mine, other, admin, page_of_cp):
        hub.add(socket)
    hub.dispatch(event(5, 1))
    assert [len(s.take()[0]) for s in (mine, other, admin, page_of_cp)] == [1, 0, 1, 0]
    hub.dispatch(event(7, 1))
    assert len(page_of_cp.take()[0]) == 1


def test_newest_event_per_connector_wins():
    socket = LiveSocket(1, False)
    for status in ("Preparing", "Charging", "Finishing"):
        socket.offer(event(5, 1, status=status))
    socket.offer(event(5, 1, connector_id=2))
    pending, overflowed = socket.take()
    assert [e["status"] for e in pending] == ["Finishing", "Charging"] and not overflowed
    assert not socket.ready.is_set()


def test_a_flooded_socket_is_told_to_reload():
    socket = LiveSocket(None, True)
    for n in range(MAX_PENDING + 1):
        socket.offer(event(n, 1))
    pending, overflowed = socket.take()
    assert overflowed and len(pending) <= MAX_PENDING


def test_the_bus_reaches_the_hub():
    hub = Hub()
    socket = LiveSocket(3, False)
    hub.add(socket)
    try:
        events.publish(event(9, 3))
        assert socket.take()[0][0]["cp_id"] == 9
    finally:
        hub.remove(socket)


def _signed_in_cookie(port: int, email: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
    opener.open(f"http://127.0.0.1:{port}/login", data=data.encode())
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _status(port: int, headers: dict) -> int:
    async def attempt():
        try:
            async with connect(
                f"ws://127.0.0.1:{port}/live/ws?view=overview",
                additional_headers=headers,
                proxy=None,
                open_timeout=5,
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admission(live_port, world):
    site = f"http://127.0.0.1:{live_port}"
    assert _status(live_port, {"Origin": site}) == 401
    cookie = _signed_in_cookie(live_port, "a@example.com")
    assert _status(live_port, {"Cookie": cookie, "Origin": "http://evil.example"}) == 403
    assert _status(live_port, {"Cookie": cookie}) == 403
    assert _status(live_port, {"Cookie": cookie, "Origin": site}) == 101
