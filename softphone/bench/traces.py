"""Seeded network traces for ``softphone bench jitter`` (20 ms packets).

A trace is two float64 arrays per profile, one entry per packet in send order: ``send_ms``
(packet i is sent at 20·i ms of the sender's clock, which is also its media time) and ``arr_ms``
(arrival on the receiver's clock, NaN when lost; arrivals may be out of order). TRACES.npz stores
them as ``NAME/send_ms`` and ``NAME/arr_ms``.

Impairment models: gamma or Pareto jitter, FIFO queueing (a packet cannot overtake the one
before it, so arrivals bunch), Gilbert-Elliott bursty loss, reordering, delay spikes that drain
at slope -1, and clock drift in ppm.

Profiles the jitter buffer's defaults were tuned on (``TUNING_PROFILES``) and profiles of other
kinds that they were *not* tuned on (``UNSEEN_PROFILES``): periodic congestion, steps of the base delay (route changes,
which reorder packets on a step down), and alternating bursty and calm periods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

F64: TypeAlias = npt.NDArray[np.float64]
Trace: TypeAlias = tuple[F64, F64]

PACKET_MS: Final = 20.0


def _send(seconds: float) -> F64:
    return np.arange(round(seconds * 1000.0 / PACKET_MS), dtype=np.float64) * PACKET_MS


def _pareto(rng: np.random.Generator, n: int, xm: float, alpha: float, cap: float) -> F64:
    """Pareto(xm, alpha) samples capped at ``cap`` (inverse CDF)."""
    return np.minimum(xm * (1.0 - rng.random(n)) ** (-1.0 / alpha), cap)


def _fifo(arrival: F64) -> F64:
    """FIFO queueing: no packet arrives before the one sent before it."""
    return np.maximum.accumulate(arrival)


def _random_loss(rng: np.random.Generator, arrival: F64, rate: float) -> F64:
    out = arrival.copy()
    out[rng.random(len(out)) < rate] = np.nan
    return out


def _gilbert_elliott(
    rng: np.random.Generator, n: int, p: float, r: float, bad_loss: float, good_loss: float = 0.0
) -> npt.NDArray[np.bool_]:
    """Per-packet loss flags: good->bad with probability p, bad->good with r."""
    lost = np.zeros(n, dtype=bool)
    bad = False
    draws = rng.random((n, 2))
    for i in range(n):
        bad = draws[i, 0] >= r if bad else draws[i, 0] < p
        lost[i] = draws[i, 1] < (bad_loss if bad else good_loss)
    return lost


def clean(rng: np.random.Generator) -> Trace:
    """30 ms + gamma(k=2, θ=1 ms), no loss, 60 s."""
    send = _send(60)
    return send, send + 30.0 + rng.gamma(2.0, 1.0, len(send))


def wifi_jitter(rng: np.random.Generator) -> Trace:
    """15 ms + gamma(1.5, 4 ms); 5 % of packets + Pareto(xm 5 ms, alpha 1.5, ≤ 250 ms); FIFO;
    0.5 % random loss; 120 s."""
    send = _send(120)
    n = len(send)
    delay = 15.0 + rng.gamma(1.5, 4.0, n)
    hit = rng.random(n) < 0.05
    delay[hit] += _pareto(rng, int(hit.sum()), 5.0, 1.5, 250.0)
    return send, _random_loss(rng, _fifo(send + delay), 0.005)


def mobile_bursty(rng: np.random.Generator) -> Trace:
    """60 ms + gamma(2, 6 ms); Gilbert-Elliott loss p=0.008 r=0.25 (90 % loss when bad);
    1 % of packets reordered by 20-60 ms; 120 s."""
    send = _send(120)
    n = len(send)
    delay = 60.0 + rng.gamma(2.0, 6.0, n)
    moved = rng.random(n) < 0.01
    delay[moved] += rng.uniform(20.0, 60.0, int(moved.sum()))
    arrival = send + delay
    arrival[_gilbert_elliott(rng, n, 0.008, 0.25, 0.9)] = np.nan
    return send, arrival


def delay_spike(rng: np.random.Generator) -> Trace:
    """40 ms + gamma(2, 2 ms); 0.2 % loss; 4 spikes of 150-400 ms draining at slope -1; 120 s."""
    send = _send(120)
    n = len(send)
    delay = 40.0 + rng.gamma(2.0, 2.0, n)
    duration = send[-1] + PACKET_MS
    for quarter in range(4):
        lo = quarter * duration / 4 + 3000.0
        hi = (quarter + 1) * duration / 4 - 3000.0
        start = rng.uniform(lo, hi)
        height = rng.uniform(150.0, 400.0)
        inside = (send >= start) & (send < start + height)
        delay[inside] += height - (send[inside] - start)
    return send, _random_loss(rng, _fifo(send + delay), 0.002)


def _drift(ppm: float) -> Callable[[np.random.Generator], Trace]:
    def profile(rng: np.random.Generator) -> Trace:
        send = _send(300)
        delay = 40.0 + rng.gamma(2.0, 2.0, len(send))
        # The receiver's clock runs ppm faster (or slower) than the sender's.
        return send, (send + delay) * (1.0 + ppm * 1e-6)

    profile.__doc__ = (
        f"40 ms + gamma(2, 2 ms) with the receiver clock off by {ppm:+.0f} ppm; 300 s."
    )
    return profile


def periodic_congestion(rng: np.random.Generator) -> Trace:
    """Unseen kind: every 12 s a congestion episode (queue builds over ~3 s to 60-150 ms and
    drains in ~1 s, extra gamma jitter and 1 % loss while it lasts) on 35 ms + gamma(2, 2); FIFO;
    120 s."""
    send = _send(120)
    n = len(send)
    delay = 35.0 + rng.gamma(2.0, 2.0, n)
    lossy = np.zeros(n, dtype=bool)
    for start in np.arange(5000.0, send[-1], 12000.0):
        start += rng.uniform(-1500.0, 1500.0)
        build = rng.uniform(2000.0, 4000.0)
        drain = rng.uniform(600.0, 1500.0)
        peak = rng.uniform(60.0, 150.0)
        rising = (send >= start) & (send < start + build)
        falling = (send >= start + build) & (send < start + build + drain)
        delay[rising] += peak * (send[rising] - start) / build
        delay[falling] += peak * (1.0 - (send[falling] - start - build) / drain)
        episode = rising | falling
        delay[episode] += rng.gamma(2.0, 5.0, int(episode.sum()))
        lossy |= episode
    arrival = _fifo(send + delay)
    arrival[lossy & (rng.random(n) < 0.01)] = np.nan
    return send, arrival


def step_changes(rng: np.random.Generator) -> Trace:
    """Unseen kind: the base delay jumps every 10-25 s to a new value in 20-150 ms (a route
    change: a step down reorders packets), + gamma(2, 3 ms), 0.3 % loss; 120 s."""
    send = _send(120)
    n = len(send)
    base = np.empty(n)
    t = 0.0
    while t < send[-1] + PACKET_MS:
        length = rng.uniform(10000.0, 25000.0)
        base[(send >= t) & (send < t + length)] = rng.uniform(20.0, 150.0)
        t += length
    delay = base + rng.gamma(2.0, 3.0, n)
    return send, _random_loss(rng, send + delay, 0.003)


def bursty_then_calm(rng: np.random.Generator) -> Trace:
    """Unseen kind: 10 s calm (25 ms + gamma(2, 1 ms)) and 10 s bursty (25 ms + gamma(1.5, 8 ms),
    10 % of packets + Pareto(xm 10 ms, alpha 1.3, ≤ 300 ms), FIFO, 1 % loss) in turn; 120 s."""
    send = _send(120)
    n = len(send)
    bursty = (send // 10000.0) % 2 == 1
    delay = 25.0 + rng.gamma(2.0, 1.0, n)
    delay[bursty] = 25.0 + rng.gamma(1.5, 8.0, int(bursty.sum()))
    hit = bursty & (rng.random(n) < 0.10)
    delay[hit] += _pareto(rng, int(hit.sum()), 10.0, 1.3, 300.0)
    arrival = _fifo(send + delay)
    arrival[bursty & (rng.random(n) < 0.01)] = np.nan
    return send, arrival


PROFILES: Final[Mapping[str, Callable[[np.random.Generator], Trace]]] = MappingProxyType(
    {
        "clean": clean,
        "wifi_jitter": wifi_jitter,
        "mobile_bursty": mobile_bursty,
        "delay_spike": delay_spike,
        "drift_plus_100ppm": _drift(100.0),
        "drift_minus_100ppm": _drift(-100.0),
        "periodic_congestion": periodic_congestion,
        "step_changes": step_changes,
        "bursty_then_calm": bursty_then_calm,
    }
)
TUNING_PROFILES: Final = (
    "clean",
    "wifi_jitter",
    "mobile_bursty",
    "delay_spike",
    "drift_plus_100ppm",
    "drift_minus_100ppm",
)
UNSEEN_PROFILES: Final = ("periodic_congestion", "step_changes", "bursty_then_calm")


def generate(seed: int = 1, names: tuple[str, ...] | None = None) -> dict[str, F64]:
    """Every profile (or ``names``), each from its own stream seeded by (seed, profile index)."""
    arrays: dict[str, F64] = {}
    for index, name in enumerate(PROFILES):
        if names is not None and name not in names:
            continue
        rng = np.random.default_rng([seed, index])
        send, arrival = PROFILES[name](rng)
        arrays[f"{name}/send_ms"] = send
        arrays[f"{name}/arr_ms"] = arrival
    return arrays


def write_traces(path: Path, seed: int = 1, names: tuple[str, ...] | None = None) -> list[str]:
    """Write TRACES.npz; returns the profile names written."""
    arrays = generate(seed, names)
    with path.open("wb") as out:
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    return [key.removesuffix("/send_ms") for key in arrays if key.endswith("/send_ms")]


def profile_names(path: Path) -> list[str]:
    """Profiles in a TRACES.npz, in file order."""
    with np.load(path) as data:
        return [key.removesuffix("/send_ms") for key in data.files if key.endswith("/send_ms")]


def load_trace(path: Path, name: str) -> Trace:
    """(send_ms, arr_ms) of one profile; KeyError when it is not in the file."""
    with np.load(path) as data:
        key = f"{name}/send_ms"
        if key not in data.files:
            raise KeyError(name)
        send = np.asarray(data[key], dtype=np.float64)
        arrival = np.asarray(data[f"{name}/arr_ms"], dtype=np.float64)
    if send.shape != arrival.shape or send.ndim != 1:
        raise ValueError(f"{name}: send_ms and arr_ms must be 1-D arrays of the same length")
    return send, arrival
