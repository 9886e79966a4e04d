"""PJSIP's jitter buffer driven through ctypes (softphone/bench/pjsip_jbuf.py) on tiny traces."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from softphone.bench import pjsip_jbuf
from softphone.bench.cli import main
from softphone.bench.pjsip_jbuf import FrameType, replay, score

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"
MISSING_LIBRARY = pjsip_jbuf.available()
# `make test` installs pjsua2-python (the test extra): in CI a missing library fails the tests.
needs_pjsip = pytest.mark.skipif(
    MISSING_LIBRARY is not None and os.environ.get("CI") != "true",
    reason=f"PJSIP unavailable: {MISSING_LIBRARY}",
)


def grouped(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Packets 4k to 4k+3 arrive together 50 ms after 4k was sent: when one inside a group is
    lost the buffer holds the one after it, so the hole is a MISSING frame, not an empty
    buffer (jbuf restarts its numbering at whatever arrives into an empty buffer)."""
    send = np.arange(n, dtype=np.float64) * 20.0
    return send, (np.arange(n) // 4) * 80.0 + 50.0


@needs_pjsip
def test_a_clean_steady_trace_plays_every_packet_on_the_next_tick() -> None:
    send = np.arange(200, dtype=np.float64) * 20.0
    arrival = send + 47.0  # ticks every 20 ms from 0: each packet waits for +60
    log = replay(send, arrival)
    assert log.from_packet.all()
    assert np.array_equal(log.play_ms - send, np.full(200, 60.0))
    assert log.counts[FrameType.NORMAL] == 200
    assert log.counts[FrameType.MISSING] == 0
    assert log.counts[FrameType.ZERO_EMPTY] == log.counts[FrameType.ZERO_PREFETCH] == 0
    s = score(send, arrival, log)
    assert s.late_loss_pct == 0.0 and s.mean_ms == 60.0 and s.concealed_ms == 0.0
    assert s.discarded_pct == 0.0 and s.rejected == 0
    # Ticks shifted by 10 ms: the wait shrinks to 3 ms (47 -> 50).
    shifted = replay(send, arrival, tick_phase_ms=10.0)
    assert np.array_equal(shifted.play_ms - send, np.full(200, 50.0))


@needs_pjsip
def test_lost_packets_come_out_as_missing_frames_in_their_slots_across_the_wrap() -> None:
    send, arrival = grouped(300)
    # The RTP timestamps wrap at packet 151, inside the group 148-151, and 149 is lost: when
    # 151 arrives jbuf renumbers what it holds (a "sequence restart"), so the hole comes out
    # with a number from after the wrap.
    wrap_at = (1 << 32) - 151 * 960
    lost = [101, 149]
    arrival[lost] = np.nan
    log = replay(send, arrival, first_timestamp=wrap_at)
    assert log.counts[FrameType.MISSING] == 2
    assert not log.from_packet[lost].any()
    assert np.array_equal(log.play_ms[lost] - send[lost], [60.0, 60.0])  # concealed in turn
    others = np.setdiff1d(np.arange(300), lost)
    assert log.from_packet[others].all()
    s = score(send, arrival, log)
    assert s.late_loss_pct == 0.0 and s.concealed_ms == 40.0 and s.mean_ms == 60.0
    # The same without the wrap: the wrap costs nothing here.
    plain = replay(send, arrival, first_timestamp=0)
    assert np.array_equal(plain.play_ms, log.play_ms, equal_nan=True)


@needs_pjsip
def test_a_delay_step_grows_the_mouth_to_ear_delay_with_empty_frames() -> None:
    send = np.arange(400, dtype=np.float64) * 20.0
    arrival = send + 40.0
    arrival[200:] += 100.0
    log = replay(send, arrival)
    delay = log.play_ms - send
    assert np.all(delay[:200] == 40.0) and np.all(delay[200:] >= 140.0)
    assert log.counts[FrameType.ZERO_EMPTY] == 5  # 100 ms of nothing while the step passes
    assert log.from_packet.all()
    assert score(send, arrival, log).mean_ms >= 90.0


@needs_pjsip
def test_the_progressive_discard_brings_the_delay_back_down_after_a_stall() -> None:
    send = np.arange(1000, dtype=np.float64) * 20.0
    arrival = send + 40.0
    arrival[100:110] = send[109] + 40.0  # a 180 ms stall, then the ten packets at once
    log = replay(send, arrival)
    delay = log.play_ms - send
    assert delay[99] == 40.0 and delay[120] == 220.0  # the stall went into the delay
    assert np.all(delay[-100:] == 40.0)  # and came back out, frame by frame
    discards = int(log.discarded.sum())
    assert 5 <= discards <= 10
    # jbuf plays the frame after each discarded one as a MISSING (concealed) frame.
    assert log.counts[FrameType.MISSING] == discards
    s = score(send, arrival, log)
    assert s.discarded_pct == pytest.approx(100.0 * discards / 1000)
    assert s.late_loss_pct == pytest.approx(100.0 * 2 * discards / 1000)


@needs_pjsip
def test_a_packet_behind_its_successor_is_refused_and_counted_late() -> None:
    send = np.arange(200, dtype=np.float64) * 20.0
    arrival = send + 40.0
    arrival[50] += 100.0  # its successors have been played by then
    log = replay(send, arrival)
    assert log.rejected[50] and log.rejected.sum() == 1
    assert not log.from_packet[50] and log.from_packet[np.arange(200) != 50].all()
    assert score(send, arrival, log).late_loss_pct == pytest.approx(0.5)


def write_trace(path: Path) -> None:
    send, arrival = grouped(150)
    arrival[[30, 90]] = np.nan
    np.savez(path, **{"short/send_ms": send, "short/arr_ms": arrival})  # type: ignore[arg-type]


def report(traces: Path) -> tuple[int, str]:
    out = io.StringIO()
    status = main(
        ["jitter-report", "--trace", str(traces), "--speech", str(SPEECH), "--codec", "pcmu"],
        stdout=out,
    )
    return status, out.getvalue()


@needs_pjsip
def test_the_report_puts_pjsip_and_the_stretch_paying_oracle_in_the_main_table(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "t.npz"
    write_trace(traces)
    status, text = report(traces)
    assert status in (0, 1)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("profile") and "pjsip" in line)
    columns = header.split()
    row = next(line for line in lines if line.startswith("short")).split()
    values = dict(zip(columns[1:], row[1:], strict=False))
    send, arrival = grouped(150)
    arrival[[30, 90]] = np.nan
    expected = pjsip_jbuf.run(send, arrival, 8000)
    assert float(values["pjsip"]) == pytest.approx(expected.mean_ms, abs=0.05)
    assert float(values["pj-lt%"]) == pytest.approx(expected.late_loss_pct, abs=0.005)
    assert float(values["vs-pj"]) == pytest.approx(
        float(values["mean"]) / expected.mean_ms, abs=0.01
    )
    assert float(values["s-orcl"]) > 0 and float(values["s-ratio"]) > 0
    assert len(expected.phase_means_ms) == 4
    assert min(expected.phase_means_ms) <= expected.mean_ms <= max(expected.phase_means_ms)
    detail = [line.split() for line in lines if line.startswith("short")][1]
    assert float(detail[-2]) == pytest.approx(min(expected.phase_means_ms), abs=0.05)
    assert float(detail[-1]) == pytest.approx(max(expected.phase_means_ms), abs=0.05)
    assert "PJSIP columns left empty" not in text


def test_the_report_without_pjsip_says_why_and_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pjsip_jbuf, "available", lambda: "no pjsua2-python here")
    traces = tmp_path / "t.npz"
    write_trace(traces)
    status, text = report(traces)
    assert status in (0, 1)
    assert "PJSIP columns left empty: no pjsua2-python here" in text
    row = next(line for line in text.splitlines() if line.startswith("short")).split()
    assert row[13:16] == ["-", "-", "-"] and "pjsip" not in " ".join(row[16:])


def test_a_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pjsip_jbuf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pjsip_jbuf.PjsipUnavailable, match="pjsua2-python"):
        pjsip_jbuf.library_path()
