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

HTTP/1.1 spoken here, on a socket and a TLS object gevent did not patch (gevent patches
the `socket` and `ssl` modules, and whatever looks names up in them, as urllib3 and
`ssl.SSLSocket` do, would wait for the event loop or fail in a native thread). Not
`http.client`: each request took 165 µs of CPU in it (headers checked one by one, sent
apart from the body, the answer's parsed by the `email` package), h11 208 µs, urllib3
226 µs; what a webhook needs (one POST of a known length; an answer's status, its length
or chunks, whether the connection stays open) takes ~30 µs here. In a worker these
requests hold the interpreter lock the charge points' event loop needs: at 1,000
deliveries a second that difference was a seventh of a core.
"""

from __future__ import annotations

import atexit
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

try:
    from gevent import monkey as _monkey
except ImportError:  # pragma: no cover - gevent is a dependency
    _monkey = None

USER_AGENT = "Plugboard-Webhooks/1"
EXCERPT = 500  # characters of an answer kept in the delivery log
READ_LIMIT = 64 * 1024  # bytes of an answer read; a longer one closes its connection
HEAD_LIMIT = 64 * 1024  # bytes of an answer's status line and headers
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


class BadResponse(Exception):
    """The receiver's answer is not HTTP/1.x as this client reads it."""


class _Closed(Exception):
    """The connection ended before an answer began: on a kept-alive connection, the
    receiver closed it meanwhile (the request is sent again on a new one)."""


class _Connection:
    """A connection to the checked address, speaking to the host by name: requests sent
    whole (one write each), answers read as HTTP/1.1 says (a length, chunks, or until the
    connection closes), kept open when both sides allow it."""

    def __init__(self, target: Target, timeout: float):
        self.target = target
        self.timeout = timeout
        self.sock = None
        self._buffer = b""

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

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self._buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request` (whole), read the answer: (status, its first READ_LIMIT bytes).
        Closes the connection unless the answer was read whole and it may stay open."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(request)
        if not self._fill(1):
            raise _Closed
        while True:
            status, version, headers = self._head()
            if not 100 <= status < 200:
                break  # 1xx: an interim answer (100 Continue, 103 Early Hints); the next
        body, complete = self._body(status, headers)
        connection = headers.get("connection", "").lower()
        keep = version == "HTTP/1.1" or "keep-alive" in connection
        # (Bytes beyond the answer: nothing asked for them; not a connection to use again.)
        if not complete or not keep or "close" in connection or self._buffer:
            self.close()
        return status, body

    def _fill(self, size: int) -> bool:
        """Read until the buffer holds `size` bytes; False if the connection ends first."""
        while len(self._buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                return False
            self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        if not self._fill(size):
            raise BadResponse("the connection closed in the middle of the answer")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _line(self, limit: int = HEAD_LIMIT) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > limit or not self._fill(len(self._buffer) + 1):
                raise BadResponse("the answer's headers are too long or cut short")
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line

    def _head(self) -> tuple[int, str, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > HEAD_LIMIT or not self._fill(len(self._buffer) + 1):
                raise BadResponse("the answer's headers are too long or cut short")
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and len(code) == 3):
            raise BadResponse(f"not an HTTP/1.x status line: {status_line[:100]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if colon:
                name = name.strip().lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return int(code), version, headers

    def _body(self, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
        """The answer's body (at most READ_LIMIT bytes), and whether it was read whole."""
        if status in (204, 304):
            return b"", True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunks()
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length.split(",")[0])
            except ValueError:
                raise BadResponse(f"Content-Length {length[:40]!r}") from None
            if size < 0:
                raise BadResponse(f"Content-Length {length[:40]!r}")
            return self._take(min(size, READ_LIMIT)), size <= READ_LIMIT
        # Neither: the body ends when the connection does.
        while len(self._buffer) < READ_LIMIT and self._fill(len(self._buffer) + 1):
            pass
        return self._buffer[:READ_LIMIT], False

    def _chunks(self) -> tuple[bytes, bool]:
        body = b""
        while True:
            size_line = self._line(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadResponse(f"a chunk size of {size_line[:40]!r}") from None
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return body, True
            if len(body) + size > READ_LIMIT:
                return body + self._take(READ_LIMIT - len(body)), False
            body += self._take(size)
            if self._take(2) != b"\r\n":
                raise BadResponse("a chunk without its line end")


class _TLSSocket:
    """TLS over a plain socket through memory buffers (`ssl.SSLObject`), with what
    `_Connection` asks of a socket. Not `SSLContext.wrap_socket`: the standard library's
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

    def recv(self, size: int) -> bytes:
        try:
            return self._io(self._tls.read, size)
        except ssl.SSLZeroReturnError:  # the peer ended TLS
            return b""

    def close(self) -> None:
        self._sock.close()


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


def _request(target: Target, headers: dict, body: bytes) -> bytes:
    """The bytes of a POST of `body` to `target` with `headers` (and the Host, User-Agent,
    Content-Type and Content-Length ones, unless given)."""
    lines = [f"POST {_path(target.path)} HTTP/1.1"]
    given = {name.lower() for name in headers}
    for name, value in (
        ("Host", target.host_header),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
    ):
        if name.lower() not in given:
            lines.append(f"{name}: {value}")
    for name, value in headers.items():
        if _UNSAFE.intersection(f"{name}{value}") or ":" in name:
            raise ValueError(f"header {name!r}: a line break or control character")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


_UNSAFE = frozenset(chr(code) for code in (*range(32), 127)) - {"\t"}


def _path(path: str) -> str:
    """The request target: non-ASCII characters and spaces percent-encoded, the rest as
    the URL gave them."""
    if path.isascii() and " " not in path and not _UNSAFE.intersection(path):
        return path
    return quote(path, safe="/?&=%:@!$'()*+,;~[]")


def _post(connection: _Connection, headers: dict, body: bytes) -> Outcome:
    """One request on `connection`, which stays open only if the receiver keeps it so (and
    connects anew, by itself, for the next request otherwise)."""
    started = time.monotonic()
    try:
        request = _request(connection.target, headers, body)
        reused = connection.sock is not None
        try:
            status, data = connection.exchange(request)
        except (_Closed, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # A kept-alive connection the receiver had closed meanwhile: once more, anew.
            connection.close()
            status, data = connection.exchange(request)
    except _Closed:
        connection.close()
        return Outcome(
            None, "the receiver closed the connection without answering", None, _ms(started)
        )
    except (OSError, ValueError, BadResponse) as exc:
        connection.close()
        return Outcome(None, (str(exc) or type(exc).__name__)[:300], None, _ms(started))
    excerpt = data[:EXCERPT].decode("utf-8", "replace") or None
    return Outcome(status, None, excerpt, _ms(started))


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
