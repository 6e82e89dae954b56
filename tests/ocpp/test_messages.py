"""Frames and validation: every CALLERROR code, and bad input never drops the connection."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.exceptions import ConnectionClosed

from tests.ocpp.conftest import Session, open_socket, raw_exchange, run

BOOT = [2, "boot-1", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "M"}]


def exchange_after_boot(server, frame, identity="CP-A"):
    """Boot, send `frame`, return the reply, then prove the connection still answers."""

    async def scenario():
        async with open_socket(server, identity) as ws:
            assert (await raw_exchange(ws, BOOT))[2]["status"] == "Accepted"
            reply = await raw_exchange(ws, frame)
            alive = await raw_exchange(ws, [2, "hb-after", "Heartbeat", {}])
            assert alive[0] == 3 and "currentTime" in alive[2]
            return reply

    return run(scenario())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ([2, "m1"], "FormationViolation"),
        ([2, "m1", "Heartbeat"], "FormationViolation"),
        ([2, "m1", "Heartbeat", [], "extra"], "FormationViolation"),
        ([2, "m1", "Heartbeat", "not an object"], "FormationViolation"),
        ([2, "x" * 37, "Heartbeat", {}], "FormationViolation"),
        ([2, "m1", "Teleport", {}], "NotImplemented"),
        # A call of the central system's, sent by a charge point:
        ([2, "m1", "Reset", {"type": "Hard"}], "NotSupported"),
        (
            [2, "m1", "StatusNotification", {"connectorId": 1, "status": "Available"}],
            "ProtocolError",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
            ],
            "TypeConstraintViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            ],
            "PropertyConstraintViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "x" * 51},
            ],
            "PropertyConstraintViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "colour": "red"},
            ],
            "FormationViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": -1, "errorCode": "NoError", "status": "Available"},
            ],
            "PropertyConstraintViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": "yesterday",
                },
            ],
            "PropertyConstraintViolation",
        ),
        (
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": 0, "errorCode": "NoError", "status": "Charging"},
            ],
            "PropertyConstraintViolation",
        ),
        (  # valid JSON and schema, but no database stores a NUL character
            [
                2,
                "m1",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "a\x00"},
            ],
            "PropertyConstraintViolation",
        ),
        (
            [2, "m1", "BootNotification", {"chargePointVendor": "\x00", "chargePointModel": "M"}],
            "PropertyConstraintViolation",
        ),
    ],
)
def test_call_errors(server, world, frame, code):
    reply = exchange_after_boot(server, frame)
    assert reply[0] == 4
    assert reply[1] == frame[1]
    assert reply[2] == code
    assert isinstance(reply[3], str) and reply[3]
    assert isinstance(reply[4], dict)


def test_null_payload_means_empty_object(server, world):
    reply = exchange_after_boot(server, [2, "n1", "Heartbeat", None])
    assert reply[0] == 3 and "currentTime" in reply[2]


@pytest.mark.parametrize(
    "garbage",
    ["not json", "{}", "[]", '["only"]', '[5, "m", "X", {}]', '[2, 17, "Heartbeat", {}]'],
)
def test_unanswerable_frames_are_dropped_and_the_connection_lives(server, world, garbage):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            await raw_exchange(ws, BOOT)
            await ws.send(garbage)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
            return await raw_exchange(ws, [2, "hb", "Heartbeat", {}])

    assert run(scenario())[:2] == [3, "hb"]


def test_call_before_boot_is_security_error(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            return await raw_exchange(ws, [2, "h1", "Heartbeat", {}])

    reply = run(scenario())
    assert reply[:3] == [4, "h1", "SecurityError"]


def test_frame_over_the_size_bound_closes_with_1009(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            await ws.send('[2, "big", "Heartbeat", {"x": "' + "x" * 70_000 + '"}]')
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    assert run(scenario()) == 1009


def test_results_to_unknown_calls_are_ignored(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            await raw_exchange(ws, BOOT)
            await ws.send('[3, "never-asked", {}]')
            await ws.send('[4, "never-asked", "GenericError", "x", {}]')
            return await raw_exchange(ws, [2, "hb", "Heartbeat", {}])

    assert run(scenario())[0] == 3


def test_session_client_round_trip(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            session = Session(ws, "CP-A")
            boot = await session.boot()
            status = await session.status(1, "Charging")
            await session.stop()
            return boot, status

    boot, status = run(scenario())
    assert boot.status == "Accepted" and boot.interval == 60
    assert status is not None
