"""The jitter buffer's tuning, and the estimate of its target delay (sans-IO, no clock).

The buffer (:mod:`softphone.rtp.jitter`) reports every arrival's *offset* (arrival time minus
the packet's media time) to a :class:`TargetEstimator`, which answers with the target deadline
``D*`` and the baseline it is measured from:

- Arrivals are grouped into intervals of receiver time (100 ms by default), so that packets
  that bunch behind one slow packet count once and a delay spike is one event, as NetEQ's
  500 ms maxima.
- Each interval's largest offset is taken relative to a baseline: the larger of the fastest
  arrivals in the half-second before and the half-second after it. The baseline follows a step
  of the base delay either way within half a second, and moves with clock drift.
- ``D* = baseline now + the 70 % quantile of those relative maxima over the last 5 s + 1 ms``,
  bounded by a floor (at least the playout's pull block plus a margin) and a ceiling. While
  less than a second of statistics exists, the target is at least the initial delay (the
  estimate is a guess then).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["JitterConfig", "TargetEstimator"]

PULL_SMOOTHING = 16
"""Pulls over which the playout's block size is averaged for the floor."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JitterConfig:
    """Tuning of the jitter buffer. Calls and the benchmark use the same defaults."""

    initial_delay_ms: float = 20.0
    """Deadline (over the first packet's arrival) before any statistics exist: room for a
    moderately jittery path; on a clean one the excess goes in the first quiet frames."""
    interval_ms: float = 100.0
    """Arrivals are summarised per interval of receiver time (largest and smallest offset)."""
    window_intervals: int = 50
    """Intervals in the quantile window (50 x 100 ms = 5 s): how fast the target decays."""
    baseline_intervals: int = 5
    """Half-width of the baseline (fastest arrival) search around an interval."""
    quantile: float = 0.7
    """Quantile of the per-interval relative maxima that the deadline covers."""
    margin_ms: float = 1.0
    """Added to the quantile: a finite window underestimates the tail a little."""
    min_target_ms: float = 10.0
    """Floor of the target over the baseline. The receiver hands audio over in blocks (a call's
    audio pump pulls ~5 ms every tick) and its event loop and the sender's are late now and then
    by a tick or so: a target of 2 ms, which a loopback's statistics alone would give, turns the
    first scheduling hiccup into concealment, a slip and a stretch to undo it."""
    pull_margin_ms: float = 5.0
    """...and at least the playout's pull block plus this: the floor above assumes ~5 ms pulls.
    With a sound card's 10 ms block (or ``--play``/``--record``'s 10 ms pulls) a frame must be
    in one pull ahead of where it plays, and the far end's pump sends with the same coarseness;
    two softphones pulling 10 ms at a time on a loaded machine, 12 s calls: with a 10 ms floor
    1-5 slips (a 2.5 ms concealment and an acceleration to undo it) in every one of 5 calls and
    WB-PESQ 3.91-4.05, with 15 ms none in 15 calls and 4.04-4.05 (Opus alone: 4.06)."""
    max_target_ms: float = 1000.0
    """Bounds of the target over the baseline."""
    settle_ms: float = 1000.0
    """After the first second (the initial delay's guess gives way to statistics) speech is not
    accelerated for this long: the guess's excess over a clean path's target (about 10 ms) goes
    in the pauses. Accelerated at once, it cost clean loopback calls 0.06-0.13 of WB-PESQ."""
    hysteresis_ms: float = 2.0
    """Below the target by this much, speech is expanded (pitch periods come whole)."""
    speech_excess_ms: float = 8.0
    """Above the target by this much, speech is accelerated (a pitch period is 2.5-15 ms: less
    excess would often be overshot into an expand)."""
    fast_excess_ms: float = 60.0
    """Above the target by this much (a delay spike draining), accelerate speech every frame in
    fast mode; below it by this much, expand every frame."""
    stretch_spacing_ms: float = 120.0
    """Least time between two normal time-stretches of *speech* (one pitch period each, so a
    few % of the audio at most). Quiet frames are not limited (see ``quiet_min_ms``)."""
    quiet_min_ms: float = 1.0
    """Least distance from the target, over or under, worth cutting from or padding into a quiet
    frame. Quiet frames (silence, pauses) are where delay is changed first: the playout cuts or
    pads them by up to nearly a whole frame, which no listener hears, instead of time-stretching
    speech. Under the target it once padded for any shortfall, a few samples at a time as the
    fastest arrival wobbled (about 30 pads in a clean 12 s call, 3-7 since); the target's 1 ms
    margin covers such a hair. Clean Opus calls from baresip (``bench quality --calls 5 --loss
    clean``, twice each): 8 of 10 within 0.05 of Opus alone before, 10 of 10 after."""
    late_budget: float = 0.006
    """Share of packets that may be given up as late to keep spikes from slipping the timeline:
    while the recent late rate is below it, a missing packet that arrives more than
    ``skip_after_ms`` behind the cursor is dropped instead of waited for."""
    skip_after_ms: float = 40.0
    late_memory_packets: int = 1500
    """Time constant (in packets received) of the recent late rate."""
    stretch_budget: float = 0.03
    """Recent share of audio time-stretched above which only large corrections are made
    (fast accelerate, expand far below target): small ones wait until the rate falls."""
    start_backlog_ms: float = 60.0
    """Before playout starts, packets that queued up more than this beyond the target (their
    arrival offsets above the fastest arrival's) are a backlog of a receiver that was not
    reading yet, not jitter: the stale ones are dropped and playout starts at the target."""
    max_slip_ms: float = 1000.0
    """A missing packet arriving later than this behind the cursor is dropped, not slipped."""
    resync_s: float = 3.0
    """An arrival offset this far from the recent baseline restarts the buffer."""
    max_packets: int = 500
    """Packets held at most (10 s of 20 ms frames)."""


