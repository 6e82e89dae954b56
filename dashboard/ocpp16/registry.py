"""The charge points connected to this process, by identity. One live connection per
identity: a new one closes the one before."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dashboard.metrics import OCPP_SOCKETS
from dashboard.ocpp16.connection import Connection

_lock = threading.Lock()
_connections: dict[str, Connection] = {}
_draining = False  # the process is stopping (`drain_all`)


def register(connection: Connection) -> None:
    """Make `connection` the live one for its identity, closing any older one. In a
    process that is stopping (it may accept for a moment after it was told to), the
    connection is drained at once: the charge point goes straight to another process
    instead of waiting here for the end of the graceful timeout."""
    with _lock:
        previous = _connections.get(connection.identity)
        _connections[connection.identity] = connection
        OCPP_SOCKETS.set(len(_connections))
        draining = _draining
    if previous is not None and previous is not connection:
        previous.close(1000, "replaced by a new connection")
    if draining:
        connection.drain()


def unregister(connection: Connection) -> None:
    """Forget `connection`, unless a newer one has taken its place."""
    with _lock:
        if _connections.get(connection.identity) is connection:
            del _connections[connection.identity]
            OCPP_SOCKETS.set(len(_connections))


def get(identity: str) -> Connection | None:
    """The live connection of `identity` in this process, if any."""
    with _lock:
        return _connections.get(identity)


def count() -> int:
    """How many charge points are connected to this process."""
    with _lock:
        return len(_connections)


def drain_all(before_closing: Callable[[list[Connection]], None] | None = None) -> int:
    """The process is stopping: every charge point socket closes with 1012 once the frame
    it is handling is answered (`Connection.drain`), after `before_closing(connections)`,
    if given, has run. Returns how many there were."""
    global _draining
    with _lock:
        _draining = True
        connections = list(_connections.values())
    if before_closing is not None:
        before_closing(connections)
    for connection in connections:
        connection.drain()
    return len(connections)
