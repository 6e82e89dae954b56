"""The load generator of bench/ocpp_load.py, run in its own process: N simulated charge
points (the `ocpp` package's client) connect at a ramp rate, boot, and then send
StatusNotifications at a total rate for a measured period. Prints one JSON line of
figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import resource
import time
from datetime import UTC, datetime

import ocpp.messages
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect

CYCLE = ["Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]


class Stats:
    def __init__(self):
        self.connected = 0
        self.failed_connects = 0
        self.dropped = 0
        self.acked = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.by_action: dict[str, int] = {}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def realistic_message(rng, charging: bool, register: list, transaction_id, connectors, step):
    """The next message of a charge point in the realistic mix: one that charges sends
    mostly MeterValues (its register rising), with statuses and heartbeats; an idle one
    heartbeats and now and then reports a status."""
    draw = rng.random()
    if charging and draw < 0.6:
        register[0] += rng.randint(50, 400)
        return call.MeterValues(
            connector_id=1,
            transaction_id=transaction_id,
            meter_value=[
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {
                            "value": str(register[0]),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        },
                        {
                            "value": str(rng.randint(6000, 11000)),
                            "measurand": "Power.Active.Import",
                            "unit": "W",
                        },
                    ],
                }
            ],
        )
    if draw < (0.8 if charging else 0.5):
        connector = 2 if charging else 1 + step % connectors
        status = CYCLE[step % len(CYCLE)]
        return call.StatusNotification(
            connector_id=connector, error_code="NoError", status=status, timestamp=now_iso()
        )
    return call.Heartbeat()


async def one(
    url, identity, connectors, rate, start_at, stop_at, stats, done: asyncio.Event, mix="status"
):
    rng = random.Random(identity)
    # In the realistic mix, a third of the charge points charge on connector 1 all along.
    charging = mix == "realistic" and rng.random() < 1 / 3
    register = [rng.randint(10_000, 1_000_000)]
    transaction_id = None
    try:
        async with connect(
            f"{url}/{identity}",
            subprotocols=["ocpp1.6"],
            proxy=None,
            open_timeout=120,
            ping_interval=None,
            compression=None,
            close_timeout=5,
        ) as ws:
            cp = ChargePoint(identity, ws)
            receiver = asyncio.create_task(cp.start())
            await cp.call(
                call.BootNotification(charge_point_model="Load", charge_point_vendor="Bench")
            )
            stats.connected += 1
            if charging:  # the session began before the measured window
                await cp.call(call.Authorize(id_tag=f"TAG-{identity}"))
                started = await cp.call(
                    call.StartTransaction(
                        connector_id=1,
                        id_tag=f"TAG-{identity}",
                        meter_start=register[0],
                        timestamp=now_iso(),
                    )
                )
                transaction_id = started.transaction_id
            await asyncio.sleep(max(0.0, start_at - time.monotonic()) + rng.random() / rate)
            step = 0
            while time.monotonic() < stop_at and not receiver.done():
                connector = 1 + step % connectors
                status = CYCLE[(step // connectors) % len(CYCLE)]
                step += 1
                if mix == "realistic":
                    message = realistic_message(
                        rng, charging, register, transaction_id, connectors, step
                    )
                else:
                    message = call.StatusNotification(
                        connector_id=connector,
                        error_code="NoError",
                        status=status,
                        timestamp=now_iso(),
                    )
                sent = time.monotonic()
                try:
                    await cp.call(message, suppress=False)
                except Exception:
                    stats.errors += 1
                    continue
                now = time.monotonic()
                stats.acked += 1
                action = type(message).__name__
                stats.by_action[action] = stats.by_action.get(action, 0) + 1
                stats.latencies.append(now - sent)
                await asyncio.sleep(max(0.0, rng.expovariate(rate) - (now - sent)))
            if receiver.done():
                stats.dropped += 1
            await done.wait()  # hold the connection until everyone has finished
            receiver.cancel()
    except Exception:
        if stats.connected and time.monotonic() > start_at:
            stats.dropped += 1
        else:
            stats.failed_connects += 1


async def main(args) -> dict:
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    ocpp.messages.ASYNC_VALIDATION = False
    stats = Stats()
    done = asyncio.Event()
    identities = [f"{args.prefix}{n:05d}" for n in range(1, args.count + 1)]
    ramp_seconds = args.count / args.ramp
    start_at = time.monotonic() + ramp_seconds + 5
    stop_at = start_at + args.duration
    per_cp = args.rate / args.count
    tasks = []
    for identity in identities:
        tasks.append(
            asyncio.create_task(
                one(
                    args.url,
                    identity,
                    args.connectors,
                    per_cp,
                    start_at,
                    stop_at,
                    stats,
                    done,
                    args.mix,
                )
            )
        )
        await asyncio.sleep(1 / args.ramp)
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    held = stats.connected - stats.dropped
    acked_in_window = stats.acked
    await asyncio.sleep(2)  # let the last answers arrive
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted(stats.latencies)

    def pct(p):
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            if latencies
            else None
        )

    return {
        "connected": stats.connected,
        "held_at_end": held,
        "failed_connects": stats.failed_connects,
        "dropped": stats.dropped,
        "acked": stats.acked,
        "acked_in_window": acked_in_window,
        "errors": stats.errors,
        "by_action": stats.by_action,
        "per_second": acked_in_window / args.duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", default="LOAD-")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1200, help="StatusNotifications/s in all")
    parser.add_argument("--ramp", type=float, default=250, help="new connections per second")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--mix", choices=["status", "realistic"], default="status")
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(main(arguments))))