@dataclass(slots=True)
class _Interval:
    index: int
    highest: float
    lowest: float


class TargetEstimator:
    """Target deadline ``D*`` and baseline (both absolute offsets, in seconds) from arrivals."""

    def __init__(self, config: JitterConfig) -> None:
        self.config = config
        self._interval_s = config.interval_ms / 1000.0
        self._intervals: deque[_Interval] = deque(
            maxlen=config.window_intervals + config.baseline_intervals + 1
        )
        # The final relative maxima of the intervals past the baseline's reach, oldest first,
        # as many as the quantile's window holds; and the index of the last one.
        self._done: deque[float] = deque(maxlen=config.window_intervals)
        self._done_upto = -math.inf
        self.target: float | None = None
        """``D*``: the deadline offset that covers the chosen quantile; None before any arrival."""
        self.baseline: float | None = None
        """The fastest recent arrival offset."""
        self.warming_up = True
        """Less than a second of statistics: the target is a guess."""
        self._floor_s = config.min_target_ms / 1000.0
        self._pull_s: float | None = None  # the playout's pull block (smoothed)

    @property
    def intervals_held(self) -> int:
        """Intervals kept in memory (bounded by the window and the baseline's half-width)."""
        return len(self._intervals)

    def reset(self) -> None:
        """Forget every arrival (a new source, or a restart of the buffer)."""
        self._intervals.clear()
        self._done.clear()
        self._done_upto = -math.inf
        self.target = None
        self.baseline = None
        self.warming_up = True

    def pulled(self, block_s: float) -> None:
        """The playout pulled ``block_s`` of audio: the floor follows its (smoothed) block, so
        that a pump that now and then pulls two blocks after a late wake-up moves it little."""
        if block_s <= 0.0:
            return
        pull = self._pull_s
        pull = block_s if pull is None else pull + (block_s - pull) / PULL_SMOOTHING
        self._pull_s = pull
        self._floor_s = max(
            self.config.min_target_ms / 1000.0, pull + self.config.pull_margin_ms / 1000.0
        )

    def observe(self, now: float, offset: float) -> None:
        """One arrival at receiver time ``now`` with arrival offset ``offset``."""
        index = math.floor(now / self._interval_s)
        intervals = self._intervals
        if intervals and intervals[-1].index == index:
            last = intervals[-1]
            if last.lowest <= offset <= last.highest:
                return  # inside the interval's extremes: nothing the target depends on moved
            last.highest = max(last.highest, offset)
            last.lowest = min(last.lowest, offset)
        elif not intervals or index > intervals[-1].index:
            intervals.append(_Interval(index, offset, offset))
        else:  # the clock went backwards (not monotonic): fold into the newest interval
            intervals[-1].highest = max(intervals[-1].highest, offset)
            intervals[-1].lowest = min(intervals[-1].lowest, offset)
        self._update()

    def _update(self) -> None:
        """Recompute D* (every arrival that moved the newest interval's extremes). Intervals
        more than ``baseline_intervals`` old have their final value, kept in order in
        ``_done``; only the newer ones (a handful) are worked out again."""
        intervals = self._intervals
        half = self.config.baseline_intervals
        newest = intervals[-1].index
        items = list(intervals)
        done = self._done
        first_open = len(items)
        while first_open > 0 and newest - items[first_open - 1].index <= half:
            first_open -= 1
        finishing = first_open
        while finishing > 0 and items[finishing - 1].index > self._done_upto:
            finishing -= 1
        for pos in range(finishing, first_open):  # finished since the last update, in order
            done.append(self._relative(items, pos))
            self._done_upto = items[pos].index
        relative = list(done)
        relative += [self._relative(items, pos) for pos in range(first_open, len(items))]
        window = relative[-self.config.window_intervals :]
        window.sort()
        rank = min(len(window) - 1, max(0, math.ceil(self.config.quantile * len(window)) - 1))
        quantile = window[rank]
        baseline = min(items[pos].lowest for pos in range(first_open, len(items)))
        self.baseline = baseline
        spread = min(max(quantile, self._floor_s), self.config.max_target_ms / 1000.0)
        self.warming_up = len(window) < self.config.baseline_intervals * 2
        if self.warming_up:
            spread = max(spread, self.config.initial_delay_ms / 1000.0)
        self.target = baseline + spread + self.config.margin_ms / 1000.0

    def _relative(self, items: list[_Interval], pos: int) -> float:
        """Interval ``pos``'s largest offset over its baseline: the larger of the fastest
        arrivals within ``half`` intervals before it and (when enough are in) after it. Indices
        only grow along the deque, so those neighbours are among ``half`` positions either side."""
        half = self.config.baseline_intervals
        iv = items[pos]
        back = min(
            other.lowest
            for other in items[max(0, pos - half) : pos + 1]
            if other.index >= iv.index - half
        )
        ahead = [other for other in items[pos : pos + half + 1] if other.index <= iv.index + half]
        if (ahead[-1].index - iv.index) * 2 >= half:
            back = max(back, min(other.lowest for other in ahead))
        return iv.highest - back
