"""The fleet benchmark's capacity: the highest step held (>= 98 % acknowledged, p99 under
1 s), and whether that was the top step offered, when the server's limit lies above it and
a ratio of two such figures measures nothing."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fleet  # noqa: E402


def _step(rate, acked, p99_ms, deploy=False):
    return {"rate": rate, "acked_per_s": acked, "p99_ms": p99_ms, "deploy": deploy}


def test_the_capacity_is_the_highest_step_held_and_says_whether_it_was_the_top():
    steady = _step(None, 444.0, 90.0)
    held_all = {"steps": [steady, _step(1000.0, 999.0, 50.0), _step(2000.0, 1990.0, 300.0)]}
    assert fleet.capacity(held_all) == (1990.0, True)
    slow_top = {"steps": [_step(1000.0, 999.0, 50.0), _step(2000.0, 1999.0, 1500.0)]}
    assert fleet.capacity(slow_top) == (999.0, False)
    short_top = {"steps": [_step(1000.0, 999.0, 50.0), _step(2000.0, 1700.0, 200.0)]}
    assert fleet.capacity(short_top) == (999.0, False)
    # the deploy step (offered at a lower rate after the top one) is not a capacity step
    deploy = {"steps": [_step(2000.0, 1990.0, 80.0), _step(1000.0, 900.0, 1900.0, deploy=True)]}
    assert fleet.capacity(deploy) == (1990.0, True)
    assert fleet.capacity({"steps": [steady]}) == (0.0, False)
    assert fleet.capacity_text("bare", 2499.4, True) == (
        "bare 2,499/s (the top step: its limit is higher)"
    )
