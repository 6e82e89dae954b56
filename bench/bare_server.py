"""The yardstick of bench/ocpp_load.py and bench/fleet.py: a bare asyncio WebSocket server
that speaks just enough OCPP 1.6-J to acknowledge every CALL, storing nothing.
`answer` is also what bench/bare_flask.py answers with, on Plugboard's own stack."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from datetime import UTC, datetime

from websockets.asyncio.server import serve


def answer(raw: str | bytes) -> str | None:
    """The CALLRESULT to a CALL (None: not a CALL, no answer)."""
    message = json.loads(raw)
    if message[0] != 2:
        return None
    payload = {}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if message[2] == "BootNotification":
        payload = {"status": "Accepted", "interval": 300, "currentTime": now}
    elif message[2] == "Heartbeat":
        payload = {"currentTime": now}
    elif message[2] == "Authorize":
        payload = {"idTagInfo": {"status": "Accepted"}}
    elif message[2] == "StartTransaction":
        payload = {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}
    return json.dumps([3, message[1], payload])


async def handler(ws):
    async for raw in ws:
        reply = answer(raw)
        if reply is not None:
            await ws.send(reply)


async def main(port: int) -> None:
    async with serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6"],
        ping_interval=None,
        compression=None,
        max_size=65536,
    ):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(int(sys.argv[1])))
