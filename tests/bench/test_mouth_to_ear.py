"""``softphone bench mouth-to-ear`` without JACK: where the clicks go, how blocks are written
and recorded by frame position, the delay arithmetic, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from softphone.bench.call import add_commands
from softphone.bench.call_latency import click
from softphone.bench.m2e_clicks import (
    ClickWriter,
    FrameRecorder,
    click_delays,
    click_schedule,
)
from softphone.bench.m2e_jack import jack_clients_of_process
from softphone.bench.mouth_to_ear import MouthToEarReport, PairResult

RATE = 48000
PERIOD = 480


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_schedule_is_seeded_half_a_second_to_a_second_apart_at_every_phase() -> None:
    positions = click_schedule(200, start=1_000, seed=7)
    gaps = np.diff([1_000, *positions])
    assert gaps.min() >= RATE // 2 and gaps.max() <= RATE
    assert click_schedule(200, start=1_000, seed=7) == positions
    assert click_schedule(200, start=1_000, seed=8) != positions
    # Not on a frame boundary in a fixed pattern: the phases in the card's period and in the
    # 20 ms packet spread out.
    assert len({p % PERIOD for p in positions}) > 150
    assert len({p % 960 for p in positions}) > 150
    with pytest.raises(ValueError):
        click_schedule(3, start=0, seed=1, min_gap_s=1.0, max_gap_s=0.5)


def test_writer_blocks_add_up_to_the_clicks_at_their_frames_across_block_edges() -> None:
    template = click(RATE)
    start = 123_456
    positions = [start + 100, start + 2 * PERIOD - 50, start + 5 * PERIOD + 7]  # one spans an edge
    writer = ClickWriter(positions, template)
    blocks = []
    for k in range(10):
        block = np.full(PERIOD, 9.0, dtype=np.float32)  # stale data must be overwritten
        writer.render(start + k * PERIOD, block)
        blocks.append(block)
    got = np.concatenate(blocks)
    want = np.zeros(10 * PERIOD, dtype=np.float32)
    for at in positions:
        want[at - start : at - start + len(template)] += template
    np.testing.assert_array_equal(got, want)
    assert writer.end == positions[-1] + len(template)


def test_recorder_keeps_blocks_at_their_frame_and_a_missed_cycle_as_silence() -> None:
    recorder = FrameRecorder(1_000, 3 * PERIOD)
    ones = np.ones(PERIOD, dtype=np.float32)
    recorder.store(1_000, ones)
    recorder.store(1_000 + 2 * PERIOD, 2 * ones)  # the cycle between was missed
    recorder.store(1_000 + 3 * PERIOD, 3 * ones)  # past the end: left out, counted
    recorder.store(1_000 - PERIOD // 2, 4 * ones)  # half before the start
    got = recorder.recorded()
    assert len(got) == 3 * PERIOD
    assert (got[: PERIOD // 2] == 4).all() and (got[PERIOD // 2 : PERIOD] == 1).all()
    assert (got[PERIOD : 2 * PERIOD] == 0).all() and (got[2 * PERIOD :] == 2).all()
    assert recorder.outside == PERIOD + PERIOD // 2


def _loop(
    delays: list[int], *, gain: float = 0.3, noise: float = 0.003
) -> tuple[list[int], FrameRecorder]:
    """Clicks written block by block from frame ``start``; what comes back is each click
    ``delays[k]`` frames later (quieter, in noise), recorded block by block."""
    start = 5_000_000
    positions = click_schedule(len(delays), start=start, seed=3)
    template = click(RATE)
    end = positions[-1] + RATE
    heard = np.random.default_rng(1).normal(0.0, noise, end - start).astype(np.float32)
    for at, delay in zip(positions, delays, strict=True):
        lo = at + delay - start
        heard[lo : lo + len(template)] += gain * template
    recorder = FrameRecorder(start, end - start)
    for first in range(start, end, PERIOD):
        recorder.store(first, heard[first - start : first - start + PERIOD])
    return positions, recorder


def test_clicks_come_back_as_the_delay_they_were_given_to_the_frame() -> None:
    delays = [3669, 3768, 1, 9_999, 479, 480, 481, 6070, 20_000, 3760]
    positions, recorder = _loop(delays)
    found = click_delays(positions, recorder.recorded(), recorder.start, window=int(0.45 * RATE))
    assert found.delays == tuple(delays)
    assert found.extra == 0


def test_a_lost_click_is_missing_and_one_past_the_window_is_not_paired() -> None:
    window = int(0.45 * RATE)
    delays = [2_000, window + 100, 2_000]
    positions, recorder = _loop(delays)
    found = click_delays(positions, recorder.recorded(), recorder.start, window=window)
    assert found.delays == (2_000, 2_000)
    assert found.extra == 1
    silent = np.zeros_like(recorder.recorded())
    assert click_delays(positions, silent, recorder.start, window=window).delays == ()


def test_jack_clients_of_a_process_come_from_its_sockets(tmp_path: Path) -> None:
    fd = tmp_path / "4242" / "fd"
    fd.mkdir(parents=True)
    (fd / "3").symlink_to("socket:[111]")
    (fd / "4").symlink_to("socket:[222]")
    (fd / "5").symlink_to("/dev/null")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "unix").write_text(
        "Num RefCount Protocol Flags Type St Inode Path\n"
        "0000: 00000002 00000000 00010000 0001 01 111 /dev/shm/jack_PortAudio-01_0_0\n"
        "0000: 00000002 00000000 00010000 0001 01 222\n"
        "0000: 00000002 00000000 00010000 0001 01 333 /dev/shm/jack_other_0_0\n"
    )
    assert jack_clients_of_process(4242, proc=tmp_path) == {"PortAudio-01"}
    assert jack_clients_of_process(999, proc=tmp_path) == set()


def _result(pair: str, codec: str, delays: tuple[float, ...], clicks: int = 4) -> PairResult:
    return PairResult(
        pair=pair, codec=codec, clicks=clicks, delays_ms=delays, extra=0, xruns=0, cycles=100
    )


def test_report_compares_ours_with_baresips_and_holds_the_target() -> None:
    ours = _result("softphone", "opus", (30.0, 31.0, 29.0, 30.0))
    theirs = _result("baresip", "opus", (60.0, 60.0, 60.0, 60.0))
    report = MouthToEarReport(
        results=(ours, theirs), seed=1, rate=RATE, period=PERIOD, echo_cancellation=True
    )
    assert report.ratio("opus") == pytest.approx(0.5)
    assert report.complete and report.target_met
    payload = report.to_json()
    assert payload["ratio_ours_vs_baresip"] == {"opus": 0.5}
    assert payload["results"][0]["p50_ms"] == 30.0 and payload["results"][0]["found"] == 4
    assert "ours/baresip opus: 0.50" in report.table()
    slow = _result("softphone", "opus", (78.0,) * 4)
    missed = MouthToEarReport(
        results=(slow, theirs), seed=1, rate=RATE, period=PERIOD, echo_cancellation=True
    )
    assert not missed.target_met
    lost = _result("baresip", "opus", (60.0,) * 3)
    assert not MouthToEarReport(
        results=(ours, lost), seed=1, rate=RATE, period=PERIOD, echo_cancellation=True
    ).complete


def test_mouth_to_ear_arguments() -> None:
    args = parse(["mouth-to-ear"])
    assert (args.clicks, args.seed, args.codec, args.pair, args.json) == (20, 1, None, None, False)
    args = parse(["mouth-to-ear", "--clicks", "5", "--seed", "3", "--codec", "PCMU", "--json"])
    assert (args.clicks, args.seed, args.codec, args.json) == (5, 3, ["PCMU"], True)
    assert args.baresip_jitter == (5, 10)  # baresip's own default
    assert parse(["mouth-to-ear", "--baresip-jitter", "1-10"]).baresip_jitter == (1, 10)
    for bad in (
        ["mouth-to-ear", "--codec", "G722"],
        ["mouth-to-ear", "--clicks", "0"],
        ["mouth-to-ear", "--baresip-jitter", "10-1"],
        ["mouth-to-ear", "--baresip-jitter", "5"],
    ):
        with pytest.raises(SystemExit):
            parse(bad)
