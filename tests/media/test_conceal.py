"""Pitch-repetition concealment (G.711 Appendix I style): quality, fade-out, seamless joins."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from speech_quality import speech

from softphone.media.conceal import PitchConcealer
from softphone.media.stretch import pitch_period

RATES = (8000, 16000, 48000)
Pcm = npt.NDArray[np.float32]


def voiced_frames(x: Pcm, sample_rate: int) -> list[int]:
    """Indices i of 20 ms frames inside steady voiced speech (before, across and after i)."""
    frame = sample_rate // 50
    span = round(0.035 * sample_rate)
    found = []
    for i in range(3, len(x) // frame - 3):
        around = x[i * frame - frame : (i + 2) * frame]
        if np.sqrt(np.mean(around.astype(np.float64) ** 2)) < 0.03:
            continue
        pieces = (
            around,
            x[i * frame - span : i * frame],
            x[(i + 1) * frame : (i + 1) * frame + span],
        )
        if min(pitch_period(p, sample_rate)[1] for p in pieces) > 0.9:
            found.append(i)
    return found


def played_up_to(concealer: PitchConcealer, x: Pcm, frame_index: int, frame: int) -> None:
    for j in range(max(0, frame_index - 4), frame_index):
        concealer.remember(x[j * frame : (j + 1) * frame])


def max_step(x: npt.ArrayLike) -> float:
    return float(np.abs(np.diff(np.asarray(x, dtype=np.float64))).max())


@pytest.mark.parametrize("sample_rate", RATES)
def test_concealing_20ms_of_voiced_speech_beats_silence(sample_rate: int) -> None:
    x = speech(sample_rate)
    frame = sample_rate // 50
    indices = voiced_frames(x, sample_rate)
    assert len(indices) >= 40
    signal_energy = error_energy = first_signal = first_error = 0.0
    better = 0
    half = frame // 2
    for i in indices:
        concealer = PitchConcealer(sample_rate)
        played_up_to(concealer, x, i, frame)
        guess = concealer.conceal(frame).astype(np.float64)
        truth = x[i * frame : (i + 1) * frame].astype(np.float64)
        signal_energy += float(truth @ truth)  # = the error of silence substitution
        error_energy += float((truth - guess) @ (truth - guess))
        better += float((truth - guess) @ (truth - guess)) < float(truth @ truth)
        first_signal += float(truth[:half] @ truth[:half])
        first_error += float((truth - guess)[:half] @ (truth - guess)[:half])
    snr_db = 10 * np.log10(signal_energy / error_energy)
    assert snr_db > 3.0  # silence substitution: 0 dB. Measured 3.5-4.0 dB.
    assert 10 * np.log10(first_signal / first_error) > 5.0  # first 10 ms: measured 6.4-7.2 dB
    assert better >= 0.75 * len(indices)


@pytest.mark.parametrize("sample_rate", RATES)
def test_periodic_signal_is_continued_almost_exactly(sample_rate: int) -> None:
    period = round(0.007 * sample_rate)  # exact integer period
    n = sample_rate // 10
    phase = 2 * np.pi * np.arange(n) / period
    x = (0.4 * np.sin(phase) + 0.2 * np.sin(3 * phase + 1)).astype(np.float32)
    frame = sample_rate // 100  # 10 ms: no attenuation yet
    concealer = PitchConcealer(sample_rate)
    concealer.remember(x[: 5 * frame])
    guess = concealer.conceal(frame)
    np.testing.assert_allclose(guess, x[5 * frame : 6 * frame], atol=1e-4)


@pytest.mark.parametrize("sample_rate", RATES)
def test_no_discontinuity_at_gap_start_or_merge(sample_rate: int) -> None:
    x = speech(sample_rate)
    frame = sample_rate // 50
    for i in voiced_frames(x, sample_rate)[::4]:
        for lost in (1, 2):
            concealer = PitchConcealer(sample_rate)
            played_up_to(concealer, x, i, frame)
            concealed = []
            for _ in range(lost):
                concealed.append(concealer.conceal(frame))
                concealer.remember(concealed[-1])
            merged = concealer.merge(x[(i + lost) * frame : (i + lost + 1) * frame])
            assert not concealer.concealing
            heard = np.concatenate([x[(i - 1) * frame : i * frame], *concealed, merged])
            truth = x[(i - 1) * frame : (i + lost + 1) * frame]
            assert max_step(heard) <= 1.1 * max_step(truth), (i, lost)
            # After the merge's cross-fade the frame is the real one, untouched.
            fade = round(min(0.004 + 0.004 * (2 * lost - 1), 0.010) * sample_rate)  # App. I
            np.testing.assert_array_equal(
                merged[fade:], x[(i + lost) * frame + fade : (i + lost + 1) * frame]
            )


@pytest.mark.parametrize("sample_rate", RATES)
def test_sine_gap_joins_without_a_click(sample_rate: int) -> None:
    """230 Hz has no integer period: the joins must still be smooth at 8, 16 and 48 kHz."""
    omega = 2 * np.pi * 230.0 / sample_rate
    n = sample_rate // 5
    x = (0.5 * np.sin(omega * np.arange(n))).astype(np.float64)
    frame = sample_rate // 50
    concealer = PitchConcealer(sample_rate)
    for j in range(3):
        concealer.remember(x[j * frame : (j + 1) * frame].astype(np.float32))
    gap = np.concatenate([concealer.conceal(frame // 2), concealer.conceal(frame - frame // 2)])
    concealer.remember(gap)
    merged = concealer.merge(x[4 * frame : 5 * frame].astype(np.float32))
    heard = np.concatenate([x[2 * frame : 3 * frame], gap, merged])
    sine_step = 0.5 * 2 * np.sin(omega / 2)  # the largest step a 0.5 sine takes
    assert max_step(heard) <= 1.1 * sine_step
    # The gap start follows the last played sample like the sine does.
    assert abs(float(gap[0]) - x[3 * frame - 1]) <= 1.1 * sine_step


@pytest.mark.parametrize("sample_rate", RATES)
def test_long_gap_fades_to_zeros_by_60ms_and_merge_fades_in(sample_rate: int) -> None:
    x = speech(sample_rate)
    frame = sample_rate // 50
    ten_ms = sample_rate // 100
    i = voiced_frames(x, sample_rate)[5]
    concealer = PitchConcealer(sample_rate)
    played_up_to(concealer, x, i, frame)
    out = np.concatenate([concealer.conceal(frame) for _ in range(6)]).astype(np.float64)  # 120 ms
    rms = [float(np.sqrt(np.mean(out[k * ten_ms : (k + 1) * ten_ms] ** 2))) for k in range(12)]
    history_rms = float(
        np.sqrt(np.mean(x[i * frame - 2 * ten_ms : i * frame].astype(np.float64) ** 2))
    )
    assert rms[0] > 0.5 * history_rms
    assert rms[0] > rms[2] > rms[4] > 0
    assert rms[5] < 0.2 * rms[0]  # 50-60 ms: gain from 0.2 down to 0
    assert not np.any(out[6 * ten_ms :])  # silence (exact zeros) from 60 ms on
    assert concealer.concealed_samples == 6 * frame
    real = x[(i + 6) * frame : (i + 7) * frame]
    merged = concealer.merge(real)
    fade = ten_ms  # 4 ms + 4 ms per further 10 ms, at most 10 ms
    assert merged[0] == 0.0
    assert np.all(np.abs(merged[:fade]) <= np.abs(real[:fade]) + 1e-7)
    np.testing.assert_array_equal(merged[fade:], real[fade:])
    assert max_step(merged) <= max_step(np.concatenate([[0.0], real]))


@pytest.mark.parametrize("sample_rate", RATES)
def test_more_periods_are_repeated_after_10_and_20_ms(sample_rate: int) -> None:
    """Two different periods in the history: the output uses the older one after 10 ms."""
    period = round(0.009 * sample_rate)  # 9 ms: twice that is beyond the 15 ms search
    history = np.zeros(round(0.04875 * sample_rate) + period, dtype=np.float64)
    history[:] = 0.3 * np.sin(2 * np.pi * np.arange(len(history)) / period)
    history[-period:] *= 0.5  # the last period is quieter than the ones before it
    concealer = PitchConcealer(sample_rate)
    concealer.remember(history.astype(np.float32))
    out = np.abs(concealer.conceal(round(0.040 * sample_rate)).astype(np.float64))
    ms = sample_rate // 1000
    # Up to 10 ms: the last (quiet) period, repeated. Its first quarter carries the offset of the
    # join and its last quarter fades into the (loud) quarter before it, so look in between.
    assert float(out[round(2.5 * ms) : round(6.5 * ms)].max()) == pytest.approx(0.15, rel=0.03)
    # At 10 ms (1 ms into the period) the loop becomes [loud, quiet], the older first: the loud
    # one plays at 10-18 ms (gain 1.0 down to 0.84).
    assert 0.25 < float(out[11 * ms : 17 * ms].max()) <= 0.3
    # At 20 ms (11 ms into that loop) it becomes [loud, loud, quiet]: loud until 27 ms (gain 0.8
    # down to 0.66), then the quiet one (gain 0.64 down to 0.54).
    assert float(out[round(20.5 * ms) : 26 * ms].max()) > 0.18
    assert float(out[round(28.5 * ms) : 33 * ms].max()) < 0.11


def test_concealment_state_resets_after_merge_or_real_audio() -> None:
    sample_rate = 8000
    x = (0.4 * np.sin(2 * np.pi * np.arange(8000) / 50)).astype(np.float32)
    frame = sample_rate // 50
    concealer = PitchConcealer(sample_rate)
    concealer.remember(x[: 3 * frame])
    for _ in range(4):
        concealer.remember(concealer.conceal(frame))
    assert concealer.concealing and concealer.concealed_samples == 4 * frame
    # Real audio remembered without merge() (more than was concealed) ends the loss too.
    concealer.remember(x[: 2 * frame])
    assert not concealer.concealing
    fresh = concealer.conceal(frame)
    assert concealer.concealed_samples == frame
    assert float(np.abs(fresh[: sample_rate // 100]).max()) > 0.39  # full level again
    concealer.remember(fresh)
    concealer.remember(concealer.merge(x[:frame]))
    assert not concealer.concealing
    assert float(np.abs(concealer.conceal(frame)[:80]).max()) > 0.39


def test_no_history_conceals_silence_and_merge_outside_loss_is_identity() -> None:
    concealer = PitchConcealer(16000)
    assert not np.any(concealer.conceal(320))
    frame = np.linspace(-0.5, 0.5, 320, dtype=np.float32)
    other = PitchConcealer(16000)
    np.testing.assert_array_equal(other.merge(frame), frame)
    assert concealer.conceal(0).shape == (0,)
    assert concealer.conceal(1000).dtype == np.float32


@pytest.mark.parametrize("sample_rate", [11025, 22050, 44100])
def test_any_rate_and_call_pattern_gives_the_lengths_asked_for(sample_rate: int) -> None:
    rng = np.random.default_rng(sample_rate)
    concealer = PitchConcealer(sample_rate)
    for _ in range(200):
        n = int(rng.integers(0, 2000))
        match int(rng.integers(0, 3)):
            case 0:
                concealer.remember(rng.normal(0.0, 0.1, n).astype(np.float32))
            case 1:
                out = concealer.conceal(n)
                assert len(out) == n and out.dtype == np.float32
                assert np.all(np.abs(out) < 1.0)
                concealer.remember(out)
            case _:
                out = concealer.merge(rng.normal(0.0, 0.1, n).astype(np.float32))
                assert len(out) == n and not concealer.concealing
