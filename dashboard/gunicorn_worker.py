"""The gunicorn worker of `gunicorn.conf.py`: gunicorn's gevent worker, which on TERM (a
stop, or the old workers of a HUP reload) stops accepting at once, closes every charge
point socket with 1012 "service restart" once the frame it is handling is answered, every
browser's live socket with 1012 too, and ends every event stream: charge points and
browsers come straight back (to the new workers), nothing acknowledged is lost, and the
worker exits as soon as its sockets are gone instead of at the end of graceful_timeout."""

from __future__ import annotations

import weakref

import gevent
from gevent.server import StreamServer
from gunicorn.workers.ggevent import GeventWorker

# How long a new connection may take to deliver its first request (a charge point's or a
# browser's WebSocket handshake, any page): as long as a client waits for its answer
# (websockets waits 10 s by default, the fleet bench's client 30 s). gunicorn waits only
# `keepalive` (5 s) for it, as for the next request on a kept-alive connection, and
# closes the connection without a word when that runs out: a busy worker (the new
# workers of a reload, taking 10,000 charge points reconnecting and 1,000 statuses a
# second) reached the read of thousands of accepted connections after more than 5 s and
# cut them (the fleet bench's deploy: 3,709 and 6,132 reconnects ended "did not receive a
# valid HTTP response"). Idle kept-alive connections still close after `keepalive`.
FIRST_REQUEST_TIMEOUT = 30.0

# Connections a worker accepts each time its listener wakes it. gunicorn sets 1 when there
# are several gevent workers (so that one does not take a whole burst), and a worker then
# accepts one connection per turn of its loop: in a reconnect storm (333 connects a
# second) the listen queue filled (4,096, `ss -ltn`), SYNs were dropped and retried after
# 1, 3, 7 and 15 s: the storm's p99 handshake of 5-28 s. With a few at a time, a busy
# worker, whose loop wakes later, still leaves most of a burst to the others. (Tried on
# 28 November before FIRST_REQUEST_TIMEOUT existed: connections accepted in a burst then
# waited past gunicorn's 5 s keepalive for their first read and were cut.)
ACCEPTS_PER_WAKEUP = 32


class ListenerKeepingServer(StreamServer):
    """gevent's StreamServer, whose `close` (a stopping worker's; gunicorn's own loop
    calls it too) stops accepting for good but leaves the listening descriptor open until
    the process exits.

    The listening socket is shared by gunicorn's arbiter and every worker. A worker that
    closes its descriptor of it leaves the socket registered in its libev epoll set (the
    registration belongs to the socket, which the other processes keep open), so the next
    connection to arrive wakes the loop for a descriptor that no longer exists; libev's
    removal of it fails (EBADF), and libev then rebuilds its epoll set from every active
    watcher. A watcher still on a descriptor closed under it, harmless until then, makes
    that rebuild abort the process (`epoll_modify: Assertion 'I/O watcher with invalid fd
    found in epoll_ctl'`): the old workers of reload runs under a reconnecting fleet died so
    during their drain, 118 to 375 charge point sockets each cut without their 1012.
    Kept open, the descriptor is still valid when the loop next wakes for it, and libev
    removes it from the set without a rebuild. Connections that arrive meanwhile wait in
    the shared queue for the processes that still accept (the new workers of a reload; on
    a full stop, none: they are refused when the last process exits)."""

    def close(self):
        self._stop_event.set()  # not `started` any more: a freed pool slot resumes nothing
        self.stop_accepting()


def kept_server(worker) -> type[StreamServer]:
    """The server class of `worker`'s listeners: a ListenerKeepingServer whose instances,
    once started, are kept in `worker.servers` (so that a stop can close them at once) and
    accept up to ACCEPTS_PER_WAKEUP connections each time their listener wakes them."""

    class KeptServer(ListenerKeepingServer):
        def start(self):
            self.max_accept = max(self.max_accept, ACCEPTS_PER_WAKEUP)
            super().start()
            worker.servers.append(self)

    return KeptServer


class PlugboardWorker(GeventWorker):
    """See the module's docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._served = weakref.WeakSet()  # the greenlets (connections) past their first read

    def run(self):
        """gunicorn's run, whose listening servers are kept (`self.servers`) so that a stop
        can stop them accepting at once: gunicorn's own loop stops them only when it next
        wakes (every second, later on a busy worker), and a fleet reconnecting after the
        1012s reached the stopping worker meanwhile, where the graceful timeout cut
        thousands off before their handshake was answered."""
        from gunicorn.workers import ggevent

        self.servers = []
        # the name gunicorn's run makes its servers with
        ggevent.StreamServer = kept_server(self)
        super().run()

    def timeout_ctx(self):
        """The time limit of each request read (gunicorn's keep-alive loop): the first one
        of a connection gets FIRST_REQUEST_TIMEOUT, the later ones `keepalive`. Each
        connection is served by a greenlet of its own."""
        connection = gevent.getcurrent()
        if connection in self._served:
            return gevent.Timeout(self.cfg.keepalive, False)
        self._served.add(connection)
        return gevent.Timeout(max(FIRST_REQUEST_TIMEOUT, self.cfg.keepalive), False)

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        from gevent import spawn

        spawn(_drain, self)


def _drain(worker) -> None:
    from dashboard import ocpp16
    from dashboard.live import events
    from dashboard.live.channel import hub

    for server in getattr(worker, "servers", ()):
        server.close()  # accept nothing more: new connections go to the other workers
    count = ocpp16.drain(worker.wsgi)  # the Flask app (wsgi:app)
    browsers = hub.count()
    events.stopping()  # browsers' live sockets and event streams
    worker.log.info(
        "stopping: %d charge point sockets and %d browser sockets closed with 1012",
        count,
        browsers,
    )
