"""Streaming resampling (numpy polyphase for whole factors, libswresample for the rest):
frequency, amplitude, length, latency, and the two paths against each other."""

from __future__ import annotations

import os

import numpy as np
import pytest

from softphone.media.resample import Resampler, resample


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def in_blocks(r: Resampler, x: np.ndarray, block: int) -> np.ndarray:
    parts = [r.process(x[i : i + block]) for i in range(0, len(x), block)]
    parts.append(r.flush())
    return np.concatenate(parts)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window))
    k = int(np.argmax(spectrum))
    # Parabolic interpolation around the peak bin for sub-bin accuracy.
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_identity_path_passes_samples_through_unchanged() -> None:
    r = Resampler(16000, 16000)
    x = sine(440, 16000, 0.1)
    assert r.is_identity
    assert np.array_equal(r.process(x), x) and r.flush().shape == (0,)


def test_1khz_sine_keeps_frequency_and_amplitude_8k_48k_8k() -> None:
    x = sine(1000, 8000, 2.0)
    up = in_blocks(Resampler(8000, 48000), x, 160)  # 20 ms blocks, as a call would
    down = in_blocks(Resampler(48000, 8000), up, 960)
    assert len(up) == 6 * len(x) and len(down) == len(x)
    steady_up, steady = up[4800:-4800], down[800:-800]
    assert dominant_hz(steady_up, 48000) == pytest.approx(1000, abs=0.5)
    assert dominant_hz(steady, 8000) == pytest.approx(1000, abs=0.5)
    expected = 0.5 / np.sqrt(2)
    assert rms(steady_up) == pytest.approx(expected, rel=0.01)  # within 0.1 dB
    assert rms(steady) == pytest.approx(expected, rel=0.01)
    # And the signal itself comes back: time-aligned, nothing but filter ripple in the way.
    assert np.max(np.abs(steady - x[800:-800])) < 0.02


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "block"),
    [
        (8000, 48000, 160),
        (48000, 8000, 480),
        (44100, 16000, 441),
        (16000, 48000, 37),
        (48000, 44100, 113),
    ],
)
def test_output_length_tracks_the_ratio_over_many_small_blocks(
    in_rate: int, out_rate: int, block: int
) -> None:
    r = Resampler(in_rate, out_rate)
    block_pcm = np.zeros(block, dtype=np.float32)
    lag = []
    for _ in range(3000):
        r.process(block_pcm)
        lag.append(r.samples_in * out_rate / in_rate - r.samples_out)
    produced = r.samples_out
    tail = r.flush()
    total_in = 3000 * block
    # The shortfall is a constant (the filter tail), not a drift that grows with time.
    assert max(lag[100:]) - min(lag[100:]) <= 2 * out_rate / in_rate + 2
    assert max(lag) <= out_rate * 0.0025  # never more than 2.5 ms behind
    assert abs(total_in * out_rate / in_rate - (produced + len(tail))) <= 1  # flush pays it back


def test_latency_is_the_held_back_tail_and_output_is_time_aligned() -> None:
    impulse = np.zeros(8000, dtype=np.float32)
    impulse[4000] = 1.0
    r = Resampler(8000, 48000)
    out = in_blocks(r, impulse, 160)
    assert int(np.argmax(out)) == 4000 * 6  # swresample compensates its own filter delay
    r = Resampler(8000, 48000)
    for _ in range(50):
        r.process(np.zeros(160, dtype=np.float32))
    assert r.held_back == 96  # the streaming latency: 96 / 48000 = 2.0 ms
    r = Resampler(48000, 16000)
    for _ in range(50):
        r.process(np.zeros(960, dtype=np.float32))
    assert 15 <= r.held_back <= 16  # 1.0 ms at most


def test_one_shot_resample_of_a_whole_signal() -> None:
    x = sine(300, 44100, 1.0)
    y = resample(x, 44100, 16000)
    assert len(y) == 16000
    assert dominant_hz(y[1000:-1000], 16000) == pytest.approx(300, abs=0.5)
    assert np.array_equal(resample(x, 44100, 44100), x)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 8000)


