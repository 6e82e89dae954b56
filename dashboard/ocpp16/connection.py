"""One charge point's WebSocket: the receive loop, replies, and calls to the charge point
(a pending-call table, a send lock, one outstanding call at a time, a timeout)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from simple_websocket import ConnectionClosed

from dashboard.metrics import UNPARSED, count_ocpp_message
from dashboard.ocpp16 import frames
from dashboard.ocpp16.frames import Frame, OcppError, Unanswerable
from dashboard.ocpp16.validation import validate
from dashboard.websocket import SERVICE_RESTART

log = logging.getLogger(__name__)

# Replies remembered per connection, so that a retried CALL gets the same answer.
RECENT_REPLIES = 32


def _content(frame: Frame) -> str:
    """What makes two CALLs with one message id the same CALL: action and payload."""
    return json.dumps([frame.action, frame.payload], sort_keys=True, separators=(",", ":"))


class CallTimeout(Exception):
    """The charge point did not answer a call in time."""


class CallFailed(Exception):
    """The charge point answered a call with a CALLERROR or an invalid CALLRESULT."""

    def __init__(self, code: str, description: str):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class _Waiter:
    def __init__(self, action: str):
        self.action = action
        self.event = threading.Event()
        self.frame: Frame | None = None


class Connection:
    """A live OCPP connection. `handle_call(connection, frame) -> reply text` answers the
    charge point's CALLs; `on_frame(connection)` is called for every other frame received
    (any frame proves the charge point alive)."""

    def __init__(
        self,
        ws,
        identity: str,
        cp_id: int,
        handle_call: Callable[[Connection, Frame], str],
        on_frame: Callable[[Connection], None],
    ):
        self.ws = ws
        self.uid = uuid.uuid4().hex
        self.identity = identity
        self.cp_id = cp_id
        self._handle_call = handle_call
        self._on_frame = on_frame
        self._send_lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._pending: dict[str, _Waiter] = {}
        # message id -> (the CALL's content, the CALLRESULT it got)
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.closed = threading.Event()
        # Whether the charge point may send calls other than BootNotification: read from
        # the database when it connects, updated by its boots.
        self.registered = False
        # When "last seen" was last written (time.monotonic()), to bound those writes.
        self.last_seen_written = 0.0
        # The connectors whose status the charge point reported since it connected or
        # booted, and when that period began (time.monotonic()).
        self.reported: set[int] = set()
        self.settle_from = time.monotonic()
        # The connected mark this connection got (None until written), and whether its
        # disconnection is recorded already (a stopping worker marks all at once).
        self.since = None
        self.disconnect_recorded = False
        # A frame is being handled (its reply not sent yet); the worker is stopping.
        self._busy = False
        self._draining = False

    @property
    def busy(self) -> bool:
        """Whether a frame of the charge point is being handled (its reply not sent yet)."""
        return self._busy

    def send(self, text: str) -> None:
        """Send one frame (thread-safe)."""
        with self._send_lock:
            self.ws.send(text)

    def close(self, reason: int = 1000, message: str = "") -> None:
        """Close the socket; the receive loop then ends."""
        self.closed.set()
        try:
            self.ws.close(reason=reason, message=message)
        except Exception:  # already closed
            log.debug("closing %s: already closed", self.identity)

    def drain(self) -> None:
        """The process is stopping (a deploy): take no new frame, and once the one being
        handled is answered (its batch committed), close with 1012 "service restart" so
        that the charge point reconnects at once, to another process."""
        self._draining = True
        if not self._busy:
            self.close(SERVICE_RESTART, "service restart")

    def run(self, idle_timeout: float) -> None:
        """Receive and answer frames until the socket closes or stays silent too long."""
        try:
            while not self.closed.is_set():
                raw = self.ws.receive(timeout=idle_timeout)
                if self._draining:  # not handled: the charge point sends it again
                    self.close(SERVICE_RESTART, "service restart")
                    break
                if raw is None:
                    log.info("%s: silent for %s s, closing", self.identity, idle_timeout)
                    self.close(1000, "idle timeout")
                    break
                self._busy = True
                try:
                    self._receive(raw)
                finally:
                    self._busy = False
                if self._draining:
                    self.close(SERVICE_RESTART, "service restart")
                    break
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for waiter in list(self._pending.values()):
                waiter.event.set()  # wake callers: the socket is gone

    def _receive(self, raw) -> None:
        try:
            frame = frames.parse(raw)
        except Unanswerable as exc:
            log.info("%s: frame dropped (%s)", self.identity, exc)
            self._on_frame(self)
            return
        except OcppError as exc:
            self._on_frame(self)
            count_ocpp_message(UNPARSED, exc.code)
            self.send(frames.call_error(exc.message_id, exc))
            return
        if frame.type == frames.CALL:  # the handler records the frame itself
            self.send(self._answer(frame))
            return
        self._on_frame(self)
        waiter = self._pending.get(frame.message_id)
        if waiter is None:
            log.info("%s: answer to an unknown call %s ignored", self.identity, frame.message_id)
            return
        waiter.frame = frame
        waiter.event.set()

    def _answer(self, frame: Frame) -> str:
        """The reply to a CALL. A retry (same message id, same action and payload) gets the
        CALLRESULT its first sending got, without being handled twice; the same id with
        other content is a new CALL (charge points reuse ids after a reboot). Only
        CALLRESULTs are remembered: an error, a database outage say, is never replayed,
        so that the retry is handled anew and stored."""
        content = _content(frame)
        remembered = self._recent.get(frame.message_id)
        if remembered is not None and remembered[0] == content:
            return remembered[1]
        reply = self._handle_call(self, frame)
        self._recent.pop(frame.message_id, None)
        if reply.startswith(f"[{frames.CALLRESULT},"):
            self._recent[frame.message_id] = (content, reply)
            while len(self._recent) > RECENT_REPLIES:
                self._recent.popitem(last=False)
        return reply

    def call(self, action: str, payload: dict, timeout: float) -> dict:
        """Send a CALL and wait for its CALLRESULT payload. Raises CallTimeout, CallFailed,
        or ConnectionClosed if the socket closes first."""
        if not self._call_lock.acquire(timeout=timeout):
            raise CallTimeout(f"another call to {self.identity} is still waiting")
        message_id = str(uuid.uuid4())
        waiter = _Waiter(action)
        self._pending[message_id] = waiter
        try:
            if self.closed.is_set():
                raise ConnectionClosed()
            self.send(frames.call(message_id, action, payload))
            if not waiter.event.wait(timeout):
                raise CallTimeout(f"{self.identity} did not answer {action} in {timeout} s")
            frame = waiter.frame
            if frame is None:
                raise ConnectionClosed()
            if frame.type == frames.CALLERROR:
                raise CallFailed(frame.error_code, frame.error_description)
            try:
                validate(frames.CALLRESULT, action, frame.payload)
            except OcppError as exc:  # an answer that breaks the 1.6 schema: say where
                field = exc.details.get("field")
                where = f" (in {field})" if field else ""
                raise CallFailed(f"an invalid answer, {exc.code}", exc.description + where) from exc
            return frame.payload
        finally:
            self._pending.pop(message_id, None)
            self._call_lock.release()
