"""Fixes for the WebSocket server under us (simple-websocket, through flask-sock), applied
to every WebSocket route by `websocket_handler`.

- simple-websocket writes frames with `socket.send()`, which under gevent may write only
  part of a frame when the socket's buffer is full (a busy browser, a large fragment), and
  its reader thread answers pings while a handler is sending: either corrupts the stream.
  Wrapping its socket makes every write whole and one at a time; and closing the
  WebSocket shuts the connection down but leaves the descriptor to the server.
- flask-sock lets any exception but ConnectionClosed reach Flask, which then writes an
  HTTP 500 page onto the upgraded socket: the peer reads "HTTP/1.1 500" as a broken frame.
  A failing handler is logged and its socket closed with 1011 (internal error) instead.

The OCPP endpoint, where thousands of sockets each carry a message every few seconds, is
served by `InlineServer` (`inline_route`) rather than simple-websocket's own server: see
there."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time

from flask import Response, current_app, request
from simple_websocket import ConnectionClosed, Server
from wsproto.events import Ping
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

log = logging.getLogger(__name__)

INTERNAL_ERROR = 1011
# "Service restart": the process is stopping (a deploy); the peer is to reconnect at once,
# and will reach another process (charge points, and htmx's ws extension, do).
SERVICE_RESTART = 1012


class _WholeWrites:
    def __init__(self, sock):
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, data: bytes) -> int:
        with self._lock:
            self._sock.sendall(data)
        return len(data)

    def close(self) -> None:
        """End the connection and leave the descriptor to the server, which closes it once
        the request is over: closed here, gunicorn's next read of the socket (keep-alive)
        failed with EBADF and logged a traceback for every socket the server closed (10,000
        tracebacks in a deploy)."""
        with contextlib.suppress(OSError):  # the peer has gone already
            self._sock.shutdown(socket.SHUT_RDWR)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def whole_frames(ws):
    """Make `ws` (a simple_websocket.Server) write each frame whole, one at a time."""
    if not isinstance(ws.sock, _WholeWrites):
        ws.sock = _WholeWrites(ws.sock)
    return ws


def websocket_handler(handler):
    """Decorate a flask-sock handler (under `@sock.route`): whole frames, and an error in
    the handler closes the socket with 1011 rather than writing an HTTP page onto it."""

    @functools.wraps(handler)
    def serve(ws, *args, **kwargs):
        whole_frames(ws)
        try:
            return handler(ws, *args, **kwargs)
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("WebSocket handler %s failed", handler.__name__)
            with contextlib.suppress(Exception):  # already closed, or the peer has gone
                ws.close(reason=INTERNAL_ERROR, message="internal error")

    return serve


class _NoReader:
    """Stands in for the reader thread that simple-websocket starts per socket."""

    def __init__(self, target):
        self.name = "inline"

    def start(self) -> None:
        pass


class InlineServer(Server):
    """A server WebSocket (simple-websocket's, for the handshake, the message assembly,
    the size limit and the close) read by the handler itself: `receive` reads the socket in
    the caller's greenlet, where simple-websocket reads it in a thread of its own per
    socket and hands each message over through an event (a second greenlet, a selector
    and a timer per read, an event and a timer per `receive`). Measured with the fleet
    bench (30 November): 49.6 to 35.5 MB resident per 1,000 charge points per worker, and
    the same CPU per message (0.36-0.43 ms): py-spy had put that reader at 17 % of a
    worker, but the time was the socket reads themselves, which now show in `receive`.

    Only for handlers that keep calling `receive` (the OCPP connection's loop): the
    socket is read, its pings answered and its close seen only inside `receive`. Pings:
    a socket silent for `ping_interval` is pinged, and one still silent an interval later
    is closed (1008), like simple-websocket's, but a socket that is sending is never
    pinged. `send` and `close` may be called from other greenlets. Relies on
    simple-websocket 1.1's internals (`input_buffer`, `_handle_events`), pinned."""

    def __init__(self, environ, **options):
        super().__init__(environ, thread_class=_NoReader, **options)
        self._raw = self.sock
        self.sock = _WholeWrites(self._raw)
        self._next_ping = time.monotonic() + (self.ping_interval or 0)

    def receive(self, timeout=None):
        """The next message, or None after `timeout` seconds without one (0: only what
        has arrived); raises ConnectionClosed once the socket is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.input_buffer:
            if not self.connected:
                raise ConnectionClosed(self.close_reason, self.close_message)
            now = time.monotonic()
            wait = None if deadline is None else max(deadline - now, 0.0)
            if self.ping_interval and (wait is None or self._next_ping - now < wait):
                wait = max(self._next_ping - now, 0.0)
            data = self._read(wait)
            if data is None:  # nothing within `wait`
                if self.ping_interval and time.monotonic() >= self._next_ping:
                    self._ping()
                elif deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if self.ping_interval:
                self._next_ping = time.monotonic() + self.ping_interval
                self.pong_received = True  # any frame shows the peer alive
            try:
                self.ws.receive_data(data)
                self.connected = self._handle_events() and self.connected
            except (LocalProtocolError, OSError):  # not a WebSocket stream, or gone
                self.connected = False
        return self.input_buffer.pop(0)

    def send(self, data) -> None:
        """Send one message; raises ConnectionClosed if the socket is closed or fails (a
        peer that went away while its message was being handled)."""
        try:
            super().send(data)
        except OSError:
            self.connected = False
            raise ConnectionClosed(self.close_reason, self.close_message) from None

    def _read(self, wait: float | None) -> bytes | None:
        """What the socket has (b"" once the peer has closed it), or None if nothing came
        within `wait` seconds. A failing socket counts as closed."""
        try:
            self._raw.settimeout(wait)
            data = self._raw.recv(self.receive_bytes)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError:
            data = b""
        if not data:
            self.connected = False
            raise ConnectionClosed(self.close_reason, self.close_message)
        return data

    def _ping(self) -> None:
        if not self.pong_received:
            log.info("WebSocket silent after a ping: closing")
            with contextlib.suppress(ConnectionClosed):
                self.close(reason=CloseReason.POLICY_VIOLATION, message="Ping/Pong timeout")
            return
        self.pong_received = False
        self._next_ping = time.monotonic() + self.ping_interval
        try:
            self.sock.send(self.ws.send(Ping()))
        except LocalProtocolError:  # closing already
            pass
        except OSError:  # gone
            self.connected = False


class _Upgraded(Response):
    """What a WebSocket view returns once its socket is done with: under gunicorn, no
    response at all (the connection was the WebSocket's), as flask-sock does."""

    mode = "werkzeug"

    def __call__(self, *args, **kwargs):
        if self.mode == "gunicorn":
            raise StopIteration()
        return super().__call__(*args, **kwargs)


def inline_route(bp, path: str):
    """Register `handler(ws, **view_args)` on `bp` as a WebSocket route served by an
    InlineServer (as flask-sock's `Sock.route` does with simple-websocket's Server, and
    with the same SOCK_SERVER_OPTIONS); wrapped in `websocket_handler`."""

    def decorator(handler):
        guarded = websocket_handler(handler)

        @functools.wraps(handler)
        def view(*args, **kwargs):
            ws = InlineServer(request.environ, **current_app.config.get("SOCK_SERVER_OPTIONS", {}))
            try:
                guarded(ws, *args, **kwargs)
            except ConnectionClosed:
                pass
            finally:
                with contextlib.suppress(ConnectionClosed, LocalProtocolError, OSError):
                    ws.close()  # unless closed already
                ws.sock.close()  # the connection ends; its descriptor is the server's
            upgraded = _Upgraded()
            upgraded.mode = ws.mode
            return upgraded

        bp.route(path, websocket=True)(view)
        return handler

    return decorator
