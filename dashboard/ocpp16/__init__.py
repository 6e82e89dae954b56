"""The OCPP 1.6-J endpoint, `ws://host/ocpp/<identity>`.

Before the upgrade: an unknown identity answers 404, wrong or missing credentials of a
charge point with an authorization key answer 401 (security profile 1, HTTP Basic auth).
After it: the subprotocol must be `ocpp1.6`, or the socket is closed at once."""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import logging
import re
import threading
import time

from flask import Blueprint, Response, abort, current_app, g, request
from sqlalchemy import select

from dashboard.extensions import among, db, of_this_process, sock
from dashboard.models import Connector
from dashboard.models.chargepoint import auth_key_matches
from dashboard.ocpp16 import registry, remote
from dashboard.ocpp16.admissions import reader as admission_reader
from dashboard.ocpp16.connection import Connection
from dashboard.ocpp16.handlers import handle_call, record_alive
from dashboard.ocpp16.ingest import CONNECTED, DISCONNECTED, MAX_BATCH, batcher, behind
from dashboard.schemas.chargepoint import IDENTITY_PATTERN
from dashboard.services import commands
from dashboard.services.chargepoints import is_registered, record_disconnections
from dashboard.services.errors import ServiceError
from dashboard.services.permissions import SYSTEM
from dashboard.websocket import websocket_handler

