"""Webhook requests on the wire: keep-alive HTTP/1.1 connections to the address that was
checked (while the Host header, the TLS server name and the certificate check use the
URL's host name), and runs of requests sent in order, one after the other, from a native
thread.

Why a native thread: deliveries to an endpoint are in order, one round trip at a time. In
a gevent worker busy with charge points, the greenlet waiting for a receiver's answer is
resumed only when the event loop next gets round to it: `bench/events.py` measured 7 to
10 ms per delivery (the receiver answered in well under one), so an endpoint could not
take more than about a hundred events a second. A native thread blocks in the kernel and
needs only the interpreter lock to go on, which the busy thread hands over within
`sys.getswitchinterval()` (5 ms) and at once whenever it waits. Without gevent (the
development server, the tests' threads) the run happens in the calling thread.

The standard library's `http.client`, on a socket and a TLS object gevent did not patch
(gevent patches the `socket` and `ssl` modules, and whatever looks names up in them, as
urllib3 and `ssl.SSLSocket` do, would wait for the event loop or fail in a native
thread). urllib3 also cost twice the CPU per request (226 µs against 117 µs measured).
"""

from __future__ import annotations

import atexit
import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

try:
    from gevent import monkey as _monkey
except ImportError:  # pragma: no cover - gevent is a dependency
    _monkey = None

USER_AGENT = "Plugboard-Webhooks/1"
EXCERPT = 500  # characters of an answer kept in the delivery log
READ_LIMIT = 64 * 1024  # bytes of an answer read; a longer one closes its connection
IDLE_CONNECTIONS = 4  # kept open per receiver address
IDLE_SECONDS = 30.0  # a connection unused this long is closed rather than used again


@dataclass
class Outcome:
    status_code: int | None
    error: str | None
    excerpt: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def failure(self) -> str | None:
        """Why it failed (the error, or the HTTP status); None when it succeeded."""
        if self.succeeded:
            return None
        return (self.error or f"HTTP {self.status_code}")[:300]


@dataclass(frozen=True)
class Target:
    """Where an endpoint's requests go: its URL's scheme, host name, port and path, and
    the address its host name was resolved to and checked."""

    scheme: str
    host: str
    port: int
    address: str
    path: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _original(module: str, name: str):
    """`module.name` as the standard library has it, not as gevent patched it."""
    if _monkey is not None and _monkey.is_module_patched(module):
        return _monkey.get_original(module, name)
    return getattr(__import__(module), name)


