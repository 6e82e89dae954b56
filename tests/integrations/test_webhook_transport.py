"""The wire under webhook deliveries (dashboard/services/webhook_transport.py), against
real receivers on 127.0.0.1: requests in order on a kept-alive connection to the checked
address, a run that stops at the first failure, a connection the receiver closed opened
anew, certificates checked, and, under gevent, runs that go on while the event loop is
busy."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard.services.webhook_transport import Target, post_in_order
from tests.integrations.receiver import Receiver
from tests.servers import ROOT


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def _numbered(n) -> tuple[dict, bytes]:
    return {}, f'{{"n":{n}}}'.encode()


def _run(target: Target, count: int):
    deadline = time.monotonic() + 10
    return post_in_order(target, range(count), _numbered, timeout=5, deadline=deadline)


def test_requests_go_in_order_on_one_connection_to_the_checked_address(receiver):
    # The name is only spoken (Host header); the address is where the connection goes.
    target = Target("http", "hooks.example.com", receiver.port, "127.0.0.1", "/hook?x=1")
    outcomes = _run(target, 5)
    assert [o.status_code for o in outcomes] == [200] * 5
    assert [o.excerpt for o in outcomes] == ["ok"] * 5
    assert [r["body"] for r in receiver.requests] == [f'{{"n":{n}}}' for n in range(5)]
    assert {r["headers"]["Host"] for r in receiver.requests} == {
        f"hooks.example.com:{receiver.port}"
    }
    assert {r["path"] for r in receiver.requests} == {"/hook?x=1"}
    assert len({r["peer"] for r in receiver.requests}) == 1  # kept alive
    _run(target, 2)  # a later run takes the same connection again
    assert len({r["peer"] for r in receiver.requests}) == 1


def test_a_run_stops_at_the_first_failure(receiver):
    receiver.answers = [200, 503]
    target = Target("http", "127.0.0.1", receiver.port, "127.0.0.1", "/hook")
    outcomes = _run(target, 5)
    assert [o.status_code for o in outcomes] == [200, 503]
    assert outcomes[1].failure == "HTTP 503"
    assert len(receiver.requests) == 2


def test_an_unreachable_receiver_is_an_outcome_not_an_exception():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcomes = _run(Target("http", "127.0.0.1", port, "127.0.0.1", "/"), 3)
    assert len(outcomes) == 1
    assert outcomes[0].status_code is None and "refused" in outcomes[0].error.lower()


def test_a_kept_alive_connection_the_receiver_closed_is_opened_anew():
    """A receiver that closes each connection after answering, without saying so."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        for _ in range(3):
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            accepted.append(connection)
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.2)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    target = Target("http", "127.0.0.1", listener.getsockname()[1], "127.0.0.1", "/")
    try:
        assert [o.status_code for o in _run(target, 1)] == [200]
        time.sleep(0.5)  # the receiver has closed it meanwhile
        assert [o.status_code for o in _run(target, 1)] == [200]
        assert len(accepted) == 2
    finally:
        listener.close()


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate for
    hooks.example.com: (port, the certificate's file)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=hooks.example.com", "-addext", "subjectAltName=DNS:hooks.example.com"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a client that refused our certificate, as it should

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake in the request's thread, not in the one that accepts.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def test_certificates_are_checked_against_the_host_name(tls_receiver):
    port, _ = tls_receiver
    outcomes = _run(Target("https", "hooks.example.com", port, "127.0.0.1", "/"), 1)
    assert outcomes[0].status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in outcomes[0].error  # self-signed: not trusted


GEVENT_RUN = """
from gevent import monkey
monkey.patch_all()
import sys, time
import gevent
from dashboard.services.webhook_transport import Target, post_in_order

port, tls_port = int(sys.argv[1]), int(sys.argv[2])
window = []

def deliver(target):
    outcomes = post_in_order(
        target, range(20), lambda n: ({}, b"{}"), timeout=5, deadline=time.monotonic() + 10
    )
    assert [o.status_code for o in outcomes] == [200] * 20, outcomes

def spin():  # a greenlet that keeps the event loop from running for 1.5 s
    window.append(time.time())
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        pass
    window.append(time.time())

runs = [
    gevent.spawn(deliver, Target("http", "127.0.0.1", port, "127.0.0.1", "/hook")),
    gevent.spawn(spin),
]
gevent.joinall(runs, raise_error=True)
# TLS too, its certificate trusted here (SSL_CERT_FILE) and checked against the name.
deliver(Target("https", "hooks.example.com", tls_port, "127.0.0.1", "/hook"))
wrong = Target("https", "other.example.com", tls_port, "127.0.0.1", "/hook")
refused = post_in_order(wrong, [0], lambda n: ({}, b"{}"), timeout=5, deadline=time.monotonic())
assert "Hostname mismatch" in refused[0].error, refused
print(window[0], window[1])
"""


def test_under_gevent_a_run_goes_on_while_the_event_loop_is_busy(receiver, tls_receiver):
    """The round trips of a run do not wait for the event loop: in a gevent worker busy
    with charge points they would otherwise each wait for its next turn. Over TLS too."""
    tls_port, cert = tls_receiver
    result = subprocess.run(
        [sys.executable, "-c", GEVENT_RUN, str(receiver.port), str(tls_port)],
        cwd=ROOT,
        env={**os.environ, "SSL_CERT_FILE": str(cert)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    began, ended = map(float, result.stdout.split())
    arrived = [r["at"] for r in receiver.requests]
    assert len(arrived) == 20
    assert sum(began <= at <= ended for at in arrived) >= 15, (began, ended, arrived)


class ScriptedReceiver:
    """A receiver on a raw socket that answers the n-th request of each connection with
    the n-th of `answers` (bytes, as sent), then closes the connection if `close_after`;
    records every request as received (head and body) and the connections accepted."""

    def __init__(self, answers: list[bytes], close_after: bool = False):
        self.answers = answers
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        # OSError: the client went away (as it does from a long answer).
        with connection, contextlib.suppress(OSError):
            self._answer(connection)

    def _answer(self, connection):
        data = b""
        for answer in self.answers:
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(data) < length:
                data += connection.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + data[:length])
            data = data[length:]
            connection.sendall(answer)
            if self.close_after:
                return

    def target(self, path: str = "/hook") -> Target:
        return Target("http", "127.0.0.1", self.port, "127.0.0.1", path)

    def close(self):
        self.listener.close()


@pytest.mark.parametrize(
    ("answer", "excerpt", "kept"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", "first", True),
        (  # chunks, with an extension and a trailer
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
            "abcde",
            True,
        ),
        (  # an interim answer first
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
            "ok",
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", None, True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "ok", True),
    ],
    ids=["length", "chunked", "interim", "no-content", "close", "http-1.0", "1.0-keep-alive"],
)
def test_answers_are_read_as_http_says_and_the_connection_kept_when_allowed(answer, excerpt, kept):
    receiver = ScriptedReceiver([answer, answer])
    try:
        outcomes = _run(receiver.target(), 2)
        assert [o.status_code for o in outcomes] == [int(answer.split(b" ")[1])] * 2 or (
            [o.status_code for o in outcomes] == [202, 202]
        )
        assert [o.excerpt for o in outcomes] == [excerpt, excerpt]
        assert len(receiver.requests) == 2
        assert receiver.connections == (1 if kept else 2)
    finally:
        receiver.close()


def test_an_answer_that_ends_with_its_connection_is_read_to_the_end():
    receiver = ScriptedReceiver([b"HTTP/1.1 500 Oops\r\n\r\nwent wrong"], close_after=True)
    try:
        outcomes = _run(receiver.target(), 3)
        assert [(o.status_code, o.excerpt, o.failure) for o in outcomes] == [
            (500, "went wrong", "HTTP 500")
        ]
    finally:
        receiver.close()


def test_a_long_answer_is_cut_and_its_connection_not_used_again():
    long = b"x" * (2 * 1024 * 1024)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(long), long)
    receiver = ScriptedReceiver([answer, answer])
    try:
        outcomes = _run(receiver.target(), 2)
        assert [o.status_code for o in outcomes] == [200, 200]
        assert outcomes[0].excerpt == "x" * 500
        assert receiver.connections == 2  # the rest of the first answer was not read
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "Content-Length 'many'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a chunk size of"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed in the middle"),
        (b"", "closed the connection without answering"),
    ],
    ids=["not-http", "bad-length", "bad-chunk", "cut-short", "no-answer"],
)
def test_a_broken_answer_is_a_failed_outcome_with_the_reason(answer, error):
    receiver = ScriptedReceiver([answer], close_after=True)
    try:
        outcomes = _run(receiver.target(), 2)
        assert len(outcomes) == 1
        assert outcomes[0].status_code is None
        assert error in outcomes[0].error
    finally:
        receiver.close()


def _send_one(target: Target, headers: dict, body: bytes):
    return post_in_order(
        target, [1], lambda n: (dict(headers), body), timeout=5, deadline=time.monotonic() + 10
    )


def test_the_request_is_one_post_with_its_headers_and_a_safe_path():
    receiver = ScriptedReceiver([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    try:
        target = receiver.target("/höök path?q=ä b")
        outcomes = _send_one(target, {"webhook-id": "evt_1"}, b'{"n":1}')
        assert outcomes[0].status_code == 200
        head, _, body = receiver.requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /h%C3%B6%C3%B6k%20path?q=%C3%A4%20b HTTP/1.1"
        assert set(lines[1:]) == {
            f"Host: 127.0.0.1:{receiver.port}",
            "User-Agent: Plugboard-Webhooks/1",
            "Content-Type: application/json",
            "Content-Length: 7",
            "webhook-id: evt_1",
        }
        assert body == b'{"n":1}'
        # A header that would split the request is refused, not sent.
        refused = _send_one(target, {"webhook-id": "evt_1\r\nX-Evil: 1"}, b"{}")
        assert refused[0].status_code is None and "line break" in refused[0].error
        assert len(receiver.requests) == 1
    finally:
        receiver.close()
