"""WSOLA accelerate/expand: lengths, pitch, no new discontinuities, refusal on noise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from speech_quality import speech

from softphone.media.stretch import (
    StretchResult,
    accelerate,
    expand,
    pitch_period,
    stretch_to,
)

RATES = (8000, 16000, 48000)
Pcm = npt.NDArray[np.float32]


def max_step(x: Pcm) -> float:
    return float(np.abs(np.diff(x.astype(np.float64))).max())


def max_highpass_energy(x: Pcm, sample_rate: int) -> float:
    """Largest first-difference energy in any 1 ms window (sliding, so alignment-free)."""
    energy = np.diff(x.astype(np.float64)) ** 2
    width = sample_rate // 1000
    cumulative = np.concatenate(([0.0], np.cumsum(energy)))
    return float((cumulative[width:] - cumulative[:-width]).max())


def periodic(sample_rate: int, period: int, samples: int) -> Pcm:
    """A harmonic-rich periodic signal with exactly ``period`` samples per cycle."""
    phase = 2 * np.pi * np.arange(samples) / period
    x = 0.3 * np.sin(phase) + 0.15 * np.sin(2 * phase + 1.0) + 0.08 * np.sin(3 * phase + 2.0)
    return x.astype(np.float32)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("ratio", [0.95, 1.05])
def test_speech_stretched_by_five_percent_hits_length_without_new_discontinuity(
    sample_rate: int, ratio: float
) -> None:
    x = speech(sample_rate)
    y = stretch_to(x, sample_rate, ratio)
    assert y.dtype == np.float32
    assert abs(len(y) / len(x) - ratio) <= 0.005 * ratio
    assert max_step(y) <= 1.1 * max_step(x)
    assert max_highpass_energy(y, sample_rate) <= 1.1 * max_highpass_energy(x, sample_rate)


@pytest.mark.parametrize("sample_rate", RATES)
def test_every_splice_is_as_smooth_as_its_window(sample_rate: int) -> None:
    """Per 30 ms window: a stretched window has no step larger than the window had."""
    x = speech(sample_rate)
    window = 30 * sample_rate // 1000
    operations: dict[str, Callable[[Pcm], StretchResult]] = {
        "accelerate": lambda w: accelerate(w, sample_rate),
        "fast": lambda w: accelerate(w, sample_rate, fast=True),
        "expand": lambda w: expand(w, sample_rate),
    }
    for name, operation in operations.items():
        done = 0
        for start in range(0, len(x) - window, window):
            chunk = x[start : start + window]
            result = operation(chunk)
            assert len(result.audio) - len(chunk) == result.delta_samples
            if result.delta_samples == 0:
                assert np.array_equal(result.audio, chunk)
                continue
            done += 1
            shortest = int(np.ceil(0.0025 * sample_rate))
            assert shortest <= abs(result.delta_samples) <= window // 2, name
            assert (result.delta_samples > 0) == (name == "expand")
            # Outside the splice at the middle the audio is untouched; the cross-fade starts on
            # the sample that follows what precedes it and ends on the one that precedes the rest.
            middle, moved = window // 2, abs(result.delta_samples)
            if name == "expand":
                assert np.array_equal(result.audio[:middle], chunk[:middle])
                assert np.array_equal(result.audio[middle + moved :], chunk[middle:])
                assert result.audio[middle] == chunk[middle]
                assert result.audio[middle + moved - 1] == pytest.approx(
                    chunk[middle - 1], abs=1e-7
                )
            else:
                assert np.array_equal(result.audio[: middle - moved], chunk[: middle - moved])
                assert np.array_equal(result.audio[middle:], chunk[middle + moved :])
                assert result.audio[middle - moved] == chunk[middle - moved]
                assert result.audio[middle - 1] == pytest.approx(
                    chunk[middle + moved - 1], abs=1e-7
                )
            assert max_step(result.audio) <= 1.1 * max_step(chunk) + 1e-4, (name, start)
        windows = (len(x) - window) // window
        assert done >= 0.4 * windows, (name, done, windows)  # speech and pauses stretch well


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("frequency", [97.0, 230.0])
@pytest.mark.parametrize("ratio", [0.95, 1.05])
def test_sine_keeps_its_frequency_and_phase(
    sample_rate: int, frequency: float, ratio: float
) -> None:
    n = 3 * sample_rate
    omega = 2 * np.pi * frequency / sample_rate
    x = (0.5 * np.sin(omega * np.arange(n) + 0.3)).astype(np.float32)
    y = stretch_to(x, sample_rate, ratio).astype(np.float64)
    assert abs(len(y) / n - ratio) <= 0.005 * ratio

    def crossings_per_sample(s: npt.NDArray[np.float64]) -> float:
        return np.count_nonzero(np.signbit(s[1:]) != np.signbit(s[:-1])) / len(s)

    assert crossings_per_sample(y) == pytest.approx(
        crossings_per_sample(x.astype(np.float64)), rel=0.002
    )
    # A pure sine obeys y[n+1] + y[n-1] = 2 cos(w) y[n] everywhere; a phase jump of d radians
    # breaks it by ~0.5 * d. Allow 1e-3 (a 0.002 rad jump).
    residual = y[2:] + y[:-2] - 2 * np.cos(omega) * y[1:-1]
    assert float(np.abs(residual).max()) < 1e-3
    assert float(np.abs(y).max()) == pytest.approx(0.5, abs=0.002)


@pytest.mark.parametrize("sample_rate", RATES)
def test_pitch_period_finds_the_period(sample_rate: int) -> None:
    # 9 ms (twice that is out of the 2.5-15 ms range) + 1 sample: not a multiple of the
    # decimation factor, so only the full-rate refinement finds it exactly.
    period = round(0.009 * sample_rate) + 1
    x = periodic(sample_rate, period, 30 * sample_rate // 1000)
    found, correlation = pitch_period(x, sample_rate)
    assert found == period
    assert correlation > 0.99
    voice = periodic(sample_rate, round(0.004 * sample_rate), 30 * sample_rate // 1000)
    found, _ = pitch_period(voice, sample_rate)
    assert found % round(0.004 * sample_rate) == 0  # 4 ms, or a multiple within 15 ms


def test_pitch_period_of_noise_is_weak_and_silence_is_zero() -> None:
    noise = np.random.default_rng(7).normal(0.0, 0.1, 480).astype(np.float32)
    _, correlation = pitch_period(noise, 16000)
    assert correlation < 0.5
    assert pitch_period(np.zeros(480, dtype=np.float32), 16000) == (40, 0.0)
    with pytest.raises(ValueError, match="5 ms"):
        pitch_period(np.zeros(70, dtype=np.float32), 16000)


@pytest.mark.parametrize("sample_rate", RATES)
def test_periodic_input_loses_or_gains_exactly_one_period(sample_rate: int) -> None:
    period = round(0.009 * sample_rate) + 1
    n = 30 * sample_rate // 1000
    x = periodic(sample_rate, period, n)
    shorter = accelerate(x, sample_rate)
    assert shorter.delta_samples == -period
    np.testing.assert_allclose(shorter.audio, x[: n - period], atol=1e-6)
    longer = expand(x, sample_rate)
    assert longer.delta_samples == period
    np.testing.assert_allclose(longer.audio, periodic(sample_rate, period, n + period), atol=1e-6)


def test_fast_accelerate_removes_two_periods_when_they_fit() -> None:
    period = 64  # 4 ms at 16 kHz: two periods fit in half of 30 ms
    x = periodic(16000, period, 480)
    assert accelerate(x, 16000).delta_samples in (-period, -2 * period)
    fast = accelerate(x, 16000, fast=True)
    assert fast.delta_samples == -2 * period
    np.testing.assert_allclose(fast.audio, x[: 480 - 2 * period], atol=1e-6)


@pytest.mark.parametrize("sample_rate", RATES)
def test_speech_level_noise_is_refused_unless_fast(sample_rate: int) -> None:
    rng = np.random.default_rng(3)
    n = 30 * sample_rate // 1000
    refused_fast = 0
    for _ in range(20):
        noise = rng.normal(0.0, 0.1, n).astype(np.float32)  # -20 dBFS: speech level, no pitch
        result = accelerate(noise, sample_rate)
        assert result.delta_samples == 0
        assert np.array_equal(result.audio, noise)
        assert expand(noise, sample_rate).delta_samples == 0
        refused_fast += accelerate(noise, sample_rate, fast=True).delta_samples == 0
    assert refused_fast >= 15  # white noise rarely reaches even the fast threshold of 0.5


@pytest.mark.parametrize("sample_rate", RATES)
def test_low_energy_input_is_always_stretched_smoothly(sample_rate: int) -> None:
    n = 30 * sample_rate // 1000
    hiss = np.random.default_rng(5).normal(0.0, 0.001, n).astype(np.float32)  # -60 dBFS
    shorter = accelerate(hiss, sample_rate)
    longer = expand(hiss, sample_rate)
    assert shorter.delta_samples < 0 < longer.delta_samples
    assert max_step(shorter.audio) <= 1.1 * max_step(hiss)
    assert max_step(longer.audio) <= 1.1 * max_step(hiss)
    silence = np.zeros(n, dtype=np.float32)
    assert accelerate(silence, sample_rate).delta_samples < 0
    assert not np.any(expand(silence, sample_rate).audio)


def test_too_short_input_comes_back_unchanged() -> None:
    x = periodic(16000, 40, 100)  # 6.25 ms
    for result in (accelerate(x, 16000), accelerate(x, 16000, fast=True), expand(x, 16000)):
        assert result.delta_samples == 0
        assert np.array_equal(result.audio, x)
    assert len(stretch_to(np.zeros(0, dtype=np.float32), 16000, 1.05)) == 0


@pytest.mark.parametrize("sample_rate", [8000, 11025, 22050, 32000, 44100, 48000])
def test_any_rate_and_length_keeps_the_invariants(sample_rate: int) -> None:
    rng = np.random.default_rng(sample_rate)
    lengths = [*range(1, 200, 7), *rng.integers(200, sample_rate // 5, 20).tolist()]
    for n in lengths:
        tone = np.sin(np.arange(n) / rng.uniform(3, 30))
        x = (rng.normal(0.0, 0.2, n) * tone).astype(np.float32)
        for result in (
            accelerate(x, sample_rate),
            accelerate(x, sample_rate, fast=True),
            expand(x, sample_rate),
        ):
            assert len(result.audio) - n == result.delta_samples
            assert result.audio.dtype == np.float32
        if n >= 2 * np.ceil(0.0025 * sample_rate) * max(1, round(sample_rate / 4000)):
            period, correlation = pitch_period(x, sample_rate)
            assert 1 <= period <= n // 2
            assert -1.0 <= correlation <= 1.0
