"""The RTSP benchmarks' arithmetic and parsing (no server, no player, no FFmpeg is started)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from softphone.bench.rtsp import EXIT_ERROR, add_commands, command_line, run
from softphone.bench.rtsp_report import (
    FirstFrameReport,
    PeerTimes,
    RenderReport,
    Spread,
    count_jack_xruns,
    cpu_rate,
    first_frame_ms,
    quantile,
    ratio,
)
from softphone.bench.rtsp_runs import child_env, ffmpeg_argv


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="softphone bench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# ------------------------------------------------------------------ statistics


def test_quantile_interpolates_like_numpy_default() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert quantile(values, 0.5) == 3.0
    assert quantile(values, 0.0) == 1.0 and quantile(values, 1.0) == 5.0
    assert quantile(values, 0.9) == pytest.approx(4.6)  # numpy.quantile(..., 0.9)
    assert quantile([1.0, 2.0], 0.5) == 1.5
    assert quantile([7.0], 0.9) == 7.0


def test_quantile_rejects_no_values_and_q_outside_0_1() -> None:
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        quantile([1.0], 1.5)


def test_spread_counts_failures_and_summarises_the_rest() -> None:
    s = Spread.of([100.0, None, 300.0, 200.0])
    assert (s.runs, s.failed, s.median, s.low, s.high) == (4, 1, 200.0, 100.0, 300.0)
    assert s.p90 == pytest.approx(280.0)
    empty = Spread.of([None, None])
    assert (empty.runs, empty.failed, empty.median, empty.p90) == (2, 2, None, None)


def test_ratio_is_none_when_a_side_is_missing() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None and ratio(50.0, None) is None and ratio(1.0, 0.0) is None


def test_first_frame_ms_reads_only_the_first_frame_event() -> None:
    line = '{"event":"first_frame","ms":558.1,"width":640,"height":360,"codec":"h264"}'
    assert first_frame_ms(line) == 558.1
    assert first_frame_ms('{"event":"playing","transport":"tcp"}') is None
    assert first_frame_ms("first picture after 558 ms") is None
    assert first_frame_ms('{"event":"first_frame","ms":"soon"}') is None
    assert first_frame_ms("[1, 2]") is None


def test_cpu_rate_uses_the_samples_inside_the_window() -> None:
    samples = [(0.0, 0.0), (1.0, 0.9), (2.0, 1.1), (3.0, 1.3), (4.0, 1.5)]
    assert cpu_rate(samples, since_s=2.0) == pytest.approx(0.2)  # start-up cost left out
    assert cpu_rate(samples, since_s=0.0) == pytest.approx(0.375)
    assert cpu_rate(samples, since_s=4.0) is None  # one sample spans no time
    assert cpu_rate([], since_s=0.0) is None


# ------------------------------------------------------------------ reports


def _peer(name: str, times: list[float | None]) -> PeerTimes:
    return PeerTimes(name=name, argv=(name, "URL"), clock="wall", times_ms=tuple(times))


def _first_frame_report(ours: list[float | None], low: list[float | None]) -> FirstFrameReport:
    return FirstFrameReport(
        command="softphone bench rtsp-first-frame --runs 3",
        transport="tcp",
        holder=True,
        pycache=True,
        url="rtsp://127.0.0.1:1/h264",
        softphone=_peer("sp", ours),
        softphone_wall=_peer("sp-wall", [t + 30 if t is not None else None for t in ours]),
        ffmpeg=_peer("ff", [1000.0, 1200.0, 1100.0]),
        ffmpeg_low_delay=_peer("low", low),
    )


def test_first_frame_targets_compare_medians_of_the_same_run() -> None:
    met = _first_frame_report([400.0, 500.0, 600.0], [500.0, 600.0, 700.0])
    r = met.ratios(met.softphone)
    assert r["vs_ffmpeg_median"] == pytest.approx(500 / 1100)
    assert r["vs_low_delay_median"] == pytest.approx(500 / 600)
    assert met.met()
    slow = _first_frame_report([400.0, 700.0, 900.0], [500.0, 600.0, 700.0])
    assert not slow.met()  # 700/1100 > 0.5
    failed_run = _first_frame_report([400.0, None, 450.0], [500.0, 600.0, 700.0])
    assert not failed_run.met()  # a run without a picture misses whatever the medians say


def test_first_frame_report_prints_ratios_and_the_exact_commands() -> None:
    report = _first_frame_report([400.0, 500.0, 600.0], [100.0, 150.0, 200.0])
    table = report.table()
    assert "command: softphone bench rtsp-first-frame --runs 3" in table
    assert "3.33" in table  # 500 / 150 against the low-delay FFmpeg
    assert "MISSED (first_frame.ms)" in table
    assert "low: low URL" in table
    payload = report.to_json()
    assert payload["peers"]["sp"]["median_ms"] == 500.0
    assert payload["ratios"]["sp"]["vs_low_delay_median"] == pytest.approx(3.333, abs=1e-3)
    json.dumps(payload)  # serialisable as is


def test_first_frame_report_says_how_a_failed_peer_ended() -> None:
    from dataclasses import replace

    report = _first_frame_report([400.0, None, 450.0], [500.0, 600.0, 700.0])
    report = replace(
        report,
        softphone=replace(
            report.softphone, last_output="ModuleNotFoundError: No module named 'platformdirs'"
        ),
    )
    table = report.table()
    assert (
        "sp: 1 run(s) without a picture; its output ended: ModuleNotFoundError: No module named 'platformdirs'"
        in table
    )
    assert "low: 0 run(s)" not in table  # peers that never failed say nothing


def _render(
    stats: Mapping[str, object],
    samples: list[tuple[float, float]],
    call: Mapping[str, object] | None,
) -> RenderReport:
    return RenderReport(
        command="softphone bench rtsp-render --seconds 20",
        viewer_argv=("play",),
        duration_s=20.0,
        stats=stats,
        cpu_samples=tuple(samples),
        wall_s=20.3,
        showed_video=True,
        call=call,
    )


def test_render_ratios_count_from_the_first_picture() -> None:
    stats = {"video_frames": 451, "frames_shown": 450, "first_frame_ms": 2000.0}
    samples = [(0.5, 0.4), (2.5, 0.8), (20.0, 4.3), (20.2, 4.5)]
    report = _render(stats, samples, {"xruns": 0, "seconds": 35.0})
    assert report.played_s == pytest.approx(18.0)
    assert report.shown_ratio == pytest.approx(450 / 450)
    assert report.cpu_per_stream_s == pytest.approx(4.5 / 18.0)
    assert report.cpu_steady == pytest.approx((4.5 - 0.8) / (20.2 - 2.5))
    assert report.met()
    assert "drawn / source frames   1.000" in report.table()


def test_jack_xruns_are_counted_from_jackd_log_lines_and_shown_by_time() -> None:
    log = (
        "JackTimedDriver::Process XRun = 30 usec\n"
        "JackEngine::XRun: client = PortAudio was not finished, state = Running\n"
        "JackAudioDriver::ProcessGraphAsyncMaster: Process error\n"
        "JackEngine::XRun: client = PortAudio was not finished, state = Triggered\n"
    )
    assert count_jack_xruns(log) == 2
    assert count_jack_xruns("") == 0
    report = replace(
        _render({"frames_shown": 1}, [], {"xruns": 4}), jack_xruns_at=(-1.0, 0.8, math.inf)
    )
    assert "seen at before, 0.8, after exit s" in report.table()
    assert report.to_json()["jack_xruns_at_s"] == [-1.0, 0.8, None]


def test_render_misses_on_dropped_frames_cpu_or_xruns() -> None:
    good = {"video_frames": 450, "frames_shown": 450, "first_frame_ms": 2000.0}
    cheap = [(0.0, 0.0), (20.0, 4.0)]
    assert not _render({**good, "frames_shown": 300}, cheap, None).met()
    assert not _render(good, [(0.0, 0.0), (20.0, 12.0)], None).met()  # 12 / 18 > 0.6
    assert not _render(good, cheap, {"xruns": 2}).met()
    assert _render(good, cheap, None).met()
    assert _render({"frames_shown": 450}, cheap, None).shown_ratio is None  # no picture at all


# ------------------------------------------------------------------ command line


def test_commands_parse_with_their_defaults() -> None:
    first = parse(["rtsp-first-frame"])
    assert (first.runs, first.transport, first.seed, first.cold) == (10, "tcp", 1, False)
    assert (
        command_line(first) == "softphone bench rtsp-first-frame --runs 10 --transport tcp --seed 1"
    )
    raw = parse(["rtsp-first-frame", "--runs", "20", "--cold", "--no-pycache"])
    assert command_line(raw).endswith("--runs 20 --transport tcp --seed 1 --cold --no-pycache")
    render = parse(["rtsp-render", "--seconds", "8", "--no-call"])
    assert command_line(render) == "softphone bench rtsp-render --seconds 8 --no-call"
    with pytest.raises(SystemExit):
        parse(["rtsp-first-frame", "--runs", "0"])
    with pytest.raises(SystemExit):
        parse(["rtsp-render", "--seconds", "1"])


def test_child_env_caches_bytecode_in_the_workdir_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cached = child_env(tmp_path, pycache=True)
    assert "PYTHONDONTWRITEBYTECODE" not in cached
    assert cached["PYTHONPYCACHEPREFIX"] == str(tmp_path / "pycache")
    raw = child_env(tmp_path, pycache=False)
    assert raw["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in raw


def test_low_delay_ffmpeg_maps_the_video_so_that_it_can_end() -> None:
    argv = ffmpeg_argv("ffmpeg", "rtsp://127.0.0.1:1/h264", "tcp", low_delay=True)
    assert argv[argv.index("-probesize") + 1] == "32"
    assert argv[argv.index("-map") + 1] == "0:v:0"
    assert argv.index("-fflags") < argv.index("-i")  # input options come before the input
    assert "-fflags" not in ffmpeg_argv("ffmpeg", "rtsp://x/h264", "tcp", low_delay=False)


def test_render_refuses_a_missing_speech_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["rtsp-render", "--speech", "/nonexistent/speech.wav", "--workdir", str(tmp_path)])
    assert run(args) == EXIT_ERROR
    assert "no such file" in capsys.readouterr().err
