"""The garbage collector settings of a worker (dashboard/gc_tuning.py)."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import REGISTRY

from dashboard import gc_tuning


def test_thresholds_are_read_from_the_setting_or_refused_clearly():
    assert gc_tuning.thresholds(None) == (50_000, 20, 20)
    assert gc_tuning.thresholds("") == (50_000, 20, 20)
    assert gc_tuning.thresholds("2000,10,10") == (2000, 10, 10)
    for wrong in ("many", "1,2", "1,2,3,4", "0,10,10", "-5,10,10", "1.5,2,3"):
        with pytest.raises(RuntimeError, match="GC_THRESHOLDS must be three whole numbers"):
            gc_tuning.thresholds(wrong)


@pytest.fixture
def restored_gc():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()
    if gc_tuning._time in gc.callbacks:
        gc.callbacks.remove(gc_tuning._time)


def test_tune_sets_the_thresholds_freezes_and_times_collections(restored_gc):
    def count(generation: str) -> tuple[float, float]:
        labels = {"generation": generation}
        return (
            REGISTRY.get_sample_value("plugboard_gc_pause_seconds_sum", labels) or 0.0,
            REGISTRY.get_sample_value("plugboard_gc_pause_seconds_count", labels) or 0.0,
        )

    gc_tuning.record_pauses()  # none left over from elsewhere
    before_sum, before_count = count("2")
    assert gc_tuning.tune("3000,15,25") == (3000, 15, 25)
    assert gc.get_threshold() == (3000, 15, 25)
    assert gc.get_freeze_count() > 0  # what was alive is frozen
    gc.collect(0)
    assert gc_tuning.record_pauses() >= 2  # the full collection of tune(), and this one
    after_sum, after_count = count("2")
    assert after_count == before_count + 1 and after_sum > before_sum
    assert gc_tuning.record_pauses() == 0  # each pause is recorded once
