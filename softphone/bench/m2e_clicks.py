"""The arithmetic of ``softphone bench mouth-to-ear``: clicks at frame positions, found again.

Everything here counts in frames of one sound card's clock (JACK's frame time: the position of
the first frame of each process cycle, the same number for every client of the server), so no
wall clock and no machine load enters a delay:

- :func:`click_schedule`: where the clicks go, seeded, 0.5 to 1 s apart at random whole-frame
  spacings, so that a click lands at every phase of the 20 ms packet and of the card's period.
- :class:`ClickWriter` fills one output block that starts at a given frame with the clicks
  (or parts of clicks) that fall inside it, silence elsewhere.
- :class:`FrameRecorder` keeps input blocks at the frame position they came with, in one
  preallocated buffer (nothing allocated in the audio thread).
- :func:`click_delays`: the clicks found in the recording (``detect_clicks`` of
  bench/call_latency.py, by normalised cross-correlation with the written click), each paired
  with the written click before it: delay = heard frame - written frame.

Nothing here touches JACK; bench/m2e_jack.py feeds it from the JACK process callback.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from softphone.bench.call_latency import RATE, Pcm, click, detect_clicks, match_clicks

MIN_GAP_S: Final = 0.5
MAX_GAP_S: Final = 1.0


def click_schedule(
    count: int,
    *,
    start: int,
    seed: int,
    rate: int = RATE,
    min_gap_s: float = MIN_GAP_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[int]:
    """``count`` frame positions from ``start`` on, each a random whole number of frames
    (``min_gap_s`` to ``max_gap_s``) after the one before; the first comes one gap after
    ``start``. The same seed gives the same gaps."""
    if count < 0 or not 0 < min_gap_s <= max_gap_s:
        raise ValueError(f"no schedule of {count} clicks {min_gap_s}-{max_gap_s} s apart")
    rng = random.Random(seed)
    low, high = round(min_gap_s * rate), round(max_gap_s * rate)
    positions: list[int] = []
    at = start
    for _ in range(count):
        at += rng.randint(low, high)
        positions.append(at)
    return positions


class ClickWriter:
    """Clicks at ``positions`` (frames, ascending), rendered block by block."""

    def __init__(self, positions: Sequence[int], template: Pcm | None = None) -> None:
        self.positions = list(positions)
        self.template = click() if template is None else template
        self._next = 0  # first click that has not been written to its end

    @property
    def end(self) -> int:
        """The frame after the last click's last sample."""
        return self.positions[-1] + len(self.template) if self.positions else 0

    def render(self, first: int, out: Pcm) -> None:
        """Fill ``out`` (the block of frames ``first`` .. ``first + len(out)``)."""
        out.fill(0.0)
        stop = first + len(out)
        length = len(self.template)
        index = self._next
        while index < len(self.positions) and self.positions[index] < stop:
            at = self.positions[index]
            lo, hi = max(at, first), min(at + length, stop)
            if lo < hi:
                out[lo - first : hi - first] = self.template[lo - at : hi - at]
            if at + length <= stop:
                self._next = index + 1  # done: later blocks need not look at it again
            index += 1


class FrameRecorder:
    """Input blocks stored by frame position, from ``start`` for ``capacity`` frames.

    A block (or the part of it) outside that span is left out and counted in ``outside``;
    frames never stored stay zero (a missed cycle is silence, not a shift)."""

    def __init__(self, start: int, capacity: int) -> None:
        self.start = start
        self.buffer = np.zeros(capacity, dtype=np.float32)
        self.last = start  # one past the last frame stored
        self.outside = 0

    def store(self, first: int, block: Pcm) -> None:
        lo = max(first, self.start)
        hi = min(first + len(block), self.start + len(self.buffer))
        self.outside += len(block) - max(0, hi - lo)
        if lo < hi:
            self.buffer[lo - self.start : hi - self.start] = block[lo - first : hi - first]
            self.last = max(self.last, hi)

    def recorded(self) -> Pcm:
        return self.buffer[: self.last - self.start]


@dataclass(frozen=True, slots=True)
class ClickDelays:
    delays: tuple[int, ...]  # frames, one per click found
    extra: int  # detections that matched no written click


def click_delays(
    written: Sequence[int],
    recorded: Pcm,
    recorded_start: int,
    *,
    window: int,
    template: Pcm | None = None,
) -> ClickDelays:
    """Each written click paired with the first click heard ``0 .. window`` frames after it.

    ``recorded[i]`` is frame ``recorded_start + i``. ``window`` must be under the smallest gap
    between clicks, or one click could be paired with the next one's echo."""
    heard = [
        float(recorded_start + i)
        for i in detect_clicks(recorded, click() if template is None else template)
    ]
    delays, extra = match_clicks([float(w) for w in written], heard, float(window))
    return ClickDelays(tuple(round(d) for d in delays), extra)
