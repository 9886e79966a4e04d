"""Hindsight references for the jitter benchmark: the oracle and a fixed 60 ms buffer.

The oracle (issue 3's definition): the playout-offset path ``D_i`` (play time minus send time of
packet i) with the lowest mean delay at <= 1 % late loss, whose offset changes by at most 5 ms
from one packet to the next (the most time-stretching can move it). Found by dynamic programming
over offsets on a 1 ms grid with a Lagrangian price per late packet: for a price ``lam`` the DP
minimises ``sum(D_i) + lam * late`` exactly; bisection on ``lam`` finds the cheapest path whose
late loss is within the limit. (That is the best path on the lower convex hull of the
delay/late-loss trade-off, so the oracle's mean may be up to one hull step above the exact
constrained optimum; on our traces that step is a small fraction of a millisecond.)

Late loss counts packets that arrived (``arr_ms`` not NaN) after their play time. Mean delay is
over every packet, lost ones included (the path goes on through them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

F64 = npt.NDArray[np.float64]

MAX_LATE: Final = 0.01
MAX_STEP_MS: Final = 5.0
FIXED_BUFFER_MS: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A playout path's mean mouth-to-ear delay and late loss (fraction of arrived packets)."""

    mean_ms: float
    late_fraction: float
    offsets_ms: F64


def _late_fraction(delay: F64, offsets: F64) -> float:
    arrived = ~np.isnan(delay)
    count = int(arrived.sum())
    if count == 0:
        return 0.0
    return float(np.sum(delay[arrived] > offsets[arrived] + 1e-9)) / count


def _solve(delay: F64, grid: F64, lam: float, step: int) -> F64:
    """argmin over paths on ``grid`` (moving at most ``step`` cells per packet) of
    sum(offset) + lam * late."""
    n, k = len(delay), len(grid)
    width = 2 * step + 1
    choice = np.zeros((n, k), dtype=np.int8)
    padded = np.full(k + 2 * step, np.inf)
    windows = sliding_window_view(padded, width)  # windows[j] = previous cells j-step..j+step
    rows = np.arange(k)
    value = grid + lam * (delay[0] > grid)
    for i in range(1, n):
        padded[step : step + k] = value
        pick = np.argmin(windows, axis=1)
        best = windows[rows, pick]
        choice[i] = pick - step
        d = delay[i]
        value = best + grid if math.isnan(d) else best + grid + lam * (d > grid)
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmin(value))
    for i in range(n - 1, 0, -1):
        path[i - 1] = path[i] + int(choice[i, path[i]])
    result: F64 = grid[path]
    return result


def oracle(send_ms: npt.ArrayLike, arr_ms: npt.ArrayLike, *, max_late: float = MAX_LATE,
           max_step_ms: float = MAX_STEP_MS, resolution_ms: float = 1.0) -> Reference:
    """The hindsight-optimal offset path (see the module docstring)."""
    delay = np.asarray(arr_ms, dtype=np.float64) - np.asarray(send_ms, dtype=np.float64)
    arrived = delay[~np.isnan(delay)]
    if len(arrived) == 0:
        zeros = np.zeros(len(delay))
        return Reference(mean_ms=0.0, late_fraction=0.0, offsets_ms=zeros)
    lo = math.floor(float(arrived.min()) / resolution_ms) * resolution_ms
    hi = math.ceil(float(arrived.max()) / resolution_ms) * resolution_ms
    grid = np.arange(lo, hi + resolution_ms / 2, resolution_ms)
    step = max(1, round(max_step_ms / resolution_ms))
    # Late packets are priced in ms of summed delay: at lam = n * span nothing is ever late.
    low, high = 0.0, float(len(delay)) * (hi - lo + resolution_ms)
    best = _solve(delay, grid, high, step)
    for _ in range(40):
        if high - low < 0.5:
            break
        lam = math.sqrt(max(low, 1.0) * high) if high / max(low, 1.0) > 4 else (low + high) / 2
        path = _solve(delay, grid, lam, step)
        if _late_fraction(delay, path) <= max_late:
            high, best = lam, path
        else:
            low = lam
    return Reference(mean_ms=float(best.mean()), late_fraction=_late_fraction(delay, best),
                     offsets_ms=best)


def fixed_buffer(send_ms: npt.ArrayLike, arr_ms: npt.ArrayLike,
                 buffer_ms: float = FIXED_BUFFER_MS) -> Reference:
    """A fixed jitter buffer: every packet plays ``buffer_ms`` after the first arrival's delay."""
    arr_ms = np.asarray(arr_ms, dtype=np.float64)
    delay = arr_ms - np.asarray(send_ms, dtype=np.float64)
    arrived = np.flatnonzero(~np.isnan(arr_ms))
    if len(arrived) == 0:
        return Reference(mean_ms=0.0, late_fraction=0.0, offsets_ms=np.zeros(len(delay)))
    first = arrived[np.argmin(arr_ms[arrived])]
    offsets = np.full(len(delay), float(delay[first]) + buffer_ms)
    return Reference(mean_ms=float(offsets.mean()), late_fraction=_late_fraction(delay, offsets),
                     offsets_ms=offsets)