def test_resamplers_start_no_threads_of_their_own() -> None:
    # A call has two resamplers; a filter graph left to itself starts a worker per core.
    def threads() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/task"))

    before = threads()
    made = [Resampler(8000, 48000), Resampler(48000, 8000), Resampler(16000, 48000)]
    for r in made:
        r.process(np.zeros(r.in_rate // 50, dtype=np.float32))
    assert threads() == before  # while they are in use, not only after they are gone


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(48000, 8000), (8000, 48000), (48000, 16000), (44100, 48000), (48000, 44100)],
)
def test_silence_skips_the_graph_and_gives_the_same_samples(in_rate: int, out_rate: int) -> None:
    # Speech-like bursts with silence between them, in uneven blocks (a paced clock's 5 ms
    # ticks are not all the same length): the fast path must not move a single sample.
    tone = sine(700, in_rate, 0.1)
    quiet = np.zeros(in_rate // 5, dtype=np.float32)
    x = np.concatenate((quiet, tone, quiet, quiet, tone, quiet))
    blocks = [in_rate // 200 + d for d in (0, 1, -1, 7, 0, -3)]

    def run(skip: bool) -> tuple[np.ndarray, int]:
        r = Resampler(in_rate, out_rate)
        r.skip_silence = skip
        parts, i, n = [], 0, 0
        while i < len(x):
            parts.append(r.process(x[i : i + blocks[n % len(blocks)]]))
            i += blocks[n % len(blocks)]
            n += 1
        counted = r.samples_out
        parts.append(r.flush())
        return np.concatenate(parts), counted + len(parts[-1])

    fast, fast_count = run(True)
    graph, graph_count = run(False)
    assert len(fast) == len(graph) == fast_count == graph_count
    assert np.array_equal(fast, graph)
    assert np.max(np.abs(fast)) > 0.3  # the tone got through, not just zeros


def test_silence_fast_path_is_taken_once_the_filter_has_settled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = Resampler(48000, 8000)
    pushed: list[int] = []
    real_push = r._push
    monkeypatch.setattr(r, "_push", lambda block: (pushed.append(len(block)), real_push(block))[1])
    for _ in range(50):  # 250 ms of silence in 5 ms blocks
        assert not r.process(np.zeros(240, dtype=np.float32)).any()
    assert len(pushed) == 4  # 20 ms to settle; after that not one block went to the graph


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 48000), (48000, 8000), (16000, 48000)])
def test_whole_factors_in_numpy_match_swresample_in_the_speech_band(
    in_rate: int, out_rate: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    x = sine(440, in_rate, 1.0, 0.3) + sine(2900, in_rate, 1.0, 0.2)
    x += (0.02 * rng.standard_normal(len(x))).astype(np.float32)  # some of everything
    x = np.asarray(x, dtype=np.float32)

    def run(numpy_path: bool) -> np.ndarray:
        monkeypatch.setattr(Resampler, "whole_factors_in_numpy", numpy_path)
        r = Resampler(in_rate, out_rate)
        assert (r._resampler is None) is numpy_path  # the path asked for is the one taken
        return in_blocks(r, x, in_rate // 50)

    ours, theirs = run(True), run(False)
    assert len(ours) == len(theirs) == len(x) * out_rate // in_rate
    # Same signal, same alignment: only the two filters' slightly different edges differ,
    # which the white noise's share near the lower rate's Nyquist frequency shows.
    band = min(in_rate, out_rate)
    spectrum = np.fft.rfft((ours - theirs)[out_rate // 10 : -out_rate // 10])
    freqs = np.fft.rfftfreq(len(ours) - 2 * (out_rate // 10), 1 / out_rate)
    low = np.abs(spectrum[freqs < 0.4 * band])
    reference = np.abs(np.fft.rfft(theirs[out_rate // 10 : -out_rate // 10]))[freqs < 0.4 * band]
    assert np.sqrt(np.sum(low**2) / np.sum(reference**2)) < 0.01  # -40 dB below the signal


def test_whole_factor_upsampling_leaves_no_images_of_the_speech_band() -> None:
    x = sine(3000, 8000, 1.0)
    y = Resampler(8000, 48000).process(x)[4800:-4800]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 48000)
    assert dominant_hz(y, 48000) == pytest.approx(3000, abs=0.5)
    assert 20 * np.log10(spectrum[freqs > 4500].max() / spectrum.max()) < -70


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 48000), (48000, 8000), (16000, 48000)])
def test_resamplers_share_their_taps_but_not_their_state(in_rate: int, out_rate: int) -> None:
    # The filter taps are made once per factor and shared, read-only, by every resampler: two
    # calls resampling at once, block by block interleaved, each get what one alone would.
    x, y = sine(440, in_rate, 0.3), sine(1000, in_rate, 0.3, amplitude=0.3)
    block = in_rate // 50
    alone_x = in_blocks(Resampler(in_rate, out_rate), x, block)
    alone_y = in_blocks(Resampler(in_rate, out_rate), y, block)
    rx, ry = Resampler(in_rate, out_rate), Resampler(in_rate, out_rate)
    parts_x, parts_y = [], []
    for i in range(0, len(x), block):
        parts_x.append(rx.process(x[i : i + block]))
        parts_y.append(ry.process(y[i : i + block]))
    assert np.array_equal(np.concatenate([*parts_x, rx.flush()]), alone_x)
    assert np.array_equal(np.concatenate([*parts_y, ry.flush()]), alone_y)
    taps_x, taps_y = rx._poly._taps, ry._poly._taps  # type: ignore[union-attr]
    assert taps_x is taps_y and not taps_x.flags.writeable


def test_shared_taps_are_the_filter_each_resampler_made_for_itself() -> None:
    # The cached taps against the formula they came from (a Kaiser-windowed sinc, each
    # phase normalised to unity gain): caching changed where they live, not what they are.
    from softphone.media.polyphase import HALF_TAPS, Downsampler, Upsampler, _kernel

    j = np.arange(2 * HALF_TAPS)[:, None]
    p = np.arange(6)[None, :]
    up = _kernel(p / 6 + HALF_TAPS - 1 - j)
    assert np.array_equal(
        Upsampler(6)._taps, (up / up.sum(axis=0, keepdims=True)).astype(np.float32)
    )
    offsets = (HALF_TAPS * 6 - 1 - np.arange(2 * HALF_TAPS * 6 - 1)) / 6
    down = _kernel(offsets)
    assert np.array_equal(Downsampler(6)._taps, (down / down.sum()).astype(np.float32))
