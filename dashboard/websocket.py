"""Fixes for the WebSocket server under us (simple-websocket, through flask-sock), applied
to every WebSocket route by `websocket_handler`.

- simple-websocket writes frames with `socket.send()`, which under gevent may write only
  part of a frame when the socket's buffer is full (a busy browser, a large fragment), and
  its reader thread answers pings while a handler is sending: either corrupts the stream.
  Wrapping its socket makes every write whole and one at a time; and closing the
  WebSocket shuts the connection down but leaves the descriptor to the server.
- flask-sock lets any exception but ConnectionClosed reach Flask, which then writes an
  HTTP 500 page onto the upgraded socket: the peer reads "HTTP/1.1 500" as a broken frame.
  A failing handler is logged and its socket closed with 1011 (internal error) instead."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading

from simple_websocket import ConnectionClosed

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
