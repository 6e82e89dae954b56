"""Charge points connected to another worker or host, reached through Redis: calls to them
(ChangeAvailability, UnlockConnector) and the rule of one live connection per identity."""

from __future__ import annotations

import logging
import threading
import time

from simple_websocket import ConnectionClosed

from dashboard.extensions import of_this_process
from dashboard.live.events import current_bus
from dashboard.live.redis_bus import COMMANDS, KICKS, BusUnavailable, RedisBus, outage_log
from dashboard.ocpp16 import registry
from dashboard.ocpp16.connection import CallFailed, CallTimeout, Connection

log = logging.getLogger(__name__)


def install(bus: RedisBus) -> None:
    """Answer, in this process, the calls for charge points connected here, and close a
    socket here when its charge point has connected to another process."""
    bus.on(COMMANDS, lambda message: _maybe_run(bus, message))
    bus.on(KICKS, _kick)


def _maybe_run(bus: RedisBus, message: dict) -> None:
    if registry.get(message["identity"]) is not None:
        # The call waits for the charge point: never on the listener's own thread.
        threading.Thread(target=_run, args=(bus, message), daemon=True).start()


def _run(bus: RedisBus, message: dict) -> None:
    connection = registry.get(message["identity"])
    if connection is None:
        return
    try:
        payload = connection.call(message["action"], message["payload"], message["timeout"])
        bus.reply(message, {"ok": payload})
    except CallTimeout:
        bus.reply(message, {"error": "timeout"})
    except CallFailed as exc:
        bus.reply(message, {"error": "failed", "code": exc.code, "description": exc.description})
    except ConnectionClosed:
        bus.reply(message, {"error": "closed"})


def _kick(message: dict) -> None:
    for kick in message.get("kicks", [message]):  # [message]: one from an older release
        connection = registry.get(kick["identity"])
        if connection is not None and connection.uid != kick["uid"]:
            log.info("%s connected to another process: closing this socket", kick["identity"])
            connection.close(1000, "replaced by a new connection")


# How long the connects of this process gather before they are told to the others: a
# replaced connection lives this much longer elsewhere, and a fleet reconnecting at once
# costs a Redis message per this interval instead of one per few connects.
KICKS_GATHER = 0.1


class _Kicks:
    """The connects of this process, told to the others: one message for all those made
    within KICKS_GATHER of the first (and while the last was being sent), by one thread per
    process. A fleet reconnecting at once made a Redis round trip per connect, each message
    waking every other process; then, sent as soon as the last had gone, a message per two
    or three connects (8 % of a worker's CPU in a storm, py-spy)."""

    def __init__(self, app):
        self._queue: list[dict] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._queue.append({"identity": connection.identity, "uid": connection.uid})
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ocpp-kicks", daemon=True)
                self._thread.start()
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            time.sleep(KICKS_GATHER)
            with self._lock:
                kicks, self._queue = self._queue, []
                self._wakeup.clear()
            bus = current_bus()
            if bus is None:
                continue
            try:
                bus.publish(KICKS, {"kicks": kicks})
            except BusUnavailable as exc:
                outage_log.warn("Redis unavailable (%s): other processes not told of connects", exc)


def announce(connection: Connection) -> None:
    """Tell the other processes that `connection` is now the live one for its identity
    (soon after, with the other connects of this process). Without Redis the charge point
    is served all the same, by this process: the other processes cannot be told (a socket
    of its left open elsewhere closes when idle)."""
    bus = current_bus()
    if bus is None:
        return
    bus.ensure_listening(timeout=0)  # started, not waited for: Redis may be away
    of_this_process("ocpp_kicks", _Kicks).add(connection)


def call(identity: str, action: str, payload: dict, timeout: float) -> dict:
    """Call a charge point connected to another process. Raises like Connection.call,
    ConnectionClosed when no process holds its socket, and BusUnavailable when Redis
    cannot be reached."""
    bus = current_bus()
    answer = bus.request(
        COMMANDS,
        {"identity": identity, "action": action, "payload": payload, "timeout": timeout},
        timeout + 2,
    )
    if answer is None:
        raise CallTimeout(f"no answer from {identity} through Redis")
    if "ok" in answer:
        return answer["ok"]
    if answer["error"] == "failed":
        raise CallFailed(answer["code"], answer["description"])
    if answer["error"] == "timeout":
        raise CallTimeout(f"{identity} did not answer {action} in {timeout} s")
    raise ConnectionClosed()
