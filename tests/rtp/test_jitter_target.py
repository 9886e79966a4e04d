"""The target estimator's short cuts give the same target as the plain computation.

The estimator runs for every RTP packet of every call, so it skips work that cannot change its
answer (an arrival inside the current interval's extremes; neighbours searched only near each
interval). ``Reference`` below is the plain computation it must agree with, arrival for arrival.
"""

from __future__ import annotations

import math
import random

import pytest

from softphone.rtp.jitter_target import JitterConfig, TargetEstimator, _Interval


class Reference(TargetEstimator):
    """Every arrival recomputes everything, every neighbour found by scanning the whole window."""

    def __init__(self, config: JitterConfig) -> None:
        super().__init__(config)
        self._finished: dict[int, float] = {}  # interval index -> its final value

    def observe(self, now: float, offset: float) -> None:
        index = math.floor(now / self._interval_s)
        intervals = self._intervals
        if intervals and intervals[-1].index == index:
            intervals[-1].highest = max(intervals[-1].highest, offset)
            intervals[-1].lowest = min(intervals[-1].lowest, offset)
        elif not intervals or index > intervals[-1].index:
            intervals.append(_Interval(index, offset, offset))
        else:
            intervals[-1].highest = max(intervals[-1].highest, offset)
            intervals[-1].lowest = min(intervals[-1].lowest, offset)
        self._update_plain()

    def _update_plain(self) -> None:
        intervals, half, cfg = self._intervals, self.config.baseline_intervals, self.config
        newest = intervals[-1].index
        items = list(intervals)
        relative = []
        for iv in items:
            back = min(o.lowest for o in items if iv.index - half <= o.index <= iv.index)
            ahead = [o for o in items if iv.index <= o.index <= iv.index + half]
            base = back
            if (ahead[-1].index - iv.index) * 2 >= half:
                base = max(back, min(o.lowest for o in ahead))
            if newest - iv.index > half and iv.index in self._finished:
                relative.append(self._finished[iv.index])  # frozen once its neighbours are in
                continue
            if newest - iv.index > half:
                self._finished[iv.index] = iv.highest - base
            relative.append(iv.highest - base)
        window = sorted(relative[-cfg.window_intervals :])
        rank = min(len(window) - 1, max(0, math.ceil(cfg.quantile * len(window)) - 1))
        self.baseline = min(iv.lowest for iv in items if iv.index >= newest - half)
        spread = min(max(window[rank], cfg.min_target_ms / 1000), cfg.max_target_ms / 1000)
        self.warming_up = len(window) < half * 2
        if self.warming_up:
            spread = max(spread, cfg.initial_delay_ms / 1000)
        self.target = self.baseline + spread + cfg.margin_ms / 1000


@pytest.mark.parametrize("seed", range(5))
def test_the_short_cuts_give_the_plain_computations_target(seed: int) -> None:
    rng = random.Random(seed)
    fast, plain = TargetEstimator(JitterConfig()), Reference(JitterConfig())
    now, base = 0.0, 0.040
    for n in range(3000):  # a minute of 20 ms packets: jitter, spikes, a step of the base delay
        now += 0.020 + rng.uniform(-0.004, 0.004)
        if n == 1500:
            base += 0.030
        offset = base + rng.expovariate(1 / 0.003) + (0.2 if rng.random() < 0.01 else 0.0)
        fast.observe(now, offset)
        plain.observe(now, offset)
        assert (fast.target, fast.baseline, fast.warming_up) == (
            plain.target,
            plain.baseline,
            plain.warming_up,
        ), n


def _clean_target_ms(pulls: list[float]) -> float:
    """The target over the baseline after 3 s of a clean path (every packet 30 ms after its
    media time), the playout pulling blocks of the given sizes in turn."""
    estimator = TargetEstimator(JitterConfig())
    for n in range(150):
        estimator.pulled(pulls[n % len(pulls)])
        estimator.observe(0.030 + 0.020 * n, 0.030)
    assert estimator.target is not None and estimator.baseline is not None
    return (estimator.target - estimator.baseline) * 1000.0


def test_the_floor_follows_the_playouts_pull_block() -> None:
    config = JitterConfig()
    # 5 ms pulls (the engine's pump): the plain floor; 10 ms (a sound card's block): the block
    # plus the margin, because a frame must be in one pull ahead of where it plays.
    assert _clean_target_ms([0.005]) == pytest.approx(config.min_target_ms + config.margin_ms)
    ten = config.pull_margin_ms + 10.0 + config.margin_ms
    assert _clean_target_ms([0.010]) == pytest.approx(ten)
    # A late wake-up that pulls two blocks now and then moves the floor a little, not by a block.
    mostly_ten = _clean_target_ms([0.010] * 9 + [0.020])
    assert ten < mostly_ten < ten + 2.0
    # Without pulls (the estimator alone, as the replay's scheduler tests use it): the plain floor.
    plain = TargetEstimator(config)
    plain.pulled(0.0)
    for n in range(150):
        plain.observe(0.030 + 0.020 * n, 0.030)
    assert plain.target is not None and plain.baseline is not None
    assert (plain.target - plain.baseline) * 1000.0 == pytest.approx(
        config.min_target_ms + config.margin_ms
    )
