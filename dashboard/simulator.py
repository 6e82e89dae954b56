"""Simulated charge points: the `ocpp` package's client, walking realistic status
sequences, so that a demo (and a load test) has something alive to show.

Each charge point boots, reports connector 0 and each connector Available, sends
heartbeats, and then, at the chosen rate, moves one of its connectors along a charging
session: Available → Preparing → Charging → SuspendedEV → Charging → Finishing →
Available, with an occasional fault that clears after a while. A session is a real one:
a card is authorized and a transaction started before Charging, MeterValues follow every
10 s with the energy register rising at the connector's power (none while SuspendedEV),
and the transaction stops at Finishing (or at a fault). It answers ChangeAvailability (and
reports the new status) and UnlockConnector. A dropped connection is retried with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from datetime import UTC, datetime

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

log = logging.getLogger("plugboard.simulator")

SESSION = ["Available", "Preparing", "Charging", "SuspendedEV", "Charging", "Finishing"]
CHARGING = SESSION.index("Charging")
FINISHING = SESSION.index("Finishing")
FAULT_CHANCE = 0.02
# Cards the drivers of the demo use, and how often a charging connector reports its meter.
TAGS = [f"DEMO-CARD-{n}" for n in range(1, 6)]
METER_INTERVAL = 10.0
# The power each connector charges at (W): an AC plug, a DC plug, AC for the rest.
POWER = {1: 11000, 2: 50000}
FAULT_CODES = ["GroundFailure", "HighTemperature", "OverCurrentFailure", "PowerMeterFailure"]


def now_iso() -> str:
    """The current time as OCPP writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SimulatedChargePoint(ChargePoint):
    """One simulated charge point and the state of its connectors."""

    def __init__(self, identity: str, connection, connectors: int, rng: random.Random):
        super().__init__(identity, connection)
        self.rng = rng
        # Per connector: its place in SESSION, or "Faulted" / "Unavailable".
        self.state = {number: 0 for number in range(1, connectors + 1)}
        self.inoperative: set[int] = set()
        # Per connector: its energy register (Wh), and the transaction going on.
        self.register = {number: rng.randint(100_000, 5_000_000) for number in self.state}
        self.transactions: dict[int, int] = {}
        self.configuration = {
            "HeartbeatInterval": {"readonly": False, "value": "300"},
            "MeterValueSampleInterval": {"readonly": False, "value": "10"},
            "AuthorizeRemoteTxRequests": {"readonly": False, "value": "false"},
            "NumberOfConnectors": {"readonly": True, "value": str(connectors)},
        }

    def status_of(self, number: int) -> str:
        state = self.state[number]
        return state if isinstance(state, str) else SESSION[state]

    async def report(self, number: int, error_code: str = "NoError") -> None:
        """Send the connector's current status."""
        await self.call(
            call.StatusNotification(
                connector_id=number,
                error_code=error_code,
                status=self.status_of(number) if number else "Available",
                timestamp=now_iso(),
            )
        )

    async def step(self) -> None:
        """Move one operative connector one step along its session (or fault, or heal)."""
        candidates = [n for n in self.state if n not in self.inoperative]
        if not candidates:
            return
        number = self.rng.choice(candidates)
        state = self.state[number]
        error_code = "NoError"
        if state == "Faulted":
            self.state[number] = 0
        elif self.rng.random() < FAULT_CHANCE:
            self.state[number] = "Faulted"
            error_code = self.rng.choice(FAULT_CODES)
            await self.stop_session(number, "Other")
        else:
            self.state[number] = (state + 1) % len(SESSION)
            if self.state[number] == CHARGING and number not in self.transactions:
                await self.start_session(number)
            elif self.state[number] == FINISHING:
                await self.stop_session(number, "EVDisconnected")
        await self.report(number, error_code)

    async def start_session(self, number: int) -> None:
        """Authorize a card and start a transaction on connector `number`."""
        tag = self.rng.choice(TAGS)
        await self.call(call.Authorize(id_tag=tag))
        started = await self.call(
            call.StartTransaction(
                connector_id=number,
                id_tag=tag,
                meter_start=int(self.register[number]),
                timestamp=now_iso(),
            )
        )
        if started is not None:
            self.transactions[number] = started.transaction_id

    async def stop_session(self, number: int, reason: str) -> None:
        """Stop the transaction of connector `number`, if one is going on."""
        transaction_id = self.transactions.pop(number, None)
        if transaction_id is not None:
            await self.call(
                call.StopTransaction(
                    meter_stop=int(self.register[number]),
                    timestamp=now_iso(),
                    transaction_id=transaction_id,
                    reason=reason,
                )
            )

    async def send_meter_values(self, elapsed: float) -> None:
        """The energy and power of every connector in a session, `elapsed` seconds on."""
        for number, transaction_id in list(self.transactions.items()):
            power = POWER.get(number, 7400) if self.status_of(number) == "Charging" else 0
            self.register[number] += power * elapsed / 3600
            await self.call(
                call.MeterValues(
                    connector_id=number,
                    transaction_id=transaction_id,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampledValue": [
                                {
                                    "value": str(int(self.register[number])),
                                    "context": "Sample.Periodic",
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                },
                                {
                                    "value": str(power),
                                    "context": "Sample.Periodic",
                                    "measurand": "Power.Active.Import",
                                    "unit": "W",
                                },
                            ],
                        }
                    ],
                )
            )

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id, type):
        numbers = list(self.state) if connector_id == 0 else [connector_id]
        if any(n not in self.state for n in numbers):
            return call_result.ChangeAvailability(status="Rejected")
        for number in numbers:
            if type == "Inoperative":
                self.inoperative.add(number)
                self.state[number] = "Unavailable"
            else:
                self.inoperative.discard(number)
                self.state[number] = 0
        # The new status follows as a StatusNotification, after the answer.
        asyncio.get_running_loop().call_later(
            0.1, lambda: asyncio.ensure_future(self._report_all(numbers))
        )
        return call_result.ChangeAvailability(status="Accepted")

    async def _report_all(self, numbers) -> None:
        for number in numbers:
            await self.report(number)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id):
        status = "Unlocked" if connector_id in self.state else "NotSupported"
        return call_result.UnlockConnector(status=status)

    # The rest of the Core profile, as a real charger answers it, so that the dashboard's
    # remote operations have something to talk to.

    def later(self, coroutine_function, *args) -> None:
        """Run a call after the answer has gone (a charge point answers first)."""
        asyncio.get_running_loop().call_later(
            0.1, lambda: asyncio.ensure_future(coroutine_function(*args))
        )

    @on(Action.reset)
    async def on_reset(self, type):
        return call_result.Reset(status="Accepted")

    @on(Action.clear_cache)
    async def on_clear_cache(self):
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None):
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.get_configuration)
    async def on_get_configuration(self, key=None):
        known = {name: {"key": name, **entry} for name, entry in self.configuration.items()}
        if not key:
            return call_result.GetConfiguration(configuration_key=list(known.values()))
        return call_result.GetConfiguration(
            configuration_key=[known[k] for k in key if k in known],
            unknown_key=[k for k in key if k not in known] or None,
        )

    @on(Action.change_configuration)
    async def on_change_configuration(self, key, value):
        entry = self.configuration.get(key)
        if entry is None:
            return call_result.ChangeConfiguration(status="NotSupported")
        if entry["readonly"]:
            return call_result.ChangeConfiguration(status="Rejected")
        entry["value"] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    async def on_trigger_message(self, requested_message, connector_id=None):
        if requested_message == "StatusNotification":
            numbers = [connector_id] if connector_id in self.state else list(self.state)
            self.later(self._report_all, numbers)
        elif requested_message == "Heartbeat":
            self.later(self.call, call.Heartbeat())
        elif requested_message == "MeterValues":
            self.later(self.send_meter_values, 0)
        else:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag, connector_id=None, charging_profile=None):
        number = connector_id or next(
            (n for n in self.state if self.status_of(n) == "Available"), None
        )
        if number not in self.state or number in self.transactions:
            return call_result.RemoteStartTransaction(status="Rejected")
        self.later(self._remote_session, number, id_tag)
        return call_result.RemoteStartTransaction(status="Accepted")

    async def _remote_session(self, number: int, id_tag: str) -> None:
        self.state[number] = SESSION.index("Preparing")
        await self.report(number)
        started = await self.call(
            call.StartTransaction(
                connector_id=number,
                id_tag=id_tag,
                meter_start=int(self.register[number]),
                timestamp=now_iso(),
            )
        )
        if started is not None:
            self.transactions[number] = started.transaction_id
            self.state[number] = CHARGING
            await self.report(number)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id):
        number = next((n for n, t in self.transactions.items() if t == transaction_id), None)
        if number is None:
            return call_result.RemoteStopTransaction(status="Rejected")
        self.later(self._remote_stop, number)
        return call_result.RemoteStopTransaction(status="Accepted")

    async def _remote_stop(self, number: int) -> None:
        await self.stop_session(number, "Remote")
        self.state[number] = FINISHING
        await self.report(number)


