"""The upgrade: unknown identities, subprotocol negotiation, security profile 1."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.ocpp.conftest import KEY_HEX, Session, basic, open_socket, run


def status_of_refusal(url, identity, **kwargs) -> int:
    async def scenario():
        try:
            async with open_socket(url, identity, **kwargs):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return run(scenario())


def test_unknown_identity_is_404_before_upgrade(server, world):
    assert status_of_refusal(server, "NOBODY") == 404


@pytest.mark.parametrize("identity", ["CP-A%00", "CP%20A", "x" * 49])
def test_an_identity_no_charge_point_can_have_is_404(server, world, identity):
    assert status_of_refusal(server, identity) == 404


def test_known_identity_connects_with_ocpp16(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            return ws.subprotocol

    assert run(scenario()) == "ocpp1.6"


@pytest.mark.parametrize("offered", [None, ("ocpp2.0.1",)])
def test_without_ocpp16_the_socket_is_closed_at_once(server, world, offered):
    async def scenario():
        async with open_socket(server, "CP-A", subprotocols=offered) as ws:
            assert ws.subprotocol is None
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    assert run(scenario()) == 1002


def test_ocpp16_among_other_subprotocols_is_chosen(server, world):
    async def scenario():
        async with open_socket(server, "CP-A", subprotocols=("ocpp2.0.1", "ocpp1.6")) as ws:
            return ws.subprotocol

    assert run(scenario()) == "ocpp1.6"


def test_key_required_when_set(server, keyed_cp):
    assert status_of_refusal(server, "CP-KEY") == 401


@pytest.mark.parametrize(
    "headers",
    [
        basic("CP-KEY", b"wrong"),
        basic("CP-KEY", bytes.fromhex(KEY_HEX)[:-1]),
        basic("CP-OTHER", bytes.fromhex(KEY_HEX)),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer " + KEY_HEX},
    ],
)
def test_wrong_credentials_are_401(server, keyed_cp, headers):
    assert status_of_refusal(server, "CP-KEY", headers=headers) == 401


@pytest.mark.parametrize(
    "password", [bytes.fromhex(KEY_HEX), KEY_HEX.encode(), KEY_HEX.upper().encode()]
)
def test_key_as_raw_bytes_or_hex_text_is_accepted(server, keyed_cp, password):
    async def scenario():
        async with open_socket(server, "CP-KEY", headers=basic("CP-KEY", password)) as ws:
            session = Session(ws, "CP-KEY")
            reply = await session.boot()
            await session.stop()
            return reply.status

    assert run(scenario()) == "Accepted"


def test_charge_point_without_key_needs_no_credentials(server, world):
    assert status_of_refusal(server, "CP-A") == 101


def test_silent_socket_is_closed_after_idle_timeout(server, world):
    async def scenario():
        async with open_socket(server, "CP-A") as ws:
            started = asyncio.get_running_loop().time()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code, asyncio.get_running_loop().time() - started

    code, waited = run(scenario())
    assert code == 1000 and 3 < waited < 8