class _Connection(http.client.HTTPConnection):
    """A connection to the checked address, speaking to the host by name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        # Not socket.create_connection: even as the standard library has it, it looks up
        # `socket` and `getaddrinfo` in the module gevent patched. The address is a
        # literal, resolved and checked before: nothing to look up.
        family = socket.AF_INET6 if ":" in self.target.address else socket.AF_INET
        sock = _original("socket", "socket")(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.target.address, self.target.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _TLSSocket:
    """TLS over a plain socket through memory buffers (`ssl.SSLObject`), with what
    `http.client` asks of a socket. Not `SSLContext.wrap_socket`: the standard library's
    `SSLSocket` looks itself up in the `ssl` module, which gevent patched, and fails in a
    native thread."""

    CHUNK = 16 * 1024

    def __init__(self, sock, context: ssl.SSLContext, host: str):
        self._sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host)
        self._io(self._tls.do_handshake)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._sock.sendall(data)

    def _io(self, operation, *args):
        """`operation` of the TLS object, feeding it from the socket until it can go on."""
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                data = self._sock.recv(self.CHUNK)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush()
            return result

    def sendall(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[self._io(self._tls.write, view) :]

    def recv_into(self, buffer, size: int = 0) -> int:
        try:
            return self._io(self._tls.read, size or len(buffer), buffer)
        except ssl.SSLZeroReturnError:  # the peer ended TLS
            return 0

    def makefile(self, mode: str = "rb", buffering: int = -1):
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        self._sock.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: _TLSSocket):
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)


_tls_context = None


class _TLSConnection(_Connection):
    def connect(self) -> None:
        global _tls_context
        super().connect()
        if _tls_context is None:
            # PROTOCOL_TLS_CLIENT: the certificate is required and checked against the name.
            _tls_context = _original("ssl", "SSLContext")(ssl.PROTOCOL_TLS_CLIENT)
            _tls_context.load_default_certs()
        try:
            self.sock = _TLSSocket(self.sock, _tls_context, self.target.host)
        except BaseException:
            self.sock.close()
            self.sock = None
            raise


# Open connections not in use, per receiver address, each with when it was put back.
_idle: dict[tuple, list[tuple[_Connection, float]]] = {}
_idle_lock = threading.Lock()


def _key(target: Target) -> tuple:
    return (target.scheme, target.host, target.port, target.address)


def _connection(target: Target, timeout: float) -> _Connection:
    """An idle connection to `target` (the newest), or a new one (not connected yet)."""
    stale = []
    connection = None
    with _idle_lock:
        waiting = _idle.get(_key(target), [])
        while waiting and connection is None:
            candidate, since = waiting.pop()
            if time.monotonic() - since < IDLE_SECONDS:
                connection = candidate
            else:
                stale.append(candidate)
    for old in stale:
        old.close()
    if connection is not None:
        return connection
    kind = _TLSConnection if target.scheme == "https" else _Connection
    return kind(target, timeout)


def _put_back(connection: _Connection) -> None:
    with _idle_lock:
        waiting = _idle.setdefault(_key(connection.target), [])
        if len(waiting) < IDLE_CONNECTIONS:
            waiting.append((connection, time.monotonic()))
            return
    connection.close()


@atexit.register
def close_idle() -> None:
    """Close every idle connection (at exit)."""
    with _idle_lock:
        connections = [connection for waiting in _idle.values() for connection, _ in waiting]
        _idle.clear()
    for connection in connections:
        connection.close()


def _post(connection: _Connection, headers: dict, body: bytes) -> Outcome:
    """One request on `connection`, which stays open only if the receiver keeps it so (and
    connects anew, by itself, for the next request otherwise)."""
    started = time.monotonic()
    target = connection.target
    reused = connection.sock is not None
    try:
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # A kept-alive connection the receiver had closed meanwhile: once more, anew.
            connection.close()
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
        data = response.read(READ_LIMIT)
        if not response.isclosed() or response.will_close:  # not all read, or not kept
            response.close()
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        return Outcome(None, (str(exc) or type(exc).__name__)[:300], None, _ms(started))
    excerpt = data[:EXCERPT].decode("utf-8", "replace") or None
    return Outcome(response.status, None, excerpt, _ms(started))


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def post_in_order(
    target: Target,
    requests: Iterable,
    prepare: Callable[[object], tuple[dict, bytes]],
    timeout: float,
    deadline: float,
    threads: int = 8,
) -> list[Outcome]:
    """POST each of `requests`, in order, one after the other (`prepare(request)` gives
    its headers and body, just before it is sent), until one fails or the monotonic
    `deadline` has passed: the outcomes of those sent. Under gevent, in one of `threads`
    native threads of this process (as many as it runs deliveries at once)."""
    # The connection is taken and given back here, in the caller's thread: the thread
    # that sends touches nothing shared (under gevent, a lock is gevent's, not for it).
    connection = _connection(target, timeout)

    def run() -> list[Outcome]:
        outcomes = []
        for request in requests:
            headers, body = prepare(request)
            headers.setdefault("Host", target.host_header)
            headers.setdefault("User-Agent", USER_AGENT)
            headers.setdefault("Content-Type", "application/json")
            outcome = _post(connection, headers, body)
            outcomes.append(outcome)
            if not outcome.succeeded or time.monotonic() >= deadline:
                break
        return outcomes

    try:
        return _in_native_thread(run, threads)
    finally:
        if connection.sock is not None:
            _put_back(connection)


_pool = None
_pool_lock = threading.Lock()


def _in_native_thread(function: Callable[[], list[Outcome]], threads: int) -> list[Outcome]:
    global _pool
    if _monkey is None or not _monkey.is_module_patched("socket"):
        return function()
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from gevent.threadpool import ThreadPool

                _pool = ThreadPool(max(1, threads))
    return _pool.apply(function)
