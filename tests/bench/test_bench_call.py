"""The call benchmarks: the click detector, the click/tap audio doubles, a short latency run
through two real Phones on 127.0.0.1, /proc CPU parsing, and the command line."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from softphone.bench.call import add_commands, run
from softphone.bench.call_latency import (
    RATE,
    ClickIO,
    TapIO,
    click,
    detect_clicks,
    match_clicks,
    measure_latency,
)
from softphone.bench.call_peers import cpu_seconds, parse_stat_cpu


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="softphone bench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# ------------------------------------------------------------------ the click detector


def test_detector_finds_each_click_at_its_sample_in_noise_at_any_gain() -> None:
    rng = np.random.default_rng(1)
    signal = (0.01 * rng.standard_normal(3 * RATE)).astype(np.float32)
    template = click()
    positions = [4_801, 30_000, 70_123, 120_500]
    for gain, at in zip((1.0, 0.3, 1.6, 0.5), positions, strict=True):
        signal[at : at + len(template)] += gain * template
    assert detect_clicks(signal, template) == positions


def test_detector_ignores_silence_noise_and_tones() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(RATE) / RATE
    noise = (0.2 * rng.standard_normal(RATE)).astype(np.float32)
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    template = click()
    assert detect_clicks(np.zeros(RATE, dtype=np.float32), template) == []
    assert detect_clicks(noise, template) == []
    assert detect_clicks(tone, template) == []
    assert detect_clicks(template[:100], template) == []  # shorter than the click


def test_detector_reports_a_click_once_even_when_smeared() -> None:
    template = click()
    signal = np.zeros(RATE, dtype=np.float32)
    at = 10_000
    signal[at : at + len(template)] += template
    signal[at + 3 : at + 3 + len(template)] += 0.5 * template  # an echo 3 samples later
    found = detect_clicks(signal, template)
    assert len(found) == 1 and abs(found[0] - at) <= 3


def test_matching_pairs_each_click_with_the_first_detection_after_it() -> None:
    delays, extra = match_clicks([1.0, 2.0, 3.0], [0.5, 1.04, 2.05, 2.06, 3.9], window_s=0.3)
    assert [round(d, 3) for d in delays] == [0.04, 0.05]  # the click at 3.0 was never heard
    assert extra == 3  # 0.5 came before any click; 2.06 is a second hit; 3.9 is too late


# ------------------------------------------------------------------ the audio doubles


def test_click_io_puts_clicks_at_their_positions_across_reads() -> None:
    template = click()
    mic = ClickIO([1000, 2400], end=4000)
    captured = []
    for now in (8.0, 8.0125, 8.03125, 8.0546875, 8.09375):  # reads split the clicks
        mic.frames_wanted(now)
        captured.append(mic.read())
    audio = np.concatenate(captured)
    assert len(audio) == int(0.09375 * RATE) and mic.done.is_set()
    np.testing.assert_array_equal(audio[1000 : 1000 + len(template)], template)
    np.testing.assert_array_equal(audio[2400 : 2400 + len(template)], template)
    assert not audio[:1000].any() and not audio[1000 + len(template) : 2400].any()
    assert mic.capture_time(2400) == pytest.approx(8.0 + 2400 / RATE)


def test_tap_io_keeps_what_it_renders_with_the_time_of_each_block() -> None:
    tap = TapIO()
    tap.frames_wanted(5.0)
    first = tap.frames_wanted(5.01)
    tap.write(np.ones(first, dtype=np.float32))
    second = tap.frames_wanted(5.02)
    tap.write(np.full(second, 2.0, dtype=np.float32))
    assert len(tap.rendered()) == first + second and tap.rendered()[first] == 2.0
    assert tap.render_time(0) == pytest.approx(5.01)
    assert tap.render_time(first + 48) == pytest.approx(5.02 + 48 / RATE)


# ------------------------------------------------------------------ a short real measurement


async def test_latency_of_three_clicks_through_two_phones_is_sane() -> None:
    result = await measure_latency("opus", clicks=3, interval_s=0.3, warmup_s=0.6)
    assert result.found == 3 and result.extra == 0, result
    # At least the codec's look-ahead and the 5 ms pump; far below a second on loopback.
    assert all(2.0 < d < 150.0 for d in result.delays_ms), result.delays_ms
    assert result.jitter_buffer_ms is not None


def test_latency_command_prints_json_for_one_codec() -> None:
    out = io.StringIO()
    status = run(
        parse(["latency", "--codec", "PCMU", "--clicks", "3", "--interval-ms", "300", "--json"]),
        out=out,
    )
    payload = json.loads(out.getvalue())
    (result,) = payload["results"]
    assert result["codec"] == "PCMU" and result["clicks"] == 3 and result["found"] == 3
    assert 2.0 < result["mean_ms"] < 150.0 and result["max_ms"] >= result["mean_ms"]
    assert status == (0 if result["p95_ms"] <= 60.0 else 1)


# ------------------------------------------------------------------ CPU time and the command line


def test_stat_cpu_is_utime_plus_stime_after_the_command_name() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    # The command name may hold spaces and parentheses: fields are counted after the last ')'.
    text = f"4242 (py (x) y) S 1 2 3 4 5 6 7 8 9 10 {3 * ticks} {ticks // 2} 0 0 20 0 4 0 99"
    assert parse_stat_cpu(text) == pytest.approx(3.5)
    assert cpu_seconds(os.getpid()) > 0.0


def test_arguments_and_their_defaults() -> None:
    cpu = parse(["cpu"])
    assert (cpu.command, cpu.seconds, cpu.json, cpu.workdir) == ("cpu", 60.0, False, None)
    assert cpu.speech == Path("tests/data/audio/speech16k.wav")
    device = parse(["device", "--seconds", "5", "--json", "--workdir", "/tmp/x"])
    assert (device.seconds, device.json, device.workdir) == (5.0, True, Path("/tmp/x"))
    latency = parse(["latency", "--codec", "opus", "--codec", "G722"])
    assert (latency.clicks, latency.interval_ms, latency.codec) == (30, 400, ["opus", "G722"])
    for bad in (
        ["cpu", "--seconds", "0"],
        ["latency", "--interval-ms", "50"],
        ["latency", "--codec", "gsm"],
        ["latency", "--clicks", "x"],
    ):
        with pytest.raises(SystemExit):
            parse(bad)


def test_a_missing_speech_file_is_a_usage_error_before_any_peer_starts(tmp_path: Path) -> None:
    args = parse(["cpu", "--speech", str(tmp_path / "nope.wav"), "--workdir", str(tmp_path / "w")])
    assert run(args, out=io.StringIO()) == 2
    assert not (tmp_path / "w").exists()


def test_cpu_report_ratios_compare_softphone_with_baresip() -> None:
    from softphone.bench.call_cpu import CallCpu, CpuReport

    ours = CallCpu(
        label="softphone -> baresip",
        caller="softphone",
        callee="baresip",
        seconds=60.0,
        caller_cpu_s=3.0,
        callee_cpu_s=1.5,
    )
    theirs = CallCpu(
        label="baresip -> baresip",
        caller="baresip",
        callee="baresip",
        seconds=60.0,
        caller_cpu_s=1.0,
        callee_cpu_s=2.0,
    )
    report = CpuReport(
        softphone_call=ours,
        baresip_call=theirs,
        softphone_packets_sent=3000,
        softphone_packets_received=2990,
    )
    payload = report.to_json()
    assert payload["ratio_softphone_vs_baresip_same_call"] == 2.0
    assert payload["ratio_softphone_vs_baresip_caller"] == 3.0
    assert payload["ratio_softphone_vs_baresip_mean"] == 2.0
    assert payload["calls"][0]["caller_percent"] == 5.0
    assert "softphone / baresip, same call:           2.00" in report.table()


def test_device_xruns_count_every_flag_and_ring_fault_over_the_call_only() -> None:
    from dataclasses import replace

    from softphone.bench.call_device import DeviceCounters, DeviceReport

    zero = DeviceCounters(
        callbacks=0,
        frames_played=0,
        frames_captured=0,
        input_underflows=0,
        input_overflows=0,
        output_underflows=0,
        output_overflows=0,
        ring_underruns=0,
        ring_overruns=0,
        missing_samples=0,
        dropped_samples=0,
        callback_errors=0,
    )
    before = replace(zero, callbacks=10, frames_played=4800, output_underflows=1)
    after = replace(zero, callbacks=110, frames_played=52800, output_underflows=2, ring_overruns=3)
    report = DeviceReport(
        seconds=1.0,
        sample_rate=48000,
        block=480,
        latency_s=(0.0, 0.02),
        counts=after - before,
        speaker_dbfs=-20.0,
        packets_received=50,
        packets_sent=50,
    )
    assert report.xruns == 4 and report.pace == 1.0  # the underflow before the call is not counted
    assert report.to_json()["xruns"] == 4 and "xruns: 4" in report.table()
