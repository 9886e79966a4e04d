"""Speech quality against a reference: align a recording to what was sent, then ITU-T P.862.

Independent of softphone's own media code (stdlib ``wave`` + numpy, shared with
``softphone bench quality``'s scorer in bench/quality_score.py), so a bug there cannot hide
itself here.
"""

from __future__ import annotations

import functools
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from softphone.bench.quality_score import align, fft_resample, read_pcm16

Signal = npt.NDArray[np.float64]
SPEECH = Path(__file__).resolve().parent / "data" / "audio" / "speech16k.wav"


# What the speech tests ask of a call: speech that arrives and can be understood. Unloaded,
# calls here score 3.6-4.3 (P.862); broken or one-way audio scores 1-1.5. `make test` runs the
# interop tests beside the unit tests on two shared cores, where the jitter buffer's
# time-stretching around scheduling delays has cost up to 1.3 (Opus 2.62, PCMU 3.39, SRTP 2.83
# seen in CI runs). Quality itself is measured by the benchmarks (softphone bench call), not here.
CLEAR_SPEECH = 2.5


# One reader, resampler and aligner for the tests and `softphone bench quality`.
read_wav = read_pcm16
resample = fft_resample


@functools.cache
def speech(rate: int) -> npt.NDArray[np.float32]:
    """The reference speech at ``rate`` as float32 (FFT resampling: band-limited, simple)."""
    data, source_rate = read_wav(SPEECH)
    return resample(data, source_rate, rate).astype(np.float32)


def write_wav(path: Path, data: Signal, rate: int) -> Path:
    pcm = np.clip(np.round(data * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def speech_at(rate: int, directory: Path) -> Path:
    """The reference speech at ``rate``: a peer that resamples poorly itself is not what we test."""
    data, source_rate = read_wav(SPEECH)
    return write_wav(directory / f"speech{rate}.wav", resample(data, source_rate, rate), rate)


@dataclass(frozen=True)
class Score:
    pesq: float
    lag_ms: float
    seconds: float


def score(
    reference_path: Path,
    recording_path: Path,
    *,
    mode: str,
    seconds: float = 8.0,
    skip_s: float = 0.5,
    max_lag_s: float = 3.0,
) -> Score:
    """P.862 (mode "wb" at 16 kHz, "nb" at 8 kHz) of ``seconds`` of the recording, aligned."""
    from pesq import pesq

    rate = 16000 if mode == "wb" else 8000
    ref, ref_rate = read_wav(reference_path)
    rec, rec_rate = read_wav(recording_path)
    ref, rec = resample(ref, ref_rate, rate), resample(rec, rec_rate, rate)
    lag = align(ref, rec, rate, max_lag_s)
    start = int(skip_s * rate)
    length = int(seconds * rate)
    if lag >= 0:
        ref_seg, rec_seg = ref[start : start + length], rec[lag + start : lag + start + length]
    else:
        ref_seg, rec_seg = ref[start - lag : start - lag + length], rec[start : start + length]
    n = min(len(ref_seg), len(rec_seg))
    if n < rate * min(3.0, seconds):
        raise AssertionError(f"only {n / rate:.1f} s of aligned speech in {recording_path}")
    value = float(pesq(rate, ref_seg[:n].astype(np.float32), rec_seg[:n].astype(np.float32), mode))
    return Score(pesq=value, lag_ms=1000 * lag / rate, seconds=n / rate)
