"""Work that many connections of a process ask for, done together by one thread: the ingest
batcher (what charge points send, written in one transaction) and the admission reader
(the charge points of the handshakes, read in one query).

Each caller queues an item and waits for it; the thread takes everything queued while it
was busy with the previous lot (at most `limit`) and handles it at once. A lone item is
handled as soon as it comes: nothing waits to fill a lot."""

from __future__ import annotations

import threading

from flask import Flask


class Gatherer:
    """One thread per process handling queued items in lots. Subclasses set `limit`,
    `timeout` and `thread_name`, and write `_handle(items)`, which sets each item's
    outcome (`error`, or a result of its own); every item has `done` (an Event) and
    `error`."""

    limit: int
    timeout: float
    thread_name: str

    def __init__(self, app: Flask):
        self.app = app
        self._queue: list = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def _submit(self, item, late: str):
        """Queue `item` and wait until it is handled: returns it, or raises its error, or
        TimeoutError(`late`) after `timeout` seconds."""
        with self._lock:
            self._queue.append(item)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=self.thread_name, daemon=True
                )
                self._thread.start()
        self._wakeup.set()
        if not item.done.wait(self.timeout):
            raise TimeoutError(late)
        if item.error is not None:
            raise item.error
        return item

    @property
    def backlog(self) -> int:
        """How many items wait to be handled."""
        return len(self._queue)

    def _run(self) -> None:
        with self.app.app_context():
            while True:
                self._wakeup.wait()
                with self._lock:
                    items = self._queue[: self.limit]
                    del self._queue[: self.limit]
                    if not self._queue:
                        self._wakeup.clear()
                if items:
                    self._handle(items)

    def _handle(self, items: list) -> None:
        raise NotImplementedError
