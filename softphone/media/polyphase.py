"""Sample-rate conversion by a whole factor (8 kHz <-> 48 kHz, 16 kHz <-> 48 kHz) in numpy.

Every call converts its audio between the codec's rate and the engine's (48 kHz) both ways, 50
times a second. Through a libswresample filter graph each 20 ms block costs a frame object, a
push, pulls until EAGAIN (an exception) and an array copy: with 40 calls up that was a fifth of
the phone's CPU. When one rate is a whole multiple of the other the conversion is a fixed
polyphase filter: one matrix product per block here.

The filter is a Kaiser-windowed sinc whose half-length is :data:`HALF_TAPS` samples at the lower
rate, as swresample's default; its cutoff sits a little below the lower rate's Nyquist frequency
(:data:`CUTOFF`), so speech keeps its band and images above it are some 70 dB down. Each phase's
taps sum to one, so a constant passes unchanged. Like swresample, the output is time-aligned with
the input (output sample ``n * L`` is input sample ``n``) and the only latency is the tail held
back for the filter: ``HALF_TAPS`` samples at the lower rate (2 ms at 8 kHz).
"""

from __future__ import annotations

from functools import cache
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

Pcm: TypeAlias = npt.NDArray[np.float32]

HALF_TAPS = 16
CUTOFF = 0.94  # of the lower rate's Nyquist frequency
KAISER_BETA = 8.0


def whole_factor(in_rate: int, out_rate: int) -> int:
    """The factor between the two rates when one divides the other (1 for equal), else 0."""
    high, low = max(in_rate, out_rate), min(in_rate, out_rate)
    return high // low if high % low == 0 else 0


def _kernel(offsets: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The windowed sinc at ``offsets`` (in samples of the lower rate)."""
    inside = np.abs(offsets) < HALF_TAPS
    ratio = np.clip(offsets / HALF_TAPS, -1.0, 1.0)
    kaiser = np.i0(KAISER_BETA * np.sqrt(1.0 - ratio**2)) / np.i0(KAISER_BETA)
    return np.where(inside, CUTOFF * np.sinc(CUTOFF * offsets) * kaiser, 0.0)


# The taps depend on the factor only: made once per factor and shared, read-only, by every
# call's resampler (a Kaiser window costs ~0.5 ms to compute; a call makes two resamplers, and a
# phone taking 80 calls a second made them 160 times a second).
@cache
def _upsampling_taps(factor: int) -> Pcm:
    # Output n*L + p lies p/L after input n; the window starts at input n - HALF_TAPS + 1.
    j = np.arange(2 * HALF_TAPS)[:, None]
    p = np.arange(factor)[None, :]
    taps = _kernel(p / factor + HALF_TAPS - 1 - j)
    out: Pcm = (taps / taps.sum(axis=0, keepdims=True)).astype(np.float32)
    out.flags.writeable = False
    return out


@cache
def _downsampling_taps(factor: int) -> Pcm:
    # Output n lies at input n*M; its window starts at input n*M - HALF_TAPS*M + 1.
    offsets = (HALF_TAPS * factor - 1 - np.arange(2 * HALF_TAPS * factor - 1)) / factor
    taps = _kernel(offsets)
    out: Pcm = (taps / taps.sum()).astype(np.float32)
    out.flags.writeable = False
    return out


class Upsampler:
    """``factor`` output samples per input sample, streaming."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        width = 2 * HALF_TAPS
        self._taps = _upsampling_taps(factor)
        self._width = width
        self._buf = np.zeros(HALF_TAPS - 1, dtype=np.float32)  # zeros before the first sample

    def push(self, block: Pcm) -> Pcm:
        buf = np.concatenate((self._buf, block))
        count = buf.shape[0] - (self._width - 1)
        if count <= 0:
            self._buf = buf
            return np.zeros(0, dtype=np.float32)
        step = buf.strides[0]  # each row a window one sample on (a view, nothing copied)
        windows = as_strided(buf, shape=(count, self._width), strides=(step, step), writeable=False)
        out: Pcm = np.asarray(windows @ self._taps, dtype=np.float32).reshape(-1)
        self._buf = buf[count:]
        return out

    def flush_input(self) -> int:
        """Zeros to push so that everything owed comes out."""
        return HALF_TAPS


class Downsampler:
    """One output sample per ``factor`` input samples, streaming."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        width = 2 * HALF_TAPS * factor - 1
        self._taps = _downsampling_taps(factor)
        self._width = width
        self._buf = np.zeros(HALF_TAPS * factor - 1, dtype=np.float32)

    def push(self, block: Pcm) -> Pcm:
        buf = np.concatenate((self._buf, block))
        if buf.shape[0] < self._width:
            self._buf = buf
            return np.zeros(0, dtype=np.float32)
        count = (buf.shape[0] - self._width) // self.factor + 1
        step = buf.strides[0]  # each row a window ``factor`` samples on (a view)
        windows = as_strided(
            buf, shape=(count, self._width), strides=(step * self.factor, step), writeable=False
        )
        out: Pcm = np.asarray(windows @ self._taps, dtype=np.float32)
        self._buf = buf[count * self.factor :]
        return out

    def flush_input(self) -> int:
        return HALF_TAPS * self.factor
