"""Ringback, ring and test tones: frequencies, cadence, level, phase across blocks."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.tones import (
    RING,
    RINGBACK_EU,
    RINGBACK_US,
    ToneGenerator,
    TonePattern,
    ToneSegment,
    ringback,
    steady_tone,
)


def peaks_hz(x: np.ndarray, rate: int, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    bins: list[int] = []
    for k in np.argsort(spectrum)[::-1]:
        if all(abs(int(k) - b) > 3 for b in bins):
            bins.append(int(k))
        if len(bins) == count:
            break
    return sorted(b * rate / len(x) for b in bins)


def on_off_ms(x: np.ndarray, rate: int) -> list[bool]:
    """Per 10 ms window: is the tone on?"""
    win = rate // 100
    energy = np.square(x[: len(x) // win * win].reshape(-1, win)).mean(axis=1)
    return [bool(on) for on in energy > 1e-4]


def test_blocks_of_any_size_give_the_same_signal_as_one_block() -> None:
    for pattern in (RINGBACK_EU, RING, steady_tone(1000.0)):
        whole = ToneGenerator(pattern, 16000).next(16000 * 6)
        gen = ToneGenerator(pattern, 16000)
        rng = np.random.default_rng(3)
        parts, produced = [], 0
        while produced < len(whole):
            n = min(int(rng.integers(1, 900)), len(whole) - produced)
            parts.append(gen.next(n))
            produced += n
        assert np.array_equal(np.concatenate(parts), whole)


def test_eu_ringback_is_425_hz_one_second_on_four_off() -> None:
    rate = 8000
    x = ToneGenerator(ringback("eu"), rate).next(rate * 10)
    assert peaks_hz(x[:rate], rate, 1) == [pytest.approx(425, abs=1)]
    windows = on_off_ms(x, rate)
    expected = ([True] * 100 + [False] * 400) * 2
    assert sum(a != b for a, b in zip(windows, expected, strict=True)) <= 2  # ramp edges only
    assert ringback("eu") is RINGBACK_EU


def test_us_ringback_is_440_plus_480_two_seconds_on_four_off() -> None:
    rate = 16000
    x = ToneGenerator(ringback("us"), rate).next(rate * 6)
    assert peaks_hz(x[: rate * 2], rate, 2) == [
        pytest.approx(440, abs=1),
        pytest.approx(480, abs=1),
    ]
    windows = on_off_ms(x, rate)
    assert sum(windows) == pytest.approx(200, abs=2) and not any(windows[205:])
    assert ringback("us") is RINGBACK_US


def test_ring_tone_warbles_between_two_tones_then_pauses() -> None:
    rate = 16000
    x = ToneGenerator(RING, rate).next(rate * 3)
    assert peaks_hz(x[:rate], rate, 2) == [pytest.approx(800, abs=2), pytest.approx(1000, abs=2)]
    assert np.max(np.abs(x[rate + 100 :])) == 0.0  # 1 s on, 2 s off


def test_level_and_no_clicks_at_the_cadence_edges() -> None:
    rate = 8000
    pattern = TonePattern((ToneSegment(200, (425.0,)), ToneSegment(300)), level_dbfs=-6.0)
    x = ToneGenerator(pattern, rate).next(rate * 2)
    amplitude = 10 ** (-6 / 20)
    assert np.max(np.abs(x)) == pytest.approx(amplitude, rel=0.01)
    # The steepest step is that of the sine itself: ramps, not jumps, at the on/off edges.
    assert np.max(np.abs(np.diff(x))) <= amplitude * 2 * np.pi * 425 / rate * 1.05


def test_steady_test_tone_has_its_level_and_frequency() -> None:
    x = ToneGenerator(steady_tone(1000.0, level_dbfs=-20.0), 48000).next(48000)
    assert np.max(np.abs(x)) == pytest.approx(0.1, rel=1e-3)
    assert peaks_hz(x, 48000, 1) == [pytest.approx(1000, abs=1)]
    assert x.dtype == np.float32


def test_reset_starts_over_and_empty_patterns_are_refused() -> None:
    gen = ToneGenerator(RINGBACK_EU, 8000)
    first = gen.next(400)
    gen.reset()
    assert np.array_equal(gen.next(400), first)
    with pytest.raises(ValueError):
        TonePattern(())
