"""Python's garbage collector, tuned for a worker that holds thousands of sockets.

With CPython's default thresholds (700, 10, 10) a gevent worker at 5,000 charge points and
1,500 messages a second ran a full collection every 3 to 10 seconds, each taking 0.6 to
1.2 s in which no socket was served (the p99 of every acknowledgement): every object that
lived more than a few milliseconds (a message waiting for its batch, the batch's ORM
objects) was promoted to the oldest generation, and a full collection is due once those
promotions add up to a quarter of everything long-lived; scanning 5,000 connections'
objects then takes a second.

`tune()`, called in each gunicorn worker once the application is loaded
(`gunicorn.conf.py`):
- raises the youngest generation's threshold (GC_THRESHOLDS, default 50000,20,20), so
  that what a message allocates is freed (or, in a cycle, collected) while young instead
  of promoted;
- freezes what is alive then (the application, its modules): full collections skip it;
- times every collection, for the `plugboard_gc_pause_seconds` histogram (by generation).

The timing callback runs inside the collector, where taking a lock (a metric's, or
gevent's) could deadlock: it only appends to a deque, which `record_pauses()` (the
sweeper, every few seconds) moves into the histogram.
"""

from __future__ import annotations

import gc
import time
from collections import deque

DEFAULT_THRESHOLDS = (50_000, 20, 20)

_pauses: deque[tuple[int, float]] = deque(maxlen=10_000)
_started = [0.0]


def thresholds(setting: str | None) -> tuple[int, int, int]:
    """GC_THRESHOLDS ("young,middle,old", whole numbers above 0) as a tuple; the default
    without a setting."""
    if not setting:
        return DEFAULT_THRESHOLDS
    try:
        values = tuple(int(part) for part in setting.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise RuntimeError(
            f"GC_THRESHOLDS must be three whole numbers above 0, such as 50000,20,20; "
            f"got {setting!r}"
        )
    return values


def _time(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pauses.append((info["generation"], time.perf_counter() - _started[0]))


def tune(setting: str | None = None) -> tuple[int, int, int]:
    """Set this process's thresholds, freeze what is alive, and time collections."""
    values = thresholds(setting)
    if _time not in gc.callbacks:
        gc.callbacks.append(_time)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*values)
    return values


def record_pauses() -> int:
    """Move the collections timed so far into the metrics; returns how many."""
    from dashboard.metrics import GC_PAUSE_SECONDS

    count = 0
    while _pauses:
        generation, seconds = _pauses.popleft()
        GC_PAUSE_SECONDS.labels(str(generation)).observe(seconds)
        count += 1
    return count
