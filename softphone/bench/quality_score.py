"""WB-PESQ of a recording against the speech it should hold, for ``softphone bench quality``.

The recording is aligned to the reference by cross-correlation (the lag of the largest peak,
within ``max_lag_s``), both at 16 kHz (FFT resampling of the whole signal: band-limited, and
independent of the playout's own resampler, which is one of the things measured), and
``seconds`` of it from ``skip_s`` on are scored with ITU-T P.862.2 (the ``pesq`` package).

:func:`opus_alone` is the score of the speech through our Opus encoder and decoder alone (no
network, no jitter buffer, no resampling but the scorer's): the best a call can do.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

SCORE_RATE: Final = 16000
Signal = npt.NDArray[np.float64]


class ScoreError(ValueError):
    """A recording that cannot be scored (too short, not 16-bit PCM)."""


@dataclass(frozen=True, slots=True)
class Scored:
    pesq: float
    lag_ms: float
    seconds: float


def read_pcm16(path: Path) -> tuple[Signal, int]:
    """A 16-bit PCM WAV as mono float64 (channels averaged) and its rate."""
    with wave.open(str(path)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ScoreError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)
    return data, rate


def fft_resample(x: Signal, rate: int, target: int) -> Signal:
    """Resample the whole signal in the frequency domain (for scoring only)."""
    if rate == target or len(x) == 0:
        return x
    n = round(len(x) * target / rate)
    spectrum = np.fft.rfft(x)
    keep = min(len(spectrum), n // 2 + 1)
    out: Signal = np.fft.irfft(spectrum[:keep], n) * (n / len(x))
    return out


def align(reference: Signal, recording: Signal, rate: int, max_lag_s: float) -> int:
    """Lag (samples) at which ``recording[lag:]`` best matches ``reference``."""
    n = len(recording) + len(reference)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    max_lag = int(max_lag_s * rate)
    window = np.concatenate((corr[: max_lag + 1], corr[-max_lag:]))
    best = int(np.argmax(window))
    return best if best <= max_lag else best - len(window)


def score_signals(
    reference: Signal,
    recording: Signal,
    *,
    seconds: float,
    skip_s: float = 0.5,
    max_lag_s: float = 3.0,
) -> Scored:
    """WB-PESQ of ``seconds`` of ``recording`` against ``reference`` (both at 16 kHz)."""
    from pesq import pesq

    rate = SCORE_RATE
    lag = align(reference, recording, rate, max_lag_s)
    start, length = int(skip_s * rate), int(seconds * rate)
    if lag >= 0:
        ref = reference[start : start + length]
        rec = recording[lag + start : lag + start + length]
    else:
        ref = reference[start - lag : start - lag + length]
        rec = recording[start : start + length]
    n = min(len(ref), len(rec))
    if n < rate * min(3.0, seconds):
        raise ScoreError(f"only {n / rate:.1f} s of aligned speech")
    value = float(pesq(rate, ref[:n].astype(np.float32), rec[:n].astype(np.float32), "wb"))
    return Scored(pesq=value, lag_ms=1000.0 * lag / rate, seconds=n / rate)


def score_files(reference: Path, recording: Path, *, seconds: float) -> Scored:
    ref, ref_rate = read_pcm16(reference)
    rec, rec_rate = read_pcm16(recording)
    try:
        return score_signals(
            fft_resample(ref, ref_rate, SCORE_RATE),
            fft_resample(rec, rec_rate, SCORE_RATE),
            seconds=seconds,
        )
    except ScoreError as exc:
        raise ScoreError(f"{recording}: {exc}") from exc


def scoring_seconds(reference: Path, call_seconds: float) -> float:
    """What to score of a call: the call less a second, within the (unlooped) speech."""
    ref, rate = read_pcm16(reference)
    return max(3.0, min(call_seconds - 1.0, len(ref) / rate - 1.0))


def opus_alone(reference: Path, bitrate: int = 32000) -> float:
    """WB-PESQ of the speech through our Opus codec at ``bitrate``, 20 ms frames, nothing lost."""
    from softphone.media.codecs import DecoderOptions, EncoderOptions, get_codec

    codec = get_codec("opus")
    assert codec.make_encoder is not None and codec.make_decoder is not None
    encoder = codec.make_encoder(EncoderOptions(frame_ms=20, bitrate=bitrate))
    decoder = codec.make_decoder(DecoderOptions())
    ref, rate = read_pcm16(reference)
    speech = fft_resample(ref, rate, codec.sample_rate).astype(np.float32)
    frame = codec.sample_rate // 50
    frames = [speech[i : i + frame] for i in range(0, len(speech) - frame + 1, frame)]
    decoded = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames])
    seconds = len(ref) / rate - 1.0
    return score_signals(
        fft_resample(ref, rate, SCORE_RATE),
        fft_resample(decoded.astype(np.float64), codec.sample_rate, SCORE_RATE),
        seconds=seconds,
    ).pesq
