"""The reliability campaign's arithmetic and verdicts, without peers: how svwar's answers are
judged, where silence is found in a recording, the soak's growth fit, the ramp's call count and
the table's verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from softphone.bench import cli as bench_cli
from softphone.bench.reliability import cli, report
from softphone.bench.reliability.faults import FaultResult, silent_gaps
from softphone.bench.reliability.load import FloodFigures, ramp_calls
from softphone.bench.reliability.peers import ProcessSample, SoftphoneListen
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


def test_parts_run_apart_make_one_table_with_their_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The soak and the fuzzing run in the background while the rest runs: each part leaves its
    # rows in --workdir/<part>.json (or prints them with --json), and `report` joins them.
    soak = [report.Row(area="soak", figure="RSS", value="+2 MB/h", target="<= 10", passed=True)]
    load = [
        report.Row(area="load", figure="ramp", value="5", target="0", passed=False, baresip="0"),
        report.Row(area="load", figure="cpu", value="1 s", target="-", passed=None),
    ]
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    (campaign / "soak.json").write_text(report.dumps(soak, part="soak"))
    (campaign / "load.json").write_text(report.dumps(load, part="load"))
    fuzz_out = tmp_path / "fuzz-stdout.json"  # what `fuzz --json` printed
    fuzz = [report.Row(area="fuzz", figure="sdp", value="1,000,000", target="=", passed=True)]
    fuzz_out.write_text(report.dumps(fuzz) + "\n")
    merged = report.read_rows([fuzz_out, campaign], order=("fuzz", "load", "scan", "soak"))
    assert merged == fuzz + load + soak  # the parts' order, each part's rows as written
    code = bench_cli.main(["reliability", "report", str(fuzz_out), str(campaign)])
    text = capsys.readouterr().out
    assert code == cli.EXIT_TARGET_MISSED  # a missed target stays missed in the merged table
    assert text.count("\n| ") == len(merged) and "| FAIL |" in text  # one line per row
    (tmp_path / "other.json").write_text('{"benchmark": "call", "rows": []}')
    other = str(tmp_path / "other.json")
    assert bench_cli.main(["reliability", "report", other]) == cli.EXIT_ERROR


def test_calls_without_their_call_ended_are_counted_from_what_the_phone_wrote() -> None:
    phone = SoftphoneListen(Path("unused"))
    phone.last_events = [
        {"event": "incoming_call", "call_id": "a"},
        {"event": "incoming_call", "call_id": "b"},
        {"event": "call_state", "call_id": "b", "state": "established"},
        {"event": "call_ended", "call_id": "a"},
        {"event": "incoming_call", "call_id": "c"},
        {"event": "call_ended", "call_id": "c"},
    ]
    assert phone.unended_calls() == (3, 1)  # b was up when it exited and never said it ended
