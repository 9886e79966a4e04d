"""Hindsight references for the jitter benchmark: the oracle and a fixed 60 ms buffer.

The oracle: the playout-offset path ``D_i`` (play time minus send time of
packet i) with the lowest mean delay at <= 1 % late loss, whose offset changes by at most 5 ms
from one packet to the next (the most time-stretching can move it). Found by dynamic programming
over offsets on a 1 ms grid with a Lagrangian price per late packet: for a price ``lam`` the DP
minimises ``sum(D_i) + lam * late`` exactly; bisection on ``lam`` finds the cheapest path whose
late loss is within the limit. (That is the best path on the lower convex hull of the
delay/late-loss trade-off, so the oracle's mean may be up to one hull step above the exact
constrained optimum; on our traces that step is a small fraction of a millisecond.)

Late loss counts packets that arrived (``arr_ms`` not NaN) after their play time. Mean delay is
over every packet, lost ones included (the path goes on through them).

That oracle may change its offset by 5 ms on every packet, i.e. time-stretch a quarter of the
audio, while our playout is held to <= 5 % of the audio time-stretched. :func:`budget_oracle` is the
same search that also respects that budget: the total |offset change| over the trace is at most
5 % of its duration (stretching is not free: each ms of it is a little distortion). A second
Lagrangian price ``mu`` per ms of offset change is found by bisection around the first.
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
MAX_STRETCH: Final = 0.05
"""Share of the trace's duration that the budget oracle may spend on offset changes."""
PACKET_MS: Final = 20.0
FIXED_BUFFER_MS: Final = 60.0
STRETCH_PRICE: Final = 50.0
"""The stretch-paying oracle's price of 1 ms of offset change, in ms of summed delay: a change
is worth it only if it saves 1 ms on 50 packets (a second of 20 ms frames)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A playout path's mean mouth-to-ear delay and late loss (fraction of arrived packets)."""

    mean_ms: float
    late_fraction: float
    offsets_ms: F64

    @property
    def stretched_ms(self) -> float:
        """Audio time-stretched along the path: the sum of |offset change| between packets."""
        return float(np.abs(np.diff(self.offsets_ms)).sum())


def _late_fraction(delay: F64, offsets: F64) -> float:
    arrived = ~np.isnan(delay)
    count = int(arrived.sum())
    if count == 0:
        return 0.0
    return float(np.sum(delay[arrived] > offsets[arrived] + 1e-9)) / count


def _solve(delay: F64, grid: F64, lam: float, step: int, mu: float = 0.0) -> F64:
    """argmin over paths on ``grid`` (moving at most ``step`` cells per packet) of
    sum(offset) + lam * late + mu * sum(|offset change|)."""
    n, k = len(delay), len(grid)
    width = 2 * step + 1
    cell_ms = float(grid[1] - grid[0]) if k > 1 else 1.0
    move_cost = mu * cell_ms * np.abs(np.arange(-step, step + 1, dtype=np.float64))
    choice = np.zeros((n, k), dtype=np.int8)
    padded = np.full(k + 2 * step, np.inf)
    windows = sliding_window_view(padded, width)  # windows[j] = previous cells j-step..j+step
    rows = np.arange(k)
    value = grid + lam * (delay[0] > grid)
    for i in range(1, n):
        padded[step : step + k] = value
        costs = windows + move_cost if mu > 0.0 else windows
        pick = np.argmin(costs, axis=1)
        best = costs[rows, pick]
        choice[i] = pick - step
        d = delay[i]
        value = best + grid if math.isnan(d) else best + grid + lam * (d > grid)
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmin(value))
    for i in range(n - 1, 0, -1):
        path[i - 1] = path[i] + int(choice[i, path[i]])
    result: F64 = grid[path]
    return result


def _grid(delay: F64, resolution_ms: float) -> F64 | None:
    arrived = delay[~np.isnan(delay)]
    if len(arrived) == 0:
        return None
    lo = math.floor(float(arrived.min()) / resolution_ms) * resolution_ms
    hi = math.ceil(float(arrived.max()) / resolution_ms) * resolution_ms
    grid: F64 = np.arange(lo, hi + resolution_ms / 2, resolution_ms)
    return grid


def _within_late(
    delay: F64, grid: F64, step: int, max_late: float, mu: float, lam_hint: float | None = None
) -> tuple[F64, float]:
    """The cheapest path (for price ``mu`` per ms of offset change) whose late loss is within
    ``max_late``: bisection on the price per late packet (lower hull of delay vs late loss).
    Returns the path and the price found; ``lam_hint`` narrows the first bracket."""
    # Late packets are priced in ms of summed delay: at lam = n * span nothing is ever late.
    ceiling = float(len(delay)) * float(grid[-1] - grid[0] + 1.0)
    low, high = 0.0, ceiling
    if lam_hint is not None and lam_hint > 0.0:
        low, high = lam_hint / 4.0, min(ceiling, lam_hint * 4.0)
        if _late_fraction(delay, _solve(delay, grid, low, step, mu)) <= max_late:
            low = 0.0
    best = _solve(delay, grid, high, step, mu)
    if _late_fraction(delay, best) > max_late:
        low, high = high, ceiling
        best = _solve(delay, grid, high, step, mu)
    for _ in range(40):
        if high - low < 0.5 or (low > 0.0 and high / low < 1.02):
            break
        lam = math.sqrt(max(low, 1.0) * high) if high / max(low, 1.0) > 4 else (low + high) / 2
        path = _solve(delay, grid, lam, step, mu)
        if _late_fraction(delay, path) <= max_late:
            high, best = lam, path
        else:
            low = lam
    return best, high


