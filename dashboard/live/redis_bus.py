"""Redis between worker processes and hosts: the events of the live channel, and the calls
to a charge point that is connected to another process.

One listener thread per process subscribes to three channels and reconnects with back-off
when Redis goes away: events (handed to this process's listeners), commands (run here if
this process holds that charge point's socket), and this process's own replies. Under
gunicorn's gevent workers the thread is a greenlet."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

EVENTS = "plugboard:events"
COMMANDS = "plugboard:commands"
KICKS = "plugboard:kicks"
# While Redis is away, say so in the log once per this many seconds, not once per message.
OUTAGE_LOG_INTERVAL = 30.0
# The longest wait between two attempts to reach Redis again.
MAX_BACKOFF = 5.0


class BusUnavailable(Exception):
    """Redis cannot be reached: nothing can be sent to another process now."""


class OutageLog:
    """A warning logged at most once per OUTAGE_LOG_INTERVAL, with the number of times it
    was held back: an outage fills the log with one line per interval, not one per
    message."""

    def __init__(self, interval: float = OUTAGE_LOG_INTERVAL):
        self.interval = interval
        self._last = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def warn(self, message: str, *args) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more since the last such line)" if held else ""
        log.warning(message + suffix, *args)


outage_log = OutageLog()


class RedisBus:
    """The Redis transport of one process."""

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.process = uuid.uuid4().hex
        self.replies_channel = f"plugboard:replies:{self.process}"
        self._handlers: dict[str, Callable[[dict], None]] = {}
        self._waiting: dict[str, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._reconnect_handlers: list[Callable[[], None]] = []

    def on(self, channel: str, handler: Callable[[dict], None]) -> None:
        """Call `handler` with every message on `channel`."""
        self._handlers[channel] = handler

    def on_reconnect(self, handler: Callable[[], None]) -> None:
        """Call `handler` each time the listener is subscribed again after losing Redis:
        whatever was published meanwhile was missed."""
        self._reconnect_handlers.append(handler)

    def publish(self, channel: str, message: dict) -> None:
        """Send `message` to every process listening on `channel`; BusUnavailable when
        Redis cannot be reached."""
        try:
            self.client.publish(channel, json.dumps(message, default=str))
        except redis.RedisError as exc:
            raise BusUnavailable(str(exc)) from exc

    @property
    def connected(self) -> bool:
        """Whether the listener is subscribed now."""
        return self._listening.is_set()

    def ensure_listening(self, timeout: float = 5.0) -> bool:
        """Start this process's listener once, and wait up to `timeout` seconds until it is
        subscribed; returns whether it is."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="redis-bus", daemon=True)
                self._thread.start()
        return self._listening.wait(timeout)

    def request(self, channel: str, message: dict, timeout: float) -> dict | None:
        """Publish `message` with a reply address and wait for the first reply (None when
        none comes in `timeout` seconds). BusUnavailable when Redis cannot be reached."""
        if not self.ensure_listening(timeout=min(timeout, 2.0)):
            raise BusUnavailable("not subscribed to Redis")
        request_id = uuid.uuid4().hex
        done, answer = threading.Event(), []
        self._waiting[request_id] = (done, answer)
        try:
            self.publish(
                channel, {**message, "request_id": request_id, "reply_to": self.replies_channel}
            )
            done.wait(timeout)
            return answer[0] if answer else None
        finally:
            self._waiting.pop(request_id, None)

    def reply(self, request: dict, answer: dict) -> None:
        """Answer a request received through `on(...)`."""
        self.publish(request["reply_to"], {**answer, "request_id": request["request_id"]})

    def _on_reply(self, message: dict) -> None:
        waiting = self._waiting.get(message.get("request_id"))
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()

    def close(self) -> None:
        """Stop handing messages to this process's handlers; the listener thread ends
        within its poll interval."""
        self._closed.set()
        self._handlers = {}

    def _listen(self) -> None:
        backoff = 0.5
        lost = False
        while not self._closed.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.replies_channel, *self._handlers)
                self._listening.set()
                backoff = 0.5
                if lost:
                    lost = False
                    log.warning("Redis reachable again: resubscribed")
                    self._reconnected()
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._dispatch(message)
            except (redis.RedisError, OSError) as exc:
                self._listening.clear()
                lost = True
                outage_log.warn("Redis unavailable (%s); retrying every %.1f s", exc, MAX_BACKOFF)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                pubsub.close()

    def _reconnected(self) -> None:
        for handler in list(self._reconnect_handlers):
            try:
                handler()
            except Exception:
                log.exception("a handler of Redis's return failed")

    def _dispatch(self, message: dict) -> None:
        channel = message["channel"].decode()
        try:
            payload = json.loads(message["data"])
            if channel == self.replies_channel:
                self._on_reply(payload)
            elif channel in self._handlers:
                self._handlers[channel](payload)
        except Exception:  # one bad message must not stop the listener
            log.exception("message on %s could not be handled", channel)
