"""The lean load generator of bench/fleet.py: one process drives a slice of the fleet with
raw, pre-serialised OCPP 1.6-J frames over `websockets` (no `ocpp` package, no schema
validation, no per-message objects), so that the server's limit is measured, not the
client's. Several of these run side by side.

Connects its charge points at a ramp rate, evenly or (`--jitter`) each at a uniform random
time within the same window, as a fleet reconnecting after a restart does (each boots and
reports every connector); waits until `--start-at` (a wall-clock time shared by every
client process), then offers StatusNotifications at each step's rate for the step's
seconds (or, for a step whose rate is `steady`, the steady mix of a fleet; for one whose
rate is `sessions`, a StartTransaction from each charge point of the charging third, spread
over the step, whose transactionId its MeterValues then carry). A charge
point never has two calls outstanding (OCPP 1.6); a message that finds
every charge point busy is counted as not sent. Prints one JSON line per step, and one
for the connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import time
from collections import Counter
from datetime import UTC, datetime

from websockets.asyncio.client import connect

STATUSES = ("Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available")
BOOT = '[2,"b{n}","BootNotification",{{"chargePointVendor":"Bench","chargePointModel":"Lean"}}]'
# Stamped, as real chargers stamp them (OCPP 1.6 makes the timestamp optional; without
# one, the server cannot tell a status from a retry of one by its time, and looks each
# batch's statuses up in the history: 13 % of the batcher's time in a steady-state
# profile, 29 November).
STATUS = (
    '[2,"{id}","StatusNotification",{{"connectorId":{connector},"errorCode":"NoError",'
    '"status":"{status}","timestamp":"{at}"}}]'
)
HEARTBEAT = '[2,"{id}","Heartbeat",{{}}]'
METER = (
    '[2,"{id}","MeterValues",{{"connectorId":{connector},"meterValue":[{{"timestamp":"{at}",'
    '"sampledValue":[{{"value":"{value}","measurand":"Energy.Active.Import.Register",'
    '"unit":"Wh"}}]}}]}}]'
)
# A session's meter values, as a charger sends them while charging: the register and the
# power, with the transaction they belong to.
SESSION_METER = (
    '[2,"{id}","MeterValues",{{"connectorId":1,"transactionId":{transaction},'
    '"meterValue":[{{"timestamp":"{at}","sampledValue":[{{"value":"{value}",'
    '"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"}},'
    '{{"value":"{power}","context":"Sample.Periodic","measurand":"Power.Active.Import",'
    '"unit":"W"}}]}}]}}]'
)
START = (
    '[2,"{id}","StartTransaction",{{"connectorId":1,"idTag":"{tag}","meterStart":{meter},'
    '"timestamp":"{at}"}}]'
)
POWER_W = 11_000  # what a charging connector draws (a 3-phase 16 A wallbox)
# The steady state of a fleet (issue 15, goal 3), per charge point: a heartbeat every 60 s,
# a status change per connector every 2 minutes on average (two connectors: one a minute),
# and, for the third of them charging, MeterValues every 30 s (one every 90 s over all):
# heartbeats, statuses and meter values in the proportions 3 : 3 : 2. The meter values go
# to the charging third only (connector 1 in its session once it has one; either
# connector, without a transactionId, when the sessions step was left out).
STEADY_KINDS = (
    "status",
    "heartbeat",
    "meter",
    "status",
    "heartbeat",
    "meter",
    "status",
    "heartbeat",
)
STEADY_PER_CP = 1 / 60 + 1 / 60 + 1 / 90  # messages per second per charge point
# The charge points each kind of message goes to: those without a session (each sends one
# StartTransaction), the charging third, or (any other kind) every one.
POOLS = {"start": "start", "meter": "charging"}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Seconds within which a charge point whose socket was closed with 1012 reconnects: the
# jitter of a storm (the budget: every charge point back within 60 s).
RECONNECT_JITTER = 30.0
# Seconds of a step's timeline of slowest answers.
WINDOW = 5


def _now() -> str:
    """The time now as OCPP writes it (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _result(ws, message_id: str) -> str | None:
    """Wait for the answer to our CALL `message_id` (the server's own CALLs, such as a
    TriggerMessage, are passed over): None for a CALLRESULT, the error code of a
    CALLERROR."""
    while True:
        raw = await ws.recv()
        if raw.split('"', 2)[1] == message_id and raw[1] in "34":
            return None if raw[1] == "3" else raw.split('"', 4)[3]


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (NaN for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _reason(exc: Exception) -> str:
    """A short, countable reason: the exception's type and the start of its message."""
    return f"{type(exc).__name__} {str(exc)[:60]}".strip()


class ChargePoint:
    def __init__(self, identity: str, connectors: int):
        self.identity = identity
        self.connectors = connectors
        self.ws = None
        self.waiting: dict[str, float] = {}  # message id -> sent at
        self.busy = False
        self.step = 0
        self.n = 0
        self.sessions = 0  # connections so far (each reports every connector afresh)
        self.transaction: int | None = None  # the session going on at connector 1
        self.energy = 0  # Wh, connector 1's register


class Client:
    def __init__(self, args):
        self.args = args
        self.fleet = [
            ChargePoint(f"{args.prefix}{n:05d}", args.connectors)
            for n in range(args.first, args.first + args.count)
        ]
        self.charging = self.fleet[::3]  # the third that charges once sessions exist
        for cp in self.charging:
            cp.energy = 10_000
        self.connected = 0
        self.failed = 0
        self.dropped = 0
        self.connect_latencies: list[float] = []
        self.latencies: list[float] = []
        self.sent_at: list[float] = []  # when each of `latencies` was sent
        self.kinds: list[str] = []  # and what it was (status, heartbeat, meter, start)
        self.acked = 0
        self.errors = 0
        self.acked_statuses = 0
        self.step_started = 0.0  # when the step going on began (monotonic)
        self.late = 0  # answers, in this step, to a message sent in an earlier one
        # Sockets closed with 1012 (a deploy), and how many came back, when.
        self.restarted = self.back = 0
        self.first_restart = self.last_back = None
        self.back_latencies: list[float] = []  # connect, boot and statuses, after a 1012
        self.back_phases: dict[str, list[float]] = {"handshake": [], "boot": [], "statuses": []}
        self.why_failed: Counter[str] = Counter()  # what went wrong in `open`, how often
        self.closed_otherwise: Counter[str] = Counter()  # sockets closed by the server, not 1012

    async def open(self, cp: ChargePoint, phases: dict | None = None) -> bool:
        """Connect, boot and report every connector; whether all that was acknowledged.
        `phases`, if given, gets the seconds of each part (handshake, boot, statuses)."""
        started = time.monotonic()
        try:
            cp.ws = await connect(
                f"{self.args.url}/{cp.identity}",
                subprotocols=["ocpp1.6"],
                open_timeout=30,
                ping_interval=None,
                compression=None,
                max_queue=None,
            )
        except Exception as exc:
            self.failed += 1
            self.why_failed[f"connect: {_reason(exc)}"] += 1
            return False
        self.connect_latencies.append(time.monotonic() - started)
        mark = time.monotonic()
        if phases is not None:
            phases["handshake"].append(mark - started)
        try:  # boot, then every connector's status, one call at a time
            cp.sessions += 1
            what = "boot"
            await cp.ws.send(BOOT.format(n=0))
            error = await asyncio.wait_for(_result(cp.ws, "b0"), 60)
            if phases is not None:
                phases["boot"].append(time.monotonic() - mark)
                mark = time.monotonic()
            for connector in range(1, cp.connectors + 1):
                if error is not None:
                    break
                what = "status"
                message_id = f"{self.args.run}s{cp.sessions}-{connector}"
                frame = STATUS.format(
                    id=message_id, connector=connector, status="Available", at=_now()
                )
                await cp.ws.send(frame)
                error = await asyncio.wait_for(_result(cp.ws, message_id), 60)
        except Exception as exc:
            error = _reason(exc)
        if phases is not None and error is None:
            phases["statuses"].append(time.monotonic() - mark)
        if error is not None:  # a CALLERROR (not stored in time, say), or no answer
            self.failed += 1
            self.why_failed[f"{what}: {error}"] += 1
            return False
        self.connected += 1
        asyncio.get_running_loop().create_task(self.read(cp))
        return True

    async def read(self, cp: ChargePoint) -> None:
        try:
            async for raw in cp.ws:
                # '[3,"id",{}]' or '[4,"id",...]': the id is the second element.
                kind = raw[1]
                message_id = raw.split('"', 2)[1]
                waiting = cp.waiting.pop(message_id, None)
                cp.busy = False
                if waiting is None:
                    continue
                sent, what = waiting
                if what == "start" and kind == "3":  # '[3,"id",{"transactionId":7,...}]'
                    cp.transaction = json.loads(raw)[2].get("transactionId")
                if sent < self.step_started:  # not this step's: not in its figures
                    self.late += 1
                elif kind == "3":
                    self.acked += 1
                    self.acked_statuses += what == "status"
                    self.latencies.append(time.monotonic() - sent)
                    self.sent_at.append(sent)
                    self.kinds.append(what)
                else:
                    self.errors += 1
        except Exception:
            pass
        self.dropped += 1
        code = cp.ws.close_code if cp.ws is not None else None
        if code == 1012:  # service restart (a deploy): straight back, as chargers do
            self.restarted += 1
            self.first_restart = self.first_restart or time.monotonic()
            cp.busy = True  # nothing is sent to it until it is back
            cp.waiting.clear()  # unanswered: not acknowledged, so not counted
            await asyncio.sleep(random.uniform(0, RECONNECT_JITTER))
            started = time.monotonic()
            if await self.open(cp, self.back_phases):
                self.back += 1
                self.back_latencies.append(time.monotonic() - started)
                self.last_back = time.monotonic()
            cp.busy = False
        else:
            self.closed_otherwise[str(code)] += 1  # None: no close frame (the process died)

    async def connect_all(self) -> None:
        window = len(self.fleet) / self.args.ramp
        if self.args.jitter:  # as chargers after a restart: each at a uniform random time
            chance = random.Random(self.args.first)
            offsets = sorted(chance.uniform(0, window) for _ in self.fleet)
        else:  # evenly spaced
            offsets = [index / self.args.ramp for index in range(len(self.fleet))]
        tasks = []
        start = time.monotonic()
        for cp, offset in zip(self.fleet, offsets, strict=True):
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.open(cp)))
        await asyncio.gather(*tasks)
        took = time.monotonic() - start
        latencies = sorted(self.connect_latencies) or [0.0]
        print(
            json.dumps(
                {
                    "phase": "connect",
                    "connected": self.connected,
                    "failed": self.failed,
                    "why_failed": dict(self.why_failed),
                    "seconds": took,
                    "p99_connect_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
                    "client_cpu": cpu(),
                }
            ),
            flush=True,
        )

    def _next(self, pool: list[ChargePoint], start: int) -> tuple[ChargePoint | None, int]:
        """The next charge point of `pool` from `start` with no call outstanding, and where
        to look next time (None: every one of them is busy)."""
        for offset in range(len(pool)):
            cp = pool[(start + offset) % len(pool)]
            if not cp.busy:
                return cp, (start + offset + 1) % len(pool)
        return None, start

    def _frame(self, kind: str, cp: ChargePoint, message_id: str, at: str) -> str:
        connector = 1 + cp.n % cp.connectors
        if kind == "heartbeat":
            return HEARTBEAT.format(id=message_id)
        if kind == "start":
            return START.format(id=message_id, tag=f"T{cp.identity}", meter=cp.energy, at=at)
        if kind == "meter" and cp.transaction is not None:
            cp.energy += POWER_W * 30 // 3600  # what 30 s of charging adds
            return SESSION_METER.format(
                id=message_id, transaction=cp.transaction, at=at, value=cp.energy, power=POWER_W
            )
        if kind == "meter":  # no session (the sessions step was left out, or failed)
            return METER.format(id=message_id, connector=connector, at=at, value=cp.n)
        return STATUS.format(
            id=message_id, connector=connector, status=STATUSES[cp.n % len(STATUSES)], at=at
        )

    async def offer(self, rate: float | str | None, seconds: float, label: str) -> None:
        """Offer `rate` StatusNotifications a second; or (`rate` None) the steady mix; or
        (`rate` "sessions") a StartTransaction from each charge point of the charging third
        that has no session yet, spread over the step."""
        mix, starting = rate is None, rate == "sessions"
        if mix:
            rate = STEADY_PER_CP * len(self.fleet)
        elif starting:
            rate = len(self.charging) / seconds
        self.acked = self.errors = self.acked_statuses = self.late = 0
        self.latencies, self.sent_at, self.kinds = [], [], []
        self.step_started = time.monotonic()
        sent = skipped = 0
        cpu_start = cpu()
        live = [cp for cp in self.fleet if cp.ws is not None]
        charging = [cp for cp in self.charging if cp.ws is not None]
        cursors = {"all": 0, "charging": 0}
        tick = 0.01
        start = time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            at = _now()
            # The pools of charge points in which every one was found busy in this
            # tick: no answer can free one before the next, so the rest of the tick's
            # messages of that kind are not sent, without looking again (looking through
            # 5,000 busy charge points for each message cost the generator 0.7 cores while
            # a deploy's fleet was away).
            exhausted = set()
            # Messages due by now (from the elapsed time, so that a slow tick catches up).
            while sent + skipped < rate * (now - start):
                if starting:
                    kind = "start"
                elif mix:
                    kind = STEADY_KINDS[(sent + skipped) % len(STEADY_KINDS)]
                else:
                    kind = "status"
                name = POOLS.get(kind, "all")
                cp = None
                if name in exhausted:
                    pass
                elif name == "start":  # the charging third, each once
                    pool = [cp for cp in charging if cp.transaction is None]
                    cp, _ = self._next(pool, 0) if pool else (None, 0)
                else:
                    pool = charging if name == "charging" else live
                    cp, cursors[name] = self._next(pool, cursors[name])
                if cp is None:
                    exhausted.add(name)
                    skipped += 1
                    continue
                cp.busy = True
                cp.n += 1
                message_id = f"{label}-{cp.n}"
                frame = self._frame(kind, cp, message_id, at)
                cp.waiting[message_id] = (time.monotonic(), kind)
                sent += 1
                try:
                    await cp.ws.send(frame)
                except Exception:
                    cp.waiting.pop(message_id, None)
            await asyncio.sleep(max(0.0, now + tick - time.monotonic()))
        # Answers to the last messages of the step: a little grace, counted in the step.
        await asyncio.sleep(2.0)
        # The slowest answer to what was sent in each WINDOW seconds of the step: a stall
        # shows where it happened.
        worst = [0.0] * (int(seconds // WINDOW) + 1)
        for sent_at, latency in zip(self.sent_at, self.latencies, strict=True):
            window = min(len(worst) - 1, int((sent_at - start) // WINDOW))
            worst[window] = max(worst[window], latency * 1000)
        latencies = sorted(self.latencies) or [0.0]
        by_kind: dict[str, list[float]] = {}
        for kind, latency in zip(self.kinds, self.latencies, strict=True):
            by_kind.setdefault(kind, []).append(latency * 1000)
        print(
            json.dumps(
                {
                    "phase": "step",
                    # p50, p99 and count of each kind of message
                    "by_kind": {
                        kind: [quantile(values, 0.5), quantile(values, 0.99), len(values)]
                        for kind, values in by_kind.items()
                    },
                    "label": label,
                    "rate": rate,
                    "seconds": seconds,
                    "sent": sent,
                    "skipped": skipped,
                    "acked": self.acked,
                    "acked_statuses": self.acked_statuses,
                    "errors": self.errors,
                    "late": self.late,
                    "p50_ms": latencies[len(latencies) // 2] * 1000,
                    "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
                    "worst_ms": worst,
                    "client_cpu": cpu() - cpu_start,
                    "dropped": self.dropped,
                    "restarted": self.restarted,
                    "back": self.back,
                    "why_failed": dict(self.why_failed),  # so far, the connect phase too
                    "closed_otherwise": dict(self.closed_otherwise),
                    "back_p50_ms": quantile(self.back_latencies, 0.5) * 1000,
                    "back_p99_ms": quantile(self.back_latencies, 0.99) * 1000,
                    "back_phases_p50_ms": {
                        name: quantile(values, 0.5) * 1000
                        for name, values in self.back_phases.items()
                    },
                    "back_seconds": (
                        self.last_back - self.first_restart if self.last_back else None
                    ),
                }
            ),
            flush=True,
        )

    async def run(self) -> None:
        await self.connect_all()
        for label, start_at in enumerate(schedule(self.args.start_at, self.args.steps)):
            rate, seconds = self.args.steps[label]
            await asyncio.sleep(max(0.0, start_at - time.time()))
            await self.offer(rate, seconds, f"{self.args.run}r{label}")
        for cp in self.fleet:
            if cp.ws is not None:
                await cp.ws.close()


GAP = 5.0  # seconds between steps: the last answers of one arrive before the next


def schedule(start_at: float, steps: list[tuple[float, float]]) -> list[float]:
    """The wall-clock start of each step."""
    starts, at = [], start_at
    for _, seconds in steps:
        starts.append(at)
        at += seconds + GAP
    return starts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--ramp", type=float, default=200)
    parser.add_argument(
        "--jitter", action="store_true", help="connect at uniform random times, not evenly"
    )
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument(
        "--run",
        default="",
        help="prefix of the message ids: a second run against the same charge points "
        "needs its own (the server takes a repeated id for a replay, and stores nothing)",
    )
    parser.add_argument(
        "--steps",
        type=lambda text: [
            (
                None if rate == "steady" else rate if rate == "sessions" else float(rate),
                float(seconds),
            )
            for rate, seconds in (step.split(":") for step in text.split(","))
        ],
        required=True,
        help="rate:seconds,... (this process's share); `steady` for a rate: the steady mix; "
        "`sessions`: a StartTransaction from each charge point of the charging third",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(Client(args).run())


if __name__ == "__main__":
    main()
