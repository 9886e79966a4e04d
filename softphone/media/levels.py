"""Per-block level metering (RMS and peak in dBFS) with a peak hold that decays.

0 dBFS is a sample of magnitude 1.0; RMS is the plain root mean square against that, so a
full-scale sine reads -3.01 dB RMS and 0 dB peak. Silence reads ``FLOOR_DBFS`` rather than
-inf. Time for the hold/decay is counted in samples metered (block length / sample rate), not
read from a clock, so the meter is deterministic and needs no ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from softphone.media.silence import is_known_silence

FLOOR_DBFS: Final = -120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Levels:
    rms_dbfs: float
    peak_dbfs: float
    peak_hold_dbfs: float  # the highest recent peak, held then decaying


def to_dbfs(magnitude: float) -> float:
    if magnitude <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(magnitude))


class LevelMeter:
    """Meter one direction of audio block by block."""

    def __init__(
        self, sample_rate: int, *, hold_ms: int = 1000, decay_db_per_s: float = 20.0
    ) -> None:
        self.sample_rate = sample_rate
        self.hold_s = hold_ms / 1000.0
        self.decay_db_per_s = decay_db_per_s
        self._hold_dbfs = FLOOR_DBFS
        self._held_for_s = 0.0
        self.last = Levels(rms_dbfs=FLOOR_DBFS, peak_dbfs=FLOOR_DBFS, peak_hold_dbfs=FLOOR_DBFS)

    def update(self, pcm: npt.NDArray[np.floating]) -> Levels:
        """Meter the next block and return (and remember in ``last``) its levels."""
        n = pcm.shape[0]
        if n == 0:
            return self.last
        if is_known_silence(pcm):
            rms = peak = FLOOR_DBFS
        else:
            # Metered every few ms of every call: two reductions on the block as it is (no
            # float64 copy, no temporary of magnitudes); float32 sums are ample for a meter.
            rms = to_dbfs(math.sqrt(max(float(np.dot(pcm, pcm)), 0.0) / n))
            peak = to_dbfs(max(float(pcm.max()), -float(pcm.min())))
        duration_s = n / self.sample_rate
        if peak >= self._hold_dbfs:
            self._hold_dbfs = peak
            self._held_for_s = 0.0
        else:
            self._held_for_s += duration_s
            over = self._held_for_s - self.hold_s
            if over > 0.0:
                decayed = self._hold_dbfs - self.decay_db_per_s * min(over, duration_s)
                if peak >= decayed:  # the decaying hold met the signal: hold that peak anew
                    self._hold_dbfs = peak
                    self._held_for_s = 0.0
                else:
                    self._hold_dbfs = max(decayed, FLOOR_DBFS)
        self.last = Levels(rms_dbfs=rms, peak_dbfs=peak, peak_hold_dbfs=self._hold_dbfs)
        return self.last

    def reset(self) -> None:
        self._hold_dbfs = FLOOR_DBFS
        self._held_for_s = 0.0
        self.last = Levels(rms_dbfs=FLOOR_DBFS, peak_dbfs=FLOOR_DBFS, peak_hold_dbfs=FLOOR_DBFS)
