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

    def on(self, channel: str, handler: Callable[[dict], None]) -> None:
        """Call `handler` with every message on `channel`."""
        self._handlers[channel] = handler

    def publish(self, channel: str, message: dict) -> None:
        """Send `message` to every process listening on `channel`."""
        self.client.publish(channel, json.dumps(message, default=str))

    def ensure_listening(self, timeout: float = 5.0) -> None:
        """Start this process's listener once, and wait until it is subscribed."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="redis-bus", daemon=True)
                self._thread.start()
        self._listening.wait(timeout)

    def request(self, channel: str, message: dict, timeout: float) -> dict | None:
        """Publish `message` with a reply address and wait for the first reply (None when
        none comes in `timeout` seconds)."""
        self.ensure_listening()
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
        while not self._closed.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.replies_channel, *self._handlers)
                self._listening.set()
                backoff = 0.5
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._dispatch(message)
            except redis.RedisError as exc:
                self._listening.clear()
                log.warning("Redis unavailable (%s); retrying in %.1f s", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                pubsub.close()

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
