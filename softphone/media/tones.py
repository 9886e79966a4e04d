"""Call-progress and alerting tones, generated block by block with continuous phase.

A tone is a ``TonePattern``: a cadence of segments (a duration and the frequencies summed in it,
none for silence) repeated forever, at a peak level in dBFS. ``ToneGenerator.next(n)`` returns
the next ``n`` samples; the waveform is a function of the absolute sample index, so cutting the
output into blocks of any size gives exactly the same signal (phase is kept across calls).
Each tone burst is shaped with a short raised-cosine ramp so the cadence does not click.

Patterns (ITU-T E.180 and its Supplement 2 list the national ringing-tone variants):
- ``RINGBACK_EU``: 425 Hz, 1 s on / 4 s off (the common European ringing tone);
- ``RINGBACK_US``: 440 + 480 Hz, 2 s on / 4 s off (North American audible ringing);
- ``RING``: the local "incoming call" alert, a 1000/800 Hz warble in a 1 s on / 2 s off cadence;
- ``steady_tone(frequency, level_dbfs)``: a steady test sine for level checks and device tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.float32]

RAMP_MS: Final = 4.0


@dataclass(frozen=True, slots=True)
class ToneSegment:
    duration_ms: int
    frequencies: tuple[float, ...] = ()  # () is silence


@dataclass(frozen=True, slots=True)
class TonePattern:
    segments: tuple[ToneSegment, ...]
    level_dbfs: float = -12.0  # peak level of the summed tones

    def __post_init__(self) -> None:
        if not self.segments or any(s.duration_ms <= 0 for s in self.segments):
            raise ValueError("a tone pattern needs segments with positive durations")


RINGBACK_EU: Final = TonePattern((ToneSegment(1000, (425.0,)), ToneSegment(4000)), level_dbfs=-12.0)
RINGBACK_US: Final = TonePattern(
    (ToneSegment(2000, (440.0, 480.0)), ToneSegment(4000)), level_dbfs=-12.0
)
RING: Final = TonePattern(
    (*(ToneSegment(50, (f,)) for _ in range(10) for f in (1000.0, 800.0)), ToneSegment(2000)),
    level_dbfs=-10.0,
)


def ringback(region: Literal["eu", "us"] = "eu") -> TonePattern:
    """The ringback (audible ringing) pattern for a region; a config key picks it."""
    return RINGBACK_US if region == "us" else RINGBACK_EU


def steady_tone(frequency: float = 1000.0, level_dbfs: float = -20.0) -> TonePattern:
    """A steady sine (one endless segment: no ramps, no gaps)."""
    return TonePattern((ToneSegment(1000, (frequency,)),), level_dbfs=level_dbfs)


class ToneGenerator:
    """Produces a ``TonePattern`` at ``sample_rate`` in blocks, phase-continuous."""

    def __init__(self, pattern: TonePattern, sample_rate: int) -> None:
        self.pattern = pattern
        self.sample_rate = sample_rate
        self._position = 0  # absolute sample index of the next output sample
        bounds = np.cumsum([s.duration_ms * sample_rate // 1000 for s in pattern.segments])
        self._ends: npt.NDArray[np.int64] = bounds.astype(np.int64)
        self._starts: npt.NDArray[np.int64] = np.concatenate(([0], bounds[:-1])).astype(np.int64)
        self._cycle = int(bounds[-1])
        self._steady = len(pattern.segments) == 1
        self._ramp = max(1, int(sample_rate * RAMP_MS / 1000))
        self._amplitude = 10.0 ** (pattern.level_dbfs / 20.0)

    def reset(self) -> None:
        self._position = 0

    def next(self, samples: int) -> Pcm:
        n = self._position + np.arange(samples, dtype=np.int64)
        self._position += samples
        out = np.zeros(samples, dtype=np.float64)
        t = n.astype(np.float64) / self.sample_rate
        if self._steady:
            freqs = self.pattern.segments[0].frequencies
            for f in freqs:
                out += np.sin(2.0 * np.pi * f * t)
            scale = self._amplitude / max(1, len(freqs))
            steady: Pcm = (out * scale).astype(np.float32)
            return steady
        in_cycle = n % self._cycle
        segment = np.searchsorted(self._ends, in_cycle, side="right")
        for index, seg in enumerate(self.pattern.segments):
            if not seg.frequencies:
                continue
            mask = segment == index
            if not mask.any():
                continue
            wave = np.zeros(int(mask.sum()), dtype=np.float64)
            for f in seg.frequencies:
                wave += np.sin(2.0 * np.pi * f * t[mask])
            offset = in_cycle[mask] - self._starts[index]
            remaining = self._ends[index] - 1 - in_cycle[mask]
            edge = np.minimum(np.minimum(offset, remaining), self._ramp).astype(np.float64)
            envelope = 0.5 - 0.5 * np.cos(np.pi * edge / self._ramp)
            out[mask] = wave * envelope * (self._amplitude / len(seg.frequencies))
        return out.astype(np.float32)
