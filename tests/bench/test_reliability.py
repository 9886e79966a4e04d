"""The reliability campaign's arithmetic and verdicts, without peers: how svwar's answers are
judged, where silence is found in a recording, the soak's growth fit, the ramp's call count and
the table's verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.bench.reliability import report
from softphone.bench.reliability.faults import FaultResult, silent_gaps
from softphone.bench.reliability.load import FloodFigures, ramp_calls
from softphone.bench.reliability.peers import ProcessSample
from softphone.bench.reliability.scan import _normalised, told_apart
from softphone.bench.reliability.soak import SoakFigures
from softphone.lab.sipvicious import ScanRow

GUESSES = ("alice", "bob", "100")


def rows(*names: str) -> list[ScanRow]:
    return [ScanRow(n, "weird") for n in names]


@pytest.mark.parametrize(
    ("reported", "apart"),
    [
        ([], []),  # nothing stood out
        (rows("3589517808", "alice", "bob", "100"), []),  # everything alike, baseline included
        (rows("alice"), ["alice"]),  # alice answered differently from the baseline
        (rows("alice", "bob", "100"), ["alice", "bob", "100"]),  # the baseline was not reported
    ],
)
def test_svwar_tells_users_apart_only_when_some_answer_differently(
    reported: list[ScanRow], apart: list[str]
) -> None:
    assert told_apart(reported, GUESSES) == apart


def test_answers_compare_without_what_echoes_the_request() -> None:
    def answer(user: str, tag: str) -> bytes:
        return (
            f"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{user}\r\n"
            f"From: <sip:p@h>;tag=1\r\nTo: <sip:{user}@h>;tag={tag}\r\nCall-ID: {user}\r\n"
            "CSeq: 1 INVITE\r\nServer: softphone\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    assert _normalised(answer("alice", "x1")) == _normalised(answer("nobody", "y2"))
    assert "Server: softphone" in _normalised(answer("alice", "x1"))


def test_silent_gaps_are_found_after_the_first_sound() -> None:
    rate = 8000
    t = np.arange(rate * 6) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    tone[: rate // 2] = 0  # silence before the first sound is not a gap
    tone[2 * rate : 4 * rate] = 0  # a 2 s hole
    (gap,) = [g for g in silent_gaps(tone.astype(np.float32), rate) if g[1] - g[0] > 1]
    assert gap == pytest.approx((2.0, 4.0), abs=0.011)


def test_a_fault_passes_on_time_and_only_if_the_rest_held() -> None:
    on_time = FaultResult(scenario="s", figure="f", recovery_s=0.5, target_s=1.0)
    assert on_time.passed
    assert not FaultResult(scenario="s", figure="f", recovery_s=None, target_s=1.0).passed
    assert not FaultResult(scenario="s", figure="f", recovery_s=0.5, target_s=1.0, ok=False).passed
    assert FaultResult(scenario="s", figure="f", recovery_s=None, target_s=None).passed


def test_the_soak_fits_rss_growth_over_its_second_half() -> None:
    soak = SoakFigures(seconds=3600.0)
    for t in range(0, 3601, 60):
        warm = 10.0 if t < 1800 else 0.0  # a first-half spike does not count
        rss = 60.0 + warm + 5.0 * t / 3600  # 5 MB per hour
        soak.samples.append((float(t), ProcessSample(cpu_s=t / 100, rss_mb=rss, threads=3, fds=13)))
    assert soak.rss_growth_mb_per_hour == pytest.approx(5.0)
    assert soak.cpu_percent == pytest.approx(1.0)


def test_the_ramp_counts_the_calls_sipp_will_make() -> None:
    # 10/s for 5 s, 20/s for 5 s, then 30/s held for 10 s
    assert ramp_calls(10, 10, 5, 30, 10) == 50 + 100 + 300


def test_the_table_fails_a_missed_target_and_keeps_measurements_neutral() -> None:
    figures = {
        phone: FloodFigures(
            phone=phone,
            sent=100,
            unanswered=unanswered,
            answer_p50_ms=1.0,
            answer_p99_ms=2.0,
            answer_max_ms=3.0,
            retransmissions=0,
            rang=0,
            cpu_s=1.0,
            elapsed_s=1.0,
        )
        for phone, unanswered in (("softphone", 2), ("baresip", 0))
    }
    table = report.flood_rows(figures, "cmd")  # type: ignore[arg-type]
    assert [r.passed for r in table] == [False, None, True]
    assert report.missed(table) == [table[0]]
    text = report.table(table)
    assert "| FAIL |" in text and "| PASS |" in text and "`cmd`" in text
