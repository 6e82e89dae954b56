"""The live channel's fan-out in one worker process: one listener on the event bus feeds a
bounded queue per open browser socket, holding only events its user may see.

A slow browser never holds back the others: its queue keeps the newest event per
connector or charge point, and when more distinct things changed than it holds, it is
told to reload what it shows instead."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from dashboard.live import events
from dashboard.live.events import AUTH_CHANGED, BUS_RESUMED, STOPPING
from dashboard.metrics import BROWSER_SOCKETS

MAX_PENDING = 500
# What a page shows; the bus carries other events too.
LIVE_TYPES = frozenset({"connector", "chargepoint", "incident"})


class Shown(NamedTuple):
    """The connector rows a browser says its page shows: (charge point id, connector id)
    pairs, and the connector ids shown of each of their charge points; and the filters of
    its list (name: value, only those set), or None when it did not say."""

    rows: frozenset
    chargepoints: dict
    filters: dict | None = None


class LiveSocket:
    """What one browser socket is owed: the events of the charge points its user sees.

    The company an event names is a first sieve only: the fragment itself is rendered for,
    and checked against, what the user may see when it is sent (a charge point may have
    moved to another company since). `recheck` asks the socket to compare its user's
    account with the one it was opened for, after any account change."""

    def __init__(
        self,
        company_id: int | None,
        all_companies: bool,
        cp_id: int | None = None,
        user_id: int | None = None,
    ):
        self.company_id = company_id
        self.all_companies = all_companies
        self.cp_id = cp_id  # a charge point page wants only that charge point's events
        self.connector_id: int | None = None  # a connector page, only that connector's
        self.user_id = user_id
        self._pending: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.overflowed = False
        self.recheck = False
        self.closing = False
        # The rows the page shows, as the browser last said (None: it has not said).
        self.shown: Shown | None = None

    @property
    def scope(self) -> int | None:
        """The company whose charge points this socket shows; None for every company."""
        return None if self.all_companies else self.company_id

    def wants(self, event: dict) -> bool:
        """Company policy, the same rule as every query: a superadmin sees every company.
        An event about a charge point that left the user's company is wanted too: its row
        must leave the page."""
        if self.cp_id is not None and event.get("cp_id") != self.cp_id:
            return False
        if self.connector_id is not None and event.get("connector_id") not in (
            None,
            self.connector_id,
        ):
            return False
        return self.all_companies or self.company_id in (
            event.get("company_id"),
            event.get("previous_company_id"),
        )

    def ask_reload(self) -> None:
        """Drop what is pending and have the page reload what it shows instead."""
        with self._lock:
            self._pending.clear()
            self.overflowed = True
        self.ready.set()

    def ask_recheck(self) -> None:
        """Wake the socket to check its user's account again."""
        self.recheck = True
        self.ready.set()

    def ask_close(self) -> None:
        """The process is stopping: the socket is to close (1012), and the browser to
        reconnect, to another process, and reload what it shows."""
        self.closing = True
        self.ready.set()

    def offer(self, event: dict) -> None:
        """Queue `event`, replacing an older one about the same thing."""
        key = (event["type"], event.get("cp_id"), event.get("connector_id"))
        with self._lock:
            self._pending.pop(key, None)
            self._pending[key] = event
            if len(self._pending) > MAX_PENDING:
                self._pending.clear()
                self.overflowed = True
        self.ready.set()

    def take(self) -> tuple[list[dict], bool]:
        """Everything pending, oldest first, and whether some had to be dropped."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            overflowed, self.overflowed = self.overflowed, False
            self.ready.clear()
        return pending, overflowed


class Hub:
    """The open sockets of this process, and the one bus listener that feeds them."""

    def __init__(self):
        self._sockets: set[LiveSocket] = set()
        self._lock = threading.Lock()
        self._unsubscribe = None

    def add(self, socket: LiveSocket) -> None:
        with self._lock:
            if socket not in self._sockets:
                BROWSER_SOCKETS.inc()
            self._sockets.add(socket)
            if self._unsubscribe is None:
                self._unsubscribe = events.subscribe(self.dispatch)
        if events.is_stopping():  # opened as the process was told to stop
            socket.ask_close()
        bus = events.current_bus()
        if bus is not None:
            bus.ensure_listening()

    def remove(self, socket: LiveSocket) -> None:
        with self._lock:
            if socket in self._sockets:
                BROWSER_SOCKETS.dec()
            self._sockets.discard(socket)

    def dispatch(self, event: dict) -> None:
        """Hand `event` to every socket whose user may see it; after an account change,
        have every socket check its user again; after a Redis outage, have them reload."""
        kind = event.get("type")
        if kind == BUS_RESUMED:  # other processes' events were missed: reload
            self.resync_all()
            return
        if kind == STOPPING:
            self.close_all()
            return
        if kind not in LIVE_TYPES and kind != AUTH_CHANGED:
            return
        for socket in self._all():
            if kind == AUTH_CHANGED:
                socket.ask_recheck()
            elif socket.wants(event):
                socket.offer(event)

    def resync_all(self) -> None:
        """Tell every socket to reload what it shows (events may have been missed)."""
        for socket in self._all():
            socket.ask_reload()

    def close_all(self) -> None:
        """Have every socket close (the process is stopping)."""
        for socket in self._all():
            socket.ask_close()

    def _all(self) -> list[LiveSocket]:
        with self._lock:
            return list(self._sockets)

    def count(self) -> int:
        with self._lock:
            return len(self._sockets)


hub = Hub()
