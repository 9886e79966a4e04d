"""Pitch-synchronous time-stretching (WSOLA style) of decoded audio.

The playout calls :func:`accelerate` (play a little less audio: shrink the buffer) and
:func:`expand` (play a little more: grow it) on ~30 ms of decoded audio to move toward its target
delay and to absorb sender/receiver clock drift. Both work as WebRTC NetEQ's ``accelerate.cc`` /
``preemptive_expand.cc`` do:

- find the pitch period ``P`` by normalised autocorrelation on a copy decimated to ~4 kHz, for
  periods of 2.5-15 ms, then refine it at the full rate (:func:`pitch_period`);
- take the two period-long segments on either side of the middle of the input,
  ``A = x[m-P:m]`` and ``B = x[m:m+P]``, and measure how alike they are (normalised correlation);
- accelerate replaces ``A B`` by one cross-fade from ``A`` into ``B`` (``P`` samples shorter);
  expand replaces ``A B`` by ``A``, a cross-fade from ``B`` into ``A``, then ``B`` (``P`` longer).

Each cross-fade starts on the sample that naturally follows what precedes it and ends on the one
that naturally precedes what follows it, so no discontinuity is created; whole pitch periods are
moved, never whole frames. The splice is done only when the segments are alike (correlation above
0.9, or 0.5 in ``fast`` mode) or when the input is low-energy (below ``LOW_ENERGY_RMS``: a pause, not
speech), where any period-long chunk can go. Otherwise the input comes back unchanged with
``delta_samples == 0``. Pure numpy; no state; safe to call from any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Pcm: TypeAlias = npt.NDArray[np.float32]
_F64: TypeAlias = npt.NDArray[np.float64]

DECIMATED_RATE: Final = 4000
"""Rate of the coarse pitch search (NetEQ searches at 4 kHz too)."""
MIN_PERIOD_S: Final = 0.0025
MAX_PERIOD_S: Final = 0.015
CORRELATION_THRESHOLD: Final = 0.9
"""Segments must be this alike to be spliced (NetEQ ``kCorrelationThreshold`` 14746/16384)."""
FAST_CORRELATION_THRESHOLD: Final = 0.5
LOW_ENERGY_RMS: Final = 10.0 ** (-45.0 / 20.0)
"""Below -45 dBFS RMS the input is taken for a pause (not speech) and may always be stretched."""
WINDOW_S: Final = 0.030
"""The window :func:`stretch_to` works on, and the input length the playout should pass."""


@dataclass(frozen=True, slots=True)
class StretchResult:
    """What :func:`accelerate` / :func:`expand` did.

    ``delta_samples == len(audio) - len(input)``: negative after an accelerate, positive after an
    expand, 0 when refused (``audio`` is then the input, unchanged).
    """

    audio: Pcm
    delta_samples: int


def _as_pcm(x: npt.ArrayLike) -> Pcm:
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def _normalised_correlations(x: _F64, window: int, lo: int, hi: int) -> _F64:
    """corr(x[0:window], x[lag:lag+window]) for every lag in [lo, hi], in [-1, 1]."""
    reference = x[:window]
    shifted = sliding_window_view(x, window)[lo : hi + 1]
    cross = shifted @ reference
    cumulative = np.concatenate(([0.0], np.cumsum(x * x)))
    lags = np.arange(lo, hi + 1)
    shifted_energy = cumulative[lags + window] - cumulative[lags]
    denominator = np.sqrt(np.maximum(shifted_energy, 0.0) * cumulative[window])
    out = np.zeros(len(lags))
    np.divide(cross, denominator, out=out, where=denominator > 1e-12)
    return np.clip(out, -1.0, 1.0)


def pitch_period(x: Pcm, sample_rate: int) -> tuple[int, float]:
    """The pitch period of ``x`` in samples and its normalised correlation in [-1, 1].

    Coarse search on a copy decimated to ~4 kHz (box filter, then every ``d``-th sample) for lags
    of 2.5-15 ms (at most half the input), then a search at the full rate within one decimation
    step of the coarse lag. The correlation compares ``x[0:W]`` with ``x[P:P+W]``, where
    ``W = len(x) - longest lag searched``. The longest lag that can come back is ``len(x) // 2``.
    Silence gives ``(shortest lag, 0.0)``. Needs at least 5 ms of audio (ValueError otherwise).
    """
    samples = _as_pcm(x).astype(np.float64)
    factor = max(1, round(sample_rate / DECIMATED_RATE))
    coarse_rate = sample_rate / factor
    coarse_len = len(samples) // factor
    lo = max(1, math.ceil(MIN_PERIOD_S * coarse_rate))
    hi = min(math.floor(MAX_PERIOD_S * coarse_rate), coarse_len // 2)
    if hi < lo:
        raise ValueError(f"pitch_period needs at least 5 ms of audio, got {len(samples)} samples")
    coarse = samples[: coarse_len * factor].reshape(coarse_len, factor).mean(axis=1)
    coarse_corr = _normalised_correlations(coarse, coarse_len - hi, lo, hi)
    coarse_lag = lo + int(np.argmax(coarse_corr))
    # Refine at the full rate around coarse_lag * factor, with the same (scaled) window.
    full_lo = max(1, math.ceil(MIN_PERIOD_S * sample_rate))
    full_hi = min(hi * factor, len(samples) // 2)
    window = len(samples) - full_hi
    lag_lo = max(full_lo, coarse_lag * factor - (factor - 1))
    lag_hi = max(lag_lo, min(full_hi, coarse_lag * factor + (factor - 1)))
    fine_corr = _normalised_correlations(samples, window, lag_lo, lag_hi)
    best = int(np.argmax(fine_corr))
    return lag_lo + best, float(fine_corr[best])


def _fade_in(length: int) -> _F64:
    """Raised-cosine weights from exactly 0 to exactly 1 (``w + (1 - w) == 1``)."""
    if length < 2:
        return np.ones(length)
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(length) / (length - 1))


def _crossfade(fading_out: _F64, fading_in: _F64) -> _F64:
    weights = _fade_in(len(fading_out))
    return fading_out + weights * (fading_in - fading_out)


def _segment_correlation(a: _F64, b: _F64) -> float:
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 1e-12 else 0.0


def _analyse(samples: _F64, sample_rate: int) -> tuple[int, bool] | None:
    """(period, low_energy) for the splice at the middle of ``samples``; None if too short."""
    middle = len(samples) // 2
    half_window = round(WINDOW_S * sample_rate / 2)
    region = samples[max(0, middle - half_window) : middle + half_window]
    if len(region) < 2 * math.ceil(2 * MIN_PERIOD_S * sample_rate):
        return None
    period, _ = pitch_period(region.astype(np.float32), sample_rate)
    low_energy = float(np.sqrt(np.mean(region * region))) < LOW_ENERGY_RMS
    return period, low_energy


def accelerate(x: Pcm, sample_rate: int, *, fast: bool = False) -> StretchResult:
    """Remove one pitch period (``fast``: two when they fit and match) from ``x``.

    Pass ~30 ms (``WINDOW_S``) or more; less than 10 ms is always refused. The splice is at the
    middle of ``x``; the first and last ``len(x) // 2 - P`` samples come back untouched.
    """
    pcm = _as_pcm(x)
    samples = pcm.astype(np.float64)
    analysis = _analyse(samples, sample_rate)
    if analysis is None:
        return StretchResult(audio=pcm, delta_samples=0)
    period, low_energy = analysis
    threshold = FAST_CORRELATION_THRESHOLD if fast else CORRELATION_THRESHOLD
    middle = len(samples) // 2
    candidates = [2 * period, period] if fast else [period]
    for removed in candidates:
        if removed > middle or middle + removed > len(samples):
            continue
        first = samples[middle - removed : middle]
        second = samples[middle : middle + removed]
        if low_energy or _segment_correlation(first, second) > threshold:
            out = np.concatenate(
                (
                    samples[: middle - removed],
                    _crossfade(first, second),
                    samples[middle + removed :],
                )
            )
            return StretchResult(audio=out.astype(np.float32), delta_samples=-removed)
    return StretchResult(audio=pcm, delta_samples=0)


def expand(x: Pcm, sample_rate: int) -> StretchResult:
    """Insert one pitch period into ``x`` (same rules as :func:`accelerate`, threshold 0.9)."""
    pcm = _as_pcm(x)
    samples = pcm.astype(np.float64)
    analysis = _analyse(samples, sample_rate)
    if analysis is None:
        return StretchResult(audio=pcm, delta_samples=0)
    period, low_energy = analysis
    middle = len(samples) // 2
    if period > middle or middle + period > len(samples):
        return StretchResult(audio=pcm, delta_samples=0)
    first = samples[middle - period : middle]
    second = samples[middle : middle + period]
    if not low_energy and _segment_correlation(first, second) <= CORRELATION_THRESHOLD:
        return StretchResult(audio=pcm, delta_samples=0)
    # A B  ->  A (B fading into A) B: the inserted period starts where A ends (B follows A) and
    # ends where B starts (A's end is followed by B in the original).
    out = np.concatenate((samples[:middle], _crossfade(second, first), samples[middle:]))
    return StretchResult(audio=out.astype(np.float32), delta_samples=period)


def stretch_to(x: Pcm, sample_rate: int, ratio: float) -> Pcm:
    """Time-stretch ``x`` to about ``ratio * len(x)`` samples without changing its pitch.

    Walks ``x`` in 30 ms windows and accelerates or expands a window whenever the output is more
    than a shortest pitch period away from ``ratio`` times the input consumed so far. Windows that
    refuse pass through unchanged, so the ratio is reached only as far as the audio allows (speech
    allows ±5 % easily). A test and offline utility; the playout calls accelerate/expand itself.
    """
    pcm = _as_pcm(x)
    window = round(WINDOW_S * sample_rate)
    slack = math.ceil(MIN_PERIOD_S * sample_rate)
    pieces: list[Pcm] = []
    produced = 0
    for start in range(0, len(pcm), window):
        chunk = pcm[start : start + window]
        error = produced + len(chunk) - ratio * (start + len(chunk))
        if len(chunk) == window and error > slack:
            chunk = accelerate(chunk, sample_rate).audio
        elif len(chunk) == window and error < -slack:
            chunk = expand(chunk, sample_rate).audio
        pieces.append(chunk)
        produced += len(chunk)
    return np.concatenate(pieces) if pieces else pcm
