"""The fixes applied to every WebSocket route (dashboard.websocket), and the OCPP endpoint's
InlineServer, on a real socket."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from flask import Blueprint, Flask
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.serving import make_server
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from dashboard.websocket import INTERNAL_ERROR, inline_route, websocket_handler


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


# ---- InlineServer (the OCPP endpoint's): read by the handler itself


@pytest.fixture
def inline_url():
    """Routes served by InlineServer on a threaded werkzeug server (gunicorn serves them in
    the OCPP tests): pings after 1 s of silence, messages up to 1,000 bytes."""
    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": 1000, "ping_interval": 1}
    bp = Blueprint("inline", __name__)
    seen = {
        "closed": threading.Event(),
        "handler_ended": threading.Event(),
        "send_closed": threading.Event(),
    }

    @inline_route(bp, "/echo")
    def echo(ws):
        while (message := ws.receive(timeout=5)) is not None:
            ws.send(f"echo:{message}")
        ws.send("idle")

    @inline_route(bp, "/quiet")
    def quiet(ws):
        ws.send(repr(ws.receive(timeout=0.3)))
        ws.send(repr(ws.receive(timeout=0)))

    @inline_route(bp, "/closed-elsewhere")
    def closed_elsewhere(ws):
        threading.Timer(0.3, ws.close, kwargs={"reason": 1012, "message": "restart"}).start()
        try:
            ws.receive(timeout=10)
        except ConnectionClosed:
            seen["closed"].set()
        finally:
            seen["handler_ended"].set()

    @inline_route(bp, "/fails")
    def fails(ws):
        ws.send("first")
        raise RuntimeError("a bug in the handler")

    @inline_route(bp, "/peer-leaves")
    def peer_leaves(ws):
        ws.receive(timeout=5)
        try:
            for _ in range(500):  # the peer resets the connection meanwhile
                ws.send("x" * 1000)
                time.sleep(0.01)
        except ConnectionClosed:
            seen["send_closed"].set()

    app.register_blueprint(bp)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    thread.join(5)


class RawClient:
    """A WebSocket client over wsproto and a plain socket: it answers nothing by itself
    (no pongs), so that the server's side of every frame shows."""

    def __init__(self, url: str, path: str):
        host, port = url.removeprefix("ws://").split(":")
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.sendall(self.ws.send(Request(host=host, target=path)))
        assert isinstance(self.next_event(), AcceptConnection)

    def send(self, event) -> None:
        self.sock.sendall(self.ws.send(event))

    def next_event(self, timeout: float = 5):
        """The next event from the server; None if the stream ended."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.ws.events():
                return event
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def test_inline_messages_are_answered_in_order_and_assembled_from_fragments(inline_url):
    url, _ = inline_url
    client = RawClient(url, "/echo")
    try:
        for n in range(50):
            client.send(TextMessage(data=f"m{n}"))
        client.send(TextMessage(data="frag", message_finished=False))
        client.send(TextMessage(data="mented", message_finished=True))
        got = [client.next_event().data for _ in range(51)]
        assert got == [f"echo:m{n}" for n in range(50)] + ["echo:fragmented"]
        client.send(Ping(payload=b"hi"))
        pong = client.next_event()
        assert isinstance(pong, Pong) and pong.payload == b"hi"
    finally:
        client.close()


def test_inline_receive_gives_none_after_its_timeout(inline_url):
    url, _ = inline_url
    client = RawClient(url, "/quiet")
    try:
        started = time.monotonic()
        assert client.next_event().data == "None"
        assert time.monotonic() - started >= 0.3
        assert client.next_event().data == "None"  # timeout 0: only what has arrived
    finally:
        client.close()


def test_inline_pings_a_silent_peer_and_closes_it_when_it_stays_silent(inline_url):
    url, _ = inline_url
    client = RawClient(url, "/echo")
    try:
        started = time.monotonic()
        assert isinstance(client.next_event(), Ping)
        assert 0.8 <= time.monotonic() - started < 3
        closing = client.next_event()  # no pong: closed an interval later
        assert isinstance(closing, CloseConnection) and closing.code == 1008
        assert time.monotonic() - started >= 1.8
    finally:
        client.close()


def test_inline_a_peer_that_answers_pings_stays_connected(inline_url):
    url, _ = inline_url
    client = RawClient(url, "/echo")
    try:
        for _ in range(3):
            ping = client.next_event()
            assert isinstance(ping, Ping)
            client.send(ping.response())
        client.send(TextMessage(data="still here"))
        assert client.next_event().data == "echo:still here"
    finally:
        client.close()


def test_inline_a_message_over_the_limit_closes_the_socket_with_1009(inline_url):
    url, _ = inline_url
    client = RawClient(url, "/echo")
    try:
        client.send(TextMessage(data="x" * 1001))
        closing = client.next_event()
        assert isinstance(closing, CloseConnection) and closing.code == 1009
    finally:
        client.close()


def test_inline_a_close_from_another_thread_ends_the_handlers_receive(inline_url):
    url, seen = inline_url
    client = RawClient(url, "/closed-elsewhere")
    try:
        closing = client.next_event()
        assert isinstance(closing, CloseConnection) and closing.code == 1012
        assert not seen["handler_ended"].is_set()  # waiting for the close to be answered
        client.send(closing.response())
        assert seen["handler_ended"].wait(5) and seen["closed"].is_set()
        assert client.next_event() is None  # and the connection ends
    finally:
        client.close()


def test_inline_a_failing_handler_closes_the_socket_with_1011(inline_url):
    url, _ = inline_url
    got = _events_until_close(url, "/fails")
    assert [e.data for e in got if isinstance(e, TextMessage)] == ["first"]
    assert isinstance(got[-1], CloseConnection) and got[-1].code == INTERNAL_ERROR


def test_inline_a_send_to_a_peer_that_has_gone_raises_connection_closed(inline_url):
    # Not an OSError out of the handler (logged with a traceback as a failure).
    url, seen = inline_url
    client = RawClient(url, "/peer-leaves")
    client.send(TextMessage(data="bye"))
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, as a charge point losing power
    assert seen["send_closed"].wait(5)
