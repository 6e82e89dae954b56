"""The wire under webhook deliveries (dashboard/services/webhook_transport.py), against
real receivers on 127.0.0.1: requests in order on a kept-alive connection to the checked
address, a run that stops at the first failure, a connection the receiver closed opened
anew, certificates checked, and, under gevent, runs that go on while the event loop is
busy."""

from __future__ import annotations

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