def _reference(delay: F64, path: F64) -> Reference:
    return Reference(
        mean_ms=float(path.mean()), late_fraction=_late_fraction(delay, path), offsets_ms=path
    )


def _no_arrivals(delay: F64) -> Reference:
    return Reference(mean_ms=0.0, late_fraction=0.0, offsets_ms=np.zeros(len(delay)))


def oracle(
    send_ms: npt.ArrayLike,
    arr_ms: npt.ArrayLike,
    *,
    max_late: float = MAX_LATE,
    max_step_ms: float = MAX_STEP_MS,
    resolution_ms: float = 1.0,
) -> Reference:
    """The hindsight-optimal offset path (see the module docstring)."""
    delay = np.asarray(arr_ms, dtype=np.float64) - np.asarray(send_ms, dtype=np.float64)
    grid = _grid(delay, resolution_ms)
    if grid is None:
        return _no_arrivals(delay)
    step = max(1, round(max_step_ms / resolution_ms))
    path, _ = _within_late(delay, grid, step, max_late, 0.0)
    return _reference(delay, path)


def budget_oracle(
    send_ms: npt.ArrayLike,
    arr_ms: npt.ArrayLike,
    *,
    max_late: float = MAX_LATE,
    max_step_ms: float = MAX_STEP_MS,
    max_stretch: float = MAX_STRETCH,
    packet_ms: float = PACKET_MS,
    resolution_ms: float = 1.0,
) -> Reference:
    """:func:`oracle` that also keeps the total |offset change| within ``max_stretch`` of the
    trace's duration (the time-stretch budget our playout is held to)."""
    delay = np.asarray(arr_ms, dtype=np.float64) - np.asarray(send_ms, dtype=np.float64)
    grid = _grid(delay, resolution_ms)
    if grid is None:
        return _no_arrivals(delay)
    step = max(1, round(max_step_ms / resolution_ms))
    budget_ms = max_stretch * len(delay) * packet_ms

    def stretch_of(path: F64) -> float:
        return float(np.abs(np.diff(path)).sum())

    path, lam = _within_late(delay, grid, step, max_late, 0.0)
    if stretch_of(path) <= budget_ms:
        return _reference(delay, path)
    # Price per ms of offset change: find one that keeps the stretch within the budget...
    low, high = 0.0, 1.0
    best, lam_best = _within_late(delay, grid, step, max_late, high, lam)
    while stretch_of(best) > budget_ms and high < 1e6:
        low, high = high, high * 4.0
        best, lam_best = _within_late(delay, grid, step, max_late, high, lam_best)
    # ...then the lowest such price (more stretching buys less delay), to 5 %.
    lam = lam_best
    for _ in range(30):
        if high - low < 1e-3 or (low > 0.0 and high / low < 1.05):
            break
        mu = (low + high) / 2 if low == 0.0 or high / low < 4 else math.sqrt(low * high)
        path, lam = _within_late(delay, grid, step, max_late, mu, lam)
        if stretch_of(path) <= budget_ms:
            high, best = mu, path
        else:
            low = mu
    return _reference(delay, best)


def stretch_oracle(
    send_ms: npt.ArrayLike,
    arr_ms: npt.ArrayLike,
    *,
    price: float = STRETCH_PRICE,
    max_late: float = MAX_LATE,
    max_step_ms: float = MAX_STEP_MS,
    resolution_ms: float = 1.0,
) -> Reference:
    """The stretch-paying oracle: the offsets ``P[i]`` (1 ms grid) that minimise
    ``sum(P[i]) + price * sum(|P[i] - P[i-1]|)`` with ``|P[i] - P[i-1]| <= max_step_ms`` and late
    loss within ``max_late``: every change of delay costs, as it does to a listener. The same
    Lagrangian DP as :func:`oracle`, with the change priced instead of budgeted."""
    delay = np.asarray(arr_ms, dtype=np.float64) - np.asarray(send_ms, dtype=np.float64)
    grid = _grid(delay, resolution_ms)
    if grid is None:
        return _no_arrivals(delay)
    step = max(1, round(max_step_ms / resolution_ms))
    path, _ = _within_late(delay, grid, step, max_late, price)
    return _reference(delay, path)


def fixed_buffer(
    send_ms: npt.ArrayLike, arr_ms: npt.ArrayLike, buffer_ms: float = FIXED_BUFFER_MS
) -> Reference:
    """A fixed jitter buffer: every packet plays ``buffer_ms`` after the first arrival's delay."""
    arr_ms = np.asarray(arr_ms, dtype=np.float64)
    delay = arr_ms - np.asarray(send_ms, dtype=np.float64)
    arrived = np.flatnonzero(~np.isnan(arr_ms))
    if len(arrived) == 0:
        return Reference(mean_ms=0.0, late_fraction=0.0, offsets_ms=np.zeros(len(delay)))
    first = arrived[np.argmin(arr_ms[arrived])]
    offsets = np.full(len(delay), float(delay[first]) + buffer_ms)
    return Reference(
        mean_ms=float(offsets.mean()),
        late_fraction=_late_fraction(delay, offsets),
        offsets_ms=offsets,
    )