async def run_chargepoint(
    url: str,
    identity: str,
    connectors: int,
    rate: float,
    stop: asyncio.Event,
    rng: random.Random,
    headers: dict | None = None,
    meter_interval: float = METER_INTERVAL,
) -> None:
    """Keep one simulated charge point connected and busy until `stop` is set."""
    backoff = 1.0
    while not stop.is_set():
        try:
            async with connect(
                f"{url.rstrip('/')}/{identity}",
                subprotocols=["ocpp1.6"],
                additional_headers=headers or {},
                proxy=None,
                open_timeout=10,
            ) as ws:
                backoff = 1.0
                await _session(ws, identity, connectors, rate, stop, rng, meter_interval)
        except (TimeoutError, OSError, Exception) as exc:  # keep retrying
            if stop.is_set():
                return
            log.warning("%s: %s; retrying in %.0f s", identity, exc, backoff)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 60)


async def _session(ws, identity, connectors, rate, stop, rng, meter_interval) -> None:
    cp = SimulatedChargePoint(identity, ws, connectors, rng)
    receiver = asyncio.create_task(cp.start())
    try:
        boot = await cp.call(
            call.BootNotification(
                charge_point_vendor="Plugboard",
                charge_point_model="Simulator",
                firmware_version="sim-1.0",
            )
        )
        while boot.status != "Accepted":
            await asyncio.sleep(boot.interval or 10)
            boot = await cp.call(
                call.BootNotification(
                    charge_point_vendor="Plugboard", charge_point_model="Simulator"
                )
            )
        interval = boot.interval or 300
        await cp.report(0)
        for number in cp.state:
            await cp.report(number)
        loop = asyncio.get_running_loop()
        # Exponential gaps between steps: `rate` status changes per second on average.
        next_step = loop.time() + (rng.expovariate(rate) if rate > 0 else float("inf"))
        next_heartbeat = loop.time() + interval
        last_meter = loop.time()
        while not stop.is_set() and not receiver.done():
            due = min(next_step, next_heartbeat, last_meter + meter_interval)
            await asyncio.sleep(max(0.0, due - loop.time()))
            if stop.is_set():
                break
            now = loop.time()
            if now >= next_step:
                await cp.step()
                next_step = now + rng.expovariate(rate)
            if now - last_meter >= meter_interval:
                await cp.send_meter_values(now - last_meter)
                last_meter = now
            if now >= next_heartbeat:
                await cp.call(call.Heartbeat())
                next_heartbeat += interval
    finally:
        receiver.cancel()


async def simulate(
    url: str,
    identities: list[str],
    connectors: int,
    rate: float,
    duration: float | None = None,
    seed: int | None = None,
    meter_interval: float = METER_INTERVAL,
) -> None:
    """Run the charge points `identities` against `url` until interrupted or `duration`;
    charging connectors send MeterValues every `meter_interval` seconds."""
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    stop = asyncio.Event()
    rng = random.Random(seed)
    tasks = []
    for identity in identities:
        tasks.append(
            asyncio.create_task(
                run_chargepoint(
                    url,
                    identity,
                    connectors,
                    rate,
                    stop,
                    random.Random(rng.random()),
                    meter_interval=meter_interval,
                )
            )
        )
        await asyncio.sleep(0.01)  # do not knock on the server all at once
    # Ctrl-C or a TERM ends the run, also in a background job (whose shell ignores SIGINT).
    ended = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal_number, ended.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), duration)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
