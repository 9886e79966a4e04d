"""The arithmetic of the video benchmarks (``softphone bench video``): pure functions of logged
times, so that unit tests walk them without a call, a clock or a peer.

Times are seconds on one monotonic clock (CLOCK_MONOTONIC is the same for every process of the
machine, whatever its network namespace). A *send log* is ``(counter, t)`` for each picture our
test pattern made (media/video_source.py: the counter is written in the picture, 16 bits); a
*draw log* is ``(counter, t)`` for each picture a receiver decoded and made the one it would
draw, the counter read back from the picture.

- :func:`pair_delays`: glass-to-glass delay of each drawn picture (draw time minus the send time
  of the same counter). The counter wraps at 2^16 (36 minutes at 30 fps): a drawn counter is
  paired with the latest send of that counter at or before the draw.
- :func:`sampled_delay`: the same delay for a peer we cannot log per picture (baresip), from one
  sample: a snapshot command sent at ``c0`` and answered at ``c1`` takes the *next* picture the
  peer decodes, whose counter is ``m``. That picture was decoded after the command took effect,
  so its delay is at least ``c0 - sent[m]``; the picture before it was decoded before, so (if it
  was decoded at all) its delay was below ``c1 - sent[m-1]``. With a steady delay the truth lies
  in ``[low, high]``; over random command times the mean of ``c0 - sent[m]`` is the delay minus
  half a frame interval (the command falls uniformly within an interval), hence the estimate
  ``low + interval / 2``.
- :func:`frozen_share`: the share of a window during which the drawn picture was older than a
  threshold: each gap between new pictures longer than the threshold counts ``gap - threshold``
  (the first ``threshold`` of any gap is a normal frame interval and jitter).
- :func:`wait_share`: the same share estimated from random sample instants: within a gap of
  length ``g`` the wait from a uniform instant to the next picture is uniform on ``[0, g]``, as is
  the age of the picture at that instant, so the share of instants whose forward wait exceeds the
  threshold estimates :func:`frozen_share` without bias. That is how the share is read for a peer
  whose every picture we cannot see (a snapshot command takes the *next* picture).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "COUNTER_MOD",
    "DelaySample",
    "forward_waits",
    "frozen_share",
    "median",
    "pair_delays",
    "psnr",
    "sampled_delay",
    "wait_share",
]

COUNTER_MOD = 1 << 16


def median(values: Iterable[float]) -> float:
    """The median (the mean of the middle two for an even count); NaN for none."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _send_index(sent: Sequence[tuple[int, float]]) -> dict[int, list[float]]:
    """counter -> its send times, ascending (one per wrap of the counter)."""
    index: dict[int, list[float]] = {}
    for counter, t in sorted(sent, key=lambda s: s[1]):
        index.setdefault(counter % COUNTER_MOD, []).append(t)
    return index


def _sent_at(index: dict[int, list[float]], counter: int, before: float) -> float | None:
    """The latest send of ``counter`` at or before ``before``."""
    times = index.get(counter % COUNTER_MOD)
    if not times:
        return None
    i = bisect.bisect_right(times, before)
    return times[i - 1] if i else None


def pair_delays(
    sent: Sequence[tuple[int, float]], drawn: Sequence[tuple[int, float]]
) -> tuple[list[float], int]:
    """Delays (s) of the drawn pictures whose counter was sent before the draw, and how many
    drawn pictures had no such send (a misread counter: a broken picture)."""
    index = _send_index(sent)
    delays: list[float] = []
    unmatched = 0
    for counter, t in drawn:
        at = _sent_at(index, counter, t)
        if at is None:
            unmatched += 1
        else:
            delays.append(t - at)
    return delays, unmatched


@dataclass(frozen=True, slots=True)
class DelaySample:
    """One snapshot's bounds on the delay (s) and the estimate (see the module docstring)."""

    low: float
    high: float | None  # None: the picture before was never sent (or wrapped away)
    estimate: float


def sampled_delay(
    sent: Sequence[tuple[int, float]],
    command_sent: float,
    command_answered: float,
    counter: int,
    seen_at: float,
) -> DelaySample | None:
    """The delay sample of one snapshot whose picture carries ``counter`` and was reported at
    ``seen_at`` (None when that counter was never sent before then)."""
    if command_answered < command_sent:
        raise ValueError("the command was answered before it was sent")
    index = _send_index(sent)
    at = _sent_at(index, counter, seen_at)
    if at is None:
        return None
    before = _sent_at(index, counter - 1, at)
    low = command_sent - at
    high = command_answered - before if before is not None else None
    interval = at - before if before is not None else 0.0
    return DelaySample(low=low, high=high, estimate=low + interval / 2)


def frozen_share(draws: Sequence[float], start: float, end: float, threshold: float) -> float:
    """Share of ``[start, end]`` spent on a picture older than ``threshold`` (module docstring).
    The picture drawn last before ``start`` counts for the window's first gap; without one the
    window starts as if a picture had just been drawn."""
    if end <= start:
        raise ValueError("the window must have a positive length")
    if threshold < 0:
        raise ValueError("the threshold must not be negative")
    inside = sorted(t for t in draws if start < t < end)
    earlier = [t for t in draws if t <= start]
    edges = [max(earlier) if earlier else start, *inside, end]
    frozen = 0.0
    for a, b in itertools.pairwise(edges):
        # The picture drawn at a is stale from a + threshold until the next one (b).
        frozen += max(0.0, b - max(a + threshold, start))
    return frozen / (end - start)


def wait_share(waits: Sequence[float], threshold: float) -> float:
    """Share of sample instants whose wait for the next picture exceeded ``threshold``."""
    if not waits:
        return math.nan
    return sum(w > threshold for w in waits) / len(waits)


def forward_waits(draws: Sequence[float], instants: Sequence[float]) -> list[float]:
    """For each instant, the wait to the next draw (instants with no later draw are left out)."""
    ordered = sorted(draws)
    waits: list[float] = []
    for c in instants:
        i = bisect.bisect_left(ordered, c)
        if i < len(ordered):
            waits.append(ordered[i] - c)
    return waits


def psnr(a: Sequence[Sequence[int]] | object, b: Sequence[Sequence[int]] | object) -> float:
    """Peak signal-to-noise ratio (dB) of two equal-shape 8-bit planes (numpy arrays)."""
    import numpy as np

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"planes of different shapes: {x.shape} and {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
