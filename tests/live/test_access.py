"""What a live socket sends is what its user may see *now*: a charge point moved to another
company leaves the old company's pages (never shown there with its new owner's data), and
an account change (deactivation, another company, a new password, signing out) closes the
user's open sockets at once. On a real server (gunicorn, gevent), over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import re
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dashboard.live.views import ACCOUNT_CHANGED
from tests.conftest import PASSWORD
from tests.ocpp.conftest import Session, open_socket

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class SignedIn:
    """A user signed in to a served app, with a cookie jar like a browser's."""

    def __init__(self, port: int, email: str):
        self.site = f"http://127.0.0.1:{port}"
        self.port = port
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.post_form("/login", {"email": email, "password": PASSWORD})

    def post_form(self, path: str, data: dict, page: str | None = None) -> int:
        text = self.opener.open(self.site + (page or path), timeout=10).read().decode()
        fields = {**data, "csrf_token": CSRF.search(text).group(1)}
        request = urllib.request.Request(
            self.site + path, data=urllib.parse.urlencode(fields).encode(), method="POST"
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def live_socket(port: int, cookie: str, view: str = "overview"):
    return connect(
        f"ws://127.0.0.1:{port}/live/ws?view={view}",
        proxy=None,
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        open_timeout=5,
    )


async def collect(ws, frames: list, seconds: float) -> None:
    """Gather what the socket receives for `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frames.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return


def api_put(port: int, token: str, path: str, req_data: dict) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps({"id": "move", "req_data": req_data}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_charge_point_moved_away_leaves_the_old_company_and_shows_nothing_of_the_new(
    live_port, world
):
    user_a = SignedIn(live_port, "a@example.com").cookie
    user_b = SignedIn(live_port, "b@example.com").cookie

    async def scenario():
        frames_a, frames_b = [], []
        async with (
            live_socket(live_port, user_a) as socket_a,
            live_socket(live_port, user_b) as socket_b,
            open_socket(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A") as ws,
        ):
            charge_point = Session(ws, "CP-A")
            await charge_point.boot()
            await asyncio.sleep(0.5)
            moved = await asyncio.to_thread(
                api_put,
                live_port,
                world.tokens["admin"],
                f"/api/v1/chargepoints/{world.cp_a}",
                {"chargepoint_name": "Secret B name", "chargepoint_company_id": world.company_b},
            )
            assert moved == 200
            await asyncio.sleep(0.5)
            await charge_point.stop()  # it disconnects: announced after the move
            await asyncio.gather(collect(socket_a, frames_a, 2), collect(socket_b, frames_b, 2))
        return frames_a, frames_b

    frames_a, frames_b = asyncio.run(asyncio.wait_for(scenario(), 30))
    seen_by_a = "".join(frames_a)
    assert "Secret B name" not in seen_by_a and "Company B" not in seen_by_a
    assert f'<tr id="chargepoint-{world.cp_a}" hx-swap-oob="delete">' in seen_by_a
    seen_by_b = "".join(frames_b)
    assert "Secret B name" in seen_by_b and "offline" in seen_by_b


def _closed_by(port: int, cookie: str, change) -> tuple[int | None, int]:
    """Open a live socket, make `change` (in a thread), and return the socket's close code
    and what a reconnect with the same cookie gets (101 or an HTTP status)."""

    async def scenario():
        async with live_socket(port, cookie) as ws:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(change)
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            code = ws.close_code
        try:
            async with live_socket(port, cookie):
                again = 101
        except InvalidStatus as exc:
            again = exc.response.status_code
        return code, again

    return asyncio.run(asyncio.wait_for(scenario(), 20))


def test_deactivating_a_user_closes_their_live_sockets(live_port, world):
    admin, user = SignedIn(live_port, "admin@example.com"), SignedIn(live_port, "a@example.com")
    code, again = _closed_by(
        live_port,
        user.cookie,
        lambda: admin.post_form(
            f"/admin/users/{world.user_a}",
            {"action": "update", "role": "company_user", "company_id": str(world.company_a)},
        ),
    )
    assert (code, again) == (ACCOUNT_CHANGED, 401)


def test_moving_a_user_to_another_company_closes_their_live_sockets(live_port, world):
    admin, user = SignedIn(live_port, "admin@example.com"), SignedIn(live_port, "a@example.com")
    code, again = _closed_by(
        live_port,
        user.cookie,
        lambda: admin.post_form(
            f"/admin/users/{world.user_a}",
            {
                "action": "update",
                "role": "company_user",
                "company_id": str(world.company_b),
                "active": "on",
            },
        ),
    )
    assert (code, again) == (ACCOUNT_CHANGED, 101)  # back, with company B's access


def test_a_new_password_closes_the_live_sockets_and_ends_the_session(live_port, world):
    admin, user = SignedIn(live_port, "admin@example.com"), SignedIn(live_port, "a@example.com")
    code, again = _closed_by(
        live_port,
        user.cookie,
        lambda: admin.post_form(
            f"/admin/users/{world.user_a}", {"action": "password", "password": "new password!"}
        ),
    )
    assert (code, again) == (ACCOUNT_CHANGED, 401)


def test_signing_out_closes_the_live_sockets_of_every_device(live_port, world):
    laptop, phone = SignedIn(live_port, "a@example.com"), SignedIn(live_port, "a@example.com")
    code, again = _closed_by(
        live_port, phone.cookie, lambda: laptop.post_form("/logout", {}, page="/")
    )
    assert (code, again) == (ACCOUNT_CHANGED, 401)


def test_a_list_gets_whole_rows_only_for_what_the_browser_says_it_shows(live_port, world):
    """The browser tells its live socket which rows its list shows; the others come as
    stubs (the filter attributes its notice needs), and a message that makes no sense
    puts the socket back to whole rows for everything."""
    cookie = SignedIn(live_port, "a@example.com").cookie

    def rows(frames: list, number: int) -> list[str]:
        found = re.findall(
            rf'<tr id="connector-{world.cp_a}-{number}".*?</tr>', "".join(frames), re.S
        )
        assert found, frames
        return found

    async def scenario():
        async with (
            live_socket(live_port, cookie, view="connectors") as browser,
            open_socket(f"ws://127.0.0.1:{live_port}/ocpp", "CP-A") as ws,
        ):
            await browser.send(json.dumps({"shown": [f"connector-{world.cp_a}-1"]}))
            await asyncio.sleep(0.3)
            charge_point = Session(ws, "CP-A")
            await charge_point.boot()
            await charge_point.status(1, "Charging")
            await charge_point.status(2, "Faulted", error_code="GroundFailure")
            told = []
            await collect(browser, told, 1.5)
            await browser.send("not what the page sends")
            await asyncio.sleep(0.3)
            await charge_point.status(2, "Available")
            untold = []
            await collect(browser, untold, 1.5)
            await charge_point.stop()
        return told, untold

    told, untold = asyncio.run(asyncio.wait_for(scenario(), 30))
    shown, hidden = rows(told, 1)[-1], rows(told, 2)[-1]
    assert "<td" in shown and "Charging" in shown and "data-stub" not in shown
    assert "data-stub" in hidden and "<td" not in hidden
    assert 'data-status="Faulted"' in hidden and 'data-error-code="GroundFailure"' in hidden
    again = rows(untold, 2)[-1]
    assert "<td" in again and "Available" in again and "data-stub" not in again
