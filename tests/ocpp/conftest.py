"""A real server on a free loopback port, and OCPP clients (the `ocpp` package's
ChargePoint over `websockets`) to talk to it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.error
import urllib.request

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

from dashboard.extensions import db
from dashboard.services.chargepoints import create_chargepoint
from dashboard.services.permissions import SYSTEM

KEY_HEX = "0123456789abcdef0123456789abcdef01234567"  # 20 bytes

logging.getLogger("ocpp").setLevel(logging.ERROR)


@pytest.fixture
def server(live_port):
    """ws://127.0.0.1:PORT/ocpp of the app served by gunicorn."""
    return f"ws://127.0.0.1:{live_port}/ocpp"


@pytest.fixture
def http(live_port, world):
    """Calls the served app's JSON API: `http(method, path, token_name, req_data)`."""

    def request(method: str, path: str, who: str = "admin", req_data=None):
        body = None
        headers = {"Authorization": f"Bearer {world.tokens[who]}"}
        if req_data is not None:
            body = json.dumps({"id": "t", "req_data": req_data}).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            f"http://127.0.0.1:{live_port}{path}", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return request


@pytest.fixture
def keyed_cp(app, world):
    """A charge point of company A with an authorization key."""
    with app.app_context():
        cp = create_chargepoint(
            SYSTEM, identity="CP-KEY", company_id=world.company_a, auth_key=KEY_HEX
        )
        db.session.commit()
        return cp.id


def basic(identity: str, password: bytes) -> dict:
    token = base64.b64encode(identity.encode() + b":" + password).decode()
    return {"Authorization": f"Basic {token}"}


def open_socket(url: str, identity: str, headers=None, subprotocols=("ocpp1.6",)):
    """A websockets client connection (an async context manager)."""
    return connect(
        f"{url}/{identity}",
        subprotocols=list(subprotocols) if subprotocols else None,
        additional_headers=headers or {},
        proxy=None,
        open_timeout=5,
    )


class SimulatedChargePoint(ChargePoint):
    """The `ocpp` package's charge point, answering the central system's calls."""

    availability_status = "Accepted"
    unlock_status = "Unlocked"
    silent = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict]] = []

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id, type):
        self.received.append(("ChangeAvailability", {"connector_id": connector_id, "type": type}))
        if self.silent:
            await asyncio.sleep(10)
        return call_result.ChangeAvailability(status=self.availability_status)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id):
        self.received.append(("UnlockConnector", {"connector_id": connector_id}))
        return call_result.UnlockConnector(status=self.unlock_status)

    # What the remaining calls answer; a test may change them (an invalid one included:
    # the charge point's validation is switched off for that).
    answers = {
        "Reset": {"status": "Accepted"},
        "TriggerMessage": {"status": "Accepted"},
        "ChangeConfiguration": {"status": "RebootRequired"},
        "ClearCache": {"status": "Accepted"},
        "DataTransfer": {"status": "Accepted", "data": "pong"},
        "RemoteStartTransaction": {"status": "Accepted"},
        "RemoteStopTransaction": {"status": "Accepted"},
    }
    configuration = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
    ]

    def _answer(self, action, **request):
        self.received.append((action, request))
        return getattr(call_result, action)(**self.answers[action])

    @on(Action.reset, skip_schema_validation=True)
    async def on_reset(self, **request):
        return self._answer("Reset", **request)

    @on(Action.trigger_message, skip_schema_validation=True)
    async def on_trigger(self, **request):
        return self._answer("TriggerMessage", **request)

    @on(Action.change_configuration, skip_schema_validation=True)
    async def on_change_configuration(self, **request):
        return self._answer("ChangeConfiguration", **request)

    @on(Action.clear_cache, skip_schema_validation=True)
    async def on_clear_cache(self, **request):
        return self._answer("ClearCache", **request)

    @on(Action.data_transfer, skip_schema_validation=True)
    async def on_data_transfer(self, **request):
        return self._answer("DataTransfer", **request)

    @on(Action.remote_start_transaction, skip_schema_validation=True)
    async def on_remote_start(self, **request):
        return self._answer("RemoteStartTransaction", **request)

    @on(Action.remote_stop_transaction, skip_schema_validation=True)
    async def on_remote_stop(self, **request):
        return self._answer("RemoteStopTransaction", **request)

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None):
        self.received.append(("GetConfiguration", {"key": key}))
        known = {item["key"]: item for item in self.configuration}
        if not key:
            return call_result.GetConfiguration(configuration_key=self.configuration)
        return call_result.GetConfiguration(
            configuration_key=[known[k] for k in key if k in known],
            unknown_key=[k for k in key if k not in known],
        )


class Session:
    """A connected simulated charge point and its receive task."""

    def __init__(self, ws, identity):
        self.ws = ws
        self.cp = SimulatedChargePoint(identity, ws)
        self.task = asyncio.create_task(self.cp.start())

    async def boot(self, **extra):
        return await self.cp.call(
            call.BootNotification(charge_point_model="M-1", charge_point_vendor="Acme", **extra),
            suppress=False,
        )

    async def status(self, connector_id, status, error_code="NoError", **extra):
        return await self.cp.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=error_code, status=status, **extra
            ),
            suppress=False,
        )

    async def stop(self):
        self.task.cancel()
        await self.ws.close()


async def raw_exchange(ws, frame, timeout: float = 3):
    """Send `frame` (a str, or a value to JSON-encode) and return the decoded reply."""
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def run(coroutine, timeout: float = 30):
    """Run an async scenario from a test, bounded in time."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))