bp = Blueprint("ocpp16", __name__)
log = logging.getLogger(__name__)
SUBPROTOCOL = "ocpp1.6"


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """(username, password) as bytes from an `Authorization: Basic` header, or None.
    Parsed here rather than by werkzeug, which gives up on a password that is not UTF-8
    (the raw AuthorizationKey bytes)."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(b":")
    return (username, password) if sep else None


_IDENTITY = re.compile(IDENTITY_PATTERN)


@bp.before_request
def admit():
    """Refuse, before the upgrade, identities we do not know and wrong credentials."""
    identity = (request.view_args or {}).get("identity", "")
    if not _IDENTITY.match(identity):  # no charge point can be registered under it
        abort(404)
    chargepoint = admission_reader().read(identity)
    if chargepoint is None:
        abort(404)
    if chargepoint.auth_key_hash is not None:
        credentials = basic_credentials(request.headers.get("Authorization"))
        if (
            credentials is None
            or credentials[0] != identity.encode()
            or not auth_key_matches(chargepoint.auth_key_hash, credentials[1])
        ):
            log.warning("%s: refused, wrong or missing credentials", identity)
            return Response(
                "Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="OCPP", charset="UTF-8"'}
            )
    g.chargepoint_id = chargepoint.id
    g.chargepoint_registered = is_registered(chargepoint)
    db.session.rollback()  # hold no transaction across the upgrade


class FreshStatuses:
    """Once a connection has stayed up OCPP_STATUS_SETTLE_SECONDS since it opened (or since
    the charge point's last BootNotification), its charge point is asked (TriggerMessage)
    for the status of every connector it has not reported since: a charge point that
    reconnects says nothing, and its last statuses may be hours old. Logged as `system`
    calls. A connection still handling a frame then (its boot, in a fleet reconnecting at
    once) is looked at again a period later, and so is every connection while the process
    is behind with storing what charge points send (a reload: the charge points are
    sending their statuses, and the calls and their log cost 14 % of a new worker then).
    One thread per process keeps the connections
    in order of when they settle and looks up the connectors of all that settle together
    in one query: no thread waits per connection (memory), and a fleet reconnecting costs
    no query per charge point."""

    def __init__(self, app):
        self.app = app
        self._due: list[tuple[float, int, Connection]] = []
        self._count = itertools.count()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, connection: Connection) -> None:
        if self.app.config["OCPP_STATUS_SETTLE_SECONDS"] <= 0:
            return
        with self._lock:
            heapq.heappush(self._due, (self._settles(connection), next(self._count), connection))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ocpp-fresh-statuses", daemon=True
                )
                self._thread.start()
        self._wakeup.set()

    def _settles(self, connection: Connection) -> float:
        return connection.settle_from + self.app.config["OCPP_STATUS_SETTLE_SECONDS"]

    def _run(self) -> None:
        while True:
            settled = []
            with self._lock:
                now = time.monotonic()
                lagging = behind(self.app)
                while self._due and self._due[0][0] <= now:
                    _, _, connection = heapq.heappop(self._due)
                    if connection.closed.is_set():
                        continue  # gone before it settled
                    if self._settles(connection) > now:  # booted since: settles later
                        heapq.heappush(
                            self._due, (self._settles(connection), next(self._count), connection)
                        )
                    elif connection.busy or lagging:
                        # A frame of its still unanswered (its boot, in a fleet that
                        # reconnects at once), or the process behind with its charge
                        # points' messages: not settled; look again a period later.
                        again = now + self.app.config["OCPP_STATUS_SETTLE_SECONDS"]
                        heapq.heappush(self._due, (again, next(self._count), connection))
                    else:
                        settled.append(connection)
                wait = self._due[0][0] - now if self._due else None
                self._wakeup.clear()
            if settled:
                self._ask(settled)
            self._wakeup.wait(wait)

    def _ask(self, settled: list[Connection]) -> None:
        with self.app.app_context():
            try:
                known: dict[int, set[int]] = {}
                rows = db.session.execute(
                    select(Connector.connector_cp_id, Connector.connector_id).where(
                        among(Connector.connector_cp_id, {c.cp_id for c in settled})
                    )
                )
                for cp_id, number in rows:
                    known.setdefault(cp_id, set()).add(number)
            except Exception:
                log.exception("looking up the connectors of settled connections failed")
                return
            finally:
                db.session.remove()
        for connection in settled:
            ids = known.get(connection.cp_id, set())
            missing = sorted(ids - connection.reported)
            if missing and connection.registered and not connection.closed.is_set():
                # One call for all when none was reported; else one per connector missing.
                numbers = [None] if missing == sorted(ids) else missing
                threading.Thread(
                    target=self._trigger, args=(connection, numbers), daemon=True
                ).start()

    def _trigger(self, connection: Connection, numbers: list[int | None]) -> None:
        with self.app.app_context():
            try:
                for number in numbers:
                    commands.trigger_message(
                        SYSTEM, connection.cp_id, "StatusNotification", number, "system"
                    )
            except ServiceError as exc:
                log.info("%s: statuses not asked for (%s)", connection.identity, exc.message)
            except Exception:
                log.exception("%s: asking for fresh statuses failed", connection.identity)
            finally:
                db.session.remove()


def fresh_statuses() -> FreshStatuses:
    """This process's FreshStatuses for the current application."""
    return of_this_process("ocpp_fresh_statuses", FreshStatuses)


@sock.route("/ocpp/<identity>", bp=bp)
@websocket_handler
def ocpp(ws, identity: str):
    """Serve one charge point until it disconnects."""
    if ws.subprotocol != SUBPROTOCOL:
        log.warning("%s: no ocpp1.6 subprotocol offered, closing", identity)
        ws.close(reason=1002, message="subprotocol ocpp1.6 required")
        return
    cp_id = g.chargepoint_id
    connection = Connection(ws, identity, cp_id, handle_call, record_alive)
    connection.registered = g.chargepoint_registered
    # From here on, whatever fails, the connection leaves the registry and the charge
    # point is marked disconnected: a dead socket never answers for a live one.
    try:
        registry.register(connection)
        remote.announce(connection)
        connection.since = batcher().submit(cp_id, CONNECTED)
        connection.last_seen_written = time.monotonic()  # the mark wrote it
        log.info("%s: connected", identity)
        fresh_statuses().watch(connection)
        connection.run(current_app.config["OCPP_IDLE_TIMEOUT"])
    finally:
        connection.closed.set()
        registry.unregister(connection)
        if connection.since is not None and not connection.disconnect_recorded:
            try:
                batcher().submit(cp_id, DISCONNECTED, since=connection.since)
            except Exception:
                log.exception("%s: could not record the disconnection", identity)
        log.info("%s: disconnected", identity)


def drain(app) -> int:
    """The process is stopping (a deploy): mark every charge point connected here
    disconnected, a few statements for all, then close each socket with 1012 once its
    frame in hand is answered (`registry.drain_all`). Marked before the sockets close, the
    marks cannot meet the new workers' connect marks for the same charge points: written
    as each socket closed, they waited on those rows' locks and deadlocked with them, and
    held the old workers past their graceful timeout. A mark that fails is left to the
    connection's own, as it closes. Returns how many charge points there were."""

    def mark(connections: list[Connection]) -> None:
        marked = [c for c in connections if c.since is not None]
        with app.app_context():
            try:
                for start in range(0, len(marked), MAX_BATCH):
                    chunk = marked[start : start + MAX_BATCH]
                    record_disconnections([(c.cp_id, c.since) for c in chunk])
                    db.session.commit()
                    for connection in chunk:
                        connection.disconnect_recorded = True
            except Exception:
                db.session.rollback()
                log.exception("marking the charge points disconnected before a stop failed")
            finally:
                db.session.remove()

    return registry.drain_all(mark)
