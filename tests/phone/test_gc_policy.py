"""The garbage-collector policy of the TUI and ``listen``: full collections only when idle (or
when overdue), settings restored."""

from __future__ import annotations

import gc

from softphone.phone.gc_policy import BUSY_COLLECT_S, FULL_THRESHOLD, QuietCollector


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


def test_quiet_collector_defers_full_collections_and_restores() -> None:
    before = gc.get_threshold()
    collector = QuietCollector()
    collector.start(now=100.0)
    try:
        assert gc.get_threshold() == (before[0], before[1], FULL_THRESHOLD)
        assert gc.get_freeze_count() > 0
        assert collector.collect_if(lambda: False, now=160.0) is False  # a call is up: not now
        full_runs = full_collections()
        assert collector.collect_if(lambda: True, now=161.0) is True
        assert full_collections() == full_runs + 1
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert collector.collect_if(lambda: True) is False  # stopped: does nothing


def test_a_phone_that_is_never_idle_still_collects_when_overdue() -> None:
    collector = QuietCollector()
    collector.start(now=0.0)
    try:
        assert collector.collect_if(lambda: False, now=BUSY_COLLECT_S - 1) is False
        full_runs = full_collections()
        assert collector.collect_if(lambda: False, now=BUSY_COLLECT_S) is True
        assert full_collections() == full_runs + 1
        # The clock restarts at that collection: busy again, not due for another interval.
        assert collector.collect_if(lambda: False, now=BUSY_COLLECT_S + 60) is False
        assert collector.collect_if(lambda: False, now=2 * BUSY_COLLECT_S) is True
    finally:
        collector.stop()
