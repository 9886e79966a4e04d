"""The TUI's garbage-collector policy: full collections only when idle, settings restored."""

from __future__ import annotations

import gc

from softphone.tui.gc_policy import FULL_THRESHOLD, QuietCollector


def test_quiet_collector_defers_full_collections_and_restores() -> None:
    before = gc.get_threshold()
    collector = QuietCollector()
    collector.start()
    try:
        assert gc.get_threshold() == (before[0], before[1], FULL_THRESHOLD)
        assert gc.get_freeze_count() > 0
        assert collector.collect_if(lambda: False) is False  # a call is up: never
        full_runs = gc.get_stats()[2]["collections"]
        assert collector.collect_if(lambda: True) is True
        assert gc.get_stats()[2]["collections"] == full_runs + 1
    finally:
        collector.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert collector.collect_if(lambda: True) is False  # stopped: does nothing
