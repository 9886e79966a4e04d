"""Level meter: RMS/peak in dBFS and the peak hold that decays."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.levels import FLOOR_DBFS, LevelMeter, to_dbfs


def sine(amplitude: float, n: int = 1600, rate: int = 16000) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)


def test_full_scale_sine_reads_0_peak_and_minus_3_rms() -> None:
    levels = LevelMeter(16000).update(sine(1.0))
    assert levels.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert levels.rms_dbfs == pytest.approx(-3.01, abs=0.01)


def test_minus_20_dbfs_sine() -> None:
    levels = LevelMeter(16000).update(sine(0.1))
    assert levels.peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert levels.rms_dbfs == pytest.approx(-23.01, abs=0.01)


def test_silence_reads_the_floor_not_minus_infinity() -> None:
    meter = LevelMeter(8000)
    levels = meter.update(np.zeros(160, dtype=np.float32))
    assert levels.rms_dbfs == levels.peak_dbfs == FLOOR_DBFS
    assert meter.update(np.zeros(0, dtype=np.float32)) is levels
    assert to_dbfs(0.0) == FLOOR_DBFS and to_dbfs(1e-9) == FLOOR_DBFS


def test_peak_hold_holds_then_decays_and_a_new_peak_resets_it() -> None:
    meter = LevelMeter(8000, hold_ms=500, decay_db_per_s=20.0)
    block = 800  # 100 ms
    meter.update(sine(1.0, block, 8000))
    quiet = sine(0.001, block, 8000)  # -60 dBFS
    holds = [meter.update(quiet).peak_hold_dbfs for _ in range(10)]
    assert holds[:5] == pytest.approx([0.0] * 5, abs=0.01)  # held for 500 ms
    assert holds[5] == pytest.approx(-2.0, abs=0.01)  # then 20 dB/s: 2 dB per 100 ms
    assert holds[9] == pytest.approx(-10.0, abs=0.01)
    assert meter.update(quiet).peak_dbfs == pytest.approx(-60.0, abs=0.1)
    assert meter.update(sine(0.5, block, 8000)).peak_hold_dbfs == pytest.approx(-6.02, abs=0.01)


def test_decay_stops_at_the_signal_and_holds_it_anew() -> None:
    meter = LevelMeter(8000, hold_ms=100, decay_db_per_s=100.0)
    meter.update(sine(1.0, 800, 8000))
    steady = sine(0.5, 800, 8000)  # -6 dB
    holds = [meter.update(steady).peak_hold_dbfs for _ in range(5)]
    assert holds[-1] == pytest.approx(-6.02, abs=0.01)
    meter.reset()
    assert meter.last.peak_hold_dbfs == FLOOR_DBFS
