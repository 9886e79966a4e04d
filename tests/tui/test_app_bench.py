"""The TUI responsiveness bench runs end to end (its figures depend on the machine: not asserted)."""

from __future__ import annotations

from softphone.bench.tui import run_tui_bench


def test_tui_bench_measures_presses_while_video_plays() -> None:
    report = run_tui_bench(1.0, interval_s=0.1)
    assert report["presses"] >= 3
    assert report["p50_ms"] is not None and 0 < report["p50_ms"] <= report["max_ms"]
    assert report["video_frames_shown"] > 0
