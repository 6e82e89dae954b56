"""Webhook receivers for bench/events.py, in their own process: one asyncio HTTP server per
port given, answering 200 to every POST and noting when each event arrived. On SIGTERM
(or SIGINT), prints one JSON line: per event, its id, its timestamp (written just before
its commit, as a Unix time) and the seconds between that and its arrival."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import datetime

arrivals: list[tuple[int, float, float]] = []


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            now = time.time()
            event = json.loads(body)
            sent = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            arrivals.append((event["id"], sent, now - sent))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # closed by the sender, or by our shutdown
    finally:
        writer.close()


async def main(ports: list[int]) -> None:
    servers = [await asyncio.start_server(handle, "127.0.0.1", port) for port in ports]
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    print(json.dumps({"arrivals": arrivals}), flush=True)


if __name__ == "__main__":
    asyncio.run(main([int(port) for port in sys.argv[1:]]))
