"""The fixes applied to every WebSocket route (dashboard.websocket), on a real socket."""

from __future__ import annotations

import socket
import threading

import pytest
from flask import Flask
from flask_sock import Sock
from werkzeug.serving import make_server
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from dashboard.websocket import INTERNAL_ERROR, websocket_handler


@pytest.fixture
def ws_url():
    app = Flask(__name__)
    sock = Sock(app)

    @sock.route("/fails")
    @websocket_handler
    def fails(ws):
        ws.send("first")
        raise RuntimeError("a bug in the handler")

    @sock.route("/large")
    @websocket_handler
    def large(ws):
        for n in range(20):
            ws.send(f"{n}:" + "x" * 200_000)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _events_until_close(url: str, path: str) -> list:
    """Open a WebSocket to `path` with wsproto over a plain socket and return the events
    it reads until a close frame (or the end of the stream, or 5 s): every byte the server
    writes is parsed, so anything that is not a WebSocket frame fails the read."""
    host, port = url.removeprefix("ws://").split(":")
    client = WSConnection(ConnectionType.CLIENT)
    got = []
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(client.send(Request(host=host, target=path)))
        while not any(isinstance(e, CloseConnection) for e in got):
            data = raw.recv(65536)
            client.receive_data(data or None)
            got.extend(client.events())
            if not data:
                break
    return got


def test_a_failing_handler_closes_the_socket_with_1011_instead_of_writing_an_http_page(ws_url):
    # Without the guard, Flask's "HTTP/1.1 500" page follows the frames on the upgraded
    # socket, which the client cannot parse as a frame (wsproto raises RemoteProtocolError).
    got = _events_until_close(ws_url, "/fails")
    assert isinstance(got[0], AcceptConnection)
    assert [e.data for e in got if isinstance(e, TextMessage)] == ["first"]
    assert isinstance(got[-1], CloseConnection)
    assert got[-1].code == INTERNAL_ERROR


def test_large_frames_arrive_whole_and_in_order(ws_url):
    got = _events_until_close(ws_url, "/large")
    messages, part = [], ""
    for event in got:
        if isinstance(event, TextMessage):
            part += event.data
            if event.message_finished:
                messages.append(part)
                part = ""
    assert [int(m.split(":")[0]) for m in messages] == list(range(20))
    assert all(len(m) == len(f"{n}:") + 200_000 for n, m in enumerate(messages))
    assert isinstance(got[-1], CloseConnection)
