"""The arithmetic of ``softphone bench video`` (bench/video_metrics.py), its loss rule and its
command line; the calls themselves are the benchmark's, not the tests'."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from softphone.bench import video, video_runs
from softphone.bench.cli import main
from softphone.bench.video_metrics import (
    COUNTER_MOD,
    forward_waits,
    frozen_share,
    median,
    pair_delays,
    psnr,
    sampled_delay,
    wait_share,
)

FRAME = 1 / 30


def steady(n: int, delay: float, start: float = 100.0, first: int = 0):
    """n pictures sent every FRAME from ``start`` (counters from ``first``, 16 bits), each
    drawn ``delay`` later."""
    sent = [((first + i) % COUNTER_MOD, start + i * FRAME) for i in range(n)]
    drawn = [(c, t + delay) for c, t in sent]
    return sent, drawn


def test_median_of_odd_even_and_none() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert math.isnan(median([]))


def test_delays_pair_each_drawn_counter_with_its_send() -> None:
    sent, drawn = steady(90, 0.040)
    delays, unmatched = pair_delays(sent, drawn)
    assert unmatched == 0 and len(delays) == 90
    assert all(abs(d - 0.040) < 1e-9 for d in delays)


def test_delays_across_the_counters_wrap_use_the_latest_send_before_the_draw() -> None:
    # The counter goes 65530 ... 65535, 0, 1 ...: counter 2 was also sent 2^16 pictures
    # earlier (36 minutes), which must not be taken.
    sent, drawn = steady(20, 0.025, start=5000.0, first=COUNTER_MOD - 6)
    old_two = (2, 1000.0)
    delays, unmatched = pair_delays([old_two, *sent], drawn)
    assert unmatched == 0
    assert max(delays) < 0.026 and min(delays) > 0.024


def test_a_misread_counter_is_counted_not_paired() -> None:
    sent, drawn = steady(10, 0.030)
    drawn.append((4321, drawn[-1][1] + FRAME))  # never sent: a broken picture's counter
    drawn.append((9, sent[0][1] - 1.0))  # drawn before it was sent: impossible, unmatched
    delays, unmatched = pair_delays(sent, drawn)
    assert len(delays) == 10 and unmatched == 2


def test_a_snapshot_bounds_a_steady_delay_and_the_estimate_is_unbiased() -> None:
    """Pictures sent every 33 ms, each decoded 120 ms later; snapshots at instants spread over
    many frame intervals take the next decoded picture (as baresip's snapshot_recv does)."""
    delay = 0.120
    sent, drawn = steady(400, delay)
    draws = [t for _, t in drawn]
    estimates = []
    for k in range(300):
        c = 102.0 + k * 0.0123  # not a multiple of the frame interval: spread over its phases
        i = next(i for i, t in enumerate(draws) if t >= c)
        sample = sampled_delay(sent, c, c + 0.001, drawn[i][0], draws[i] + 0.005)
        assert sample is not None and sample.high is not None
        assert sample.low <= delay + 1e-9 and delay <= sample.high + 1e-9
        estimates.append(sample.estimate)
    assert abs(sum(estimates) / len(estimates) - delay) < 0.002


def test_a_snapshot_of_a_counter_never_sent_gives_nothing_and_times_must_be_in_order() -> None:
    sent, _ = steady(10, 0.05)
    assert sampled_delay(sent, 101.0, 101.01, 500, 101.2) is None
    with pytest.raises(ValueError, match="answered before"):
        sampled_delay(sent, 101.0, 100.9, 3, 101.2)


def test_a_steady_stream_is_never_frozen() -> None:
    _, drawn = steady(300, 0.05)
    draws = [t for _, t in drawn]
    assert frozen_share(draws, draws[0], draws[-1], 0.2) == 0.0


def test_a_gap_counts_what_lies_past_the_threshold() -> None:
    # Pictures every 33 ms over [0, 10] s but none from 4.0 to 4.5 s: a 0.5 s gap, of which
    # 0.3 s is past a 200 ms threshold.
    draws = [i * FRAME for i in range(301) if not 4.0 < i * FRAME < 4.5]
    share = frozen_share(draws, 0.0, 10.0, 0.2)
    gap = min(t for t in draws if t >= 4.5) - max(t for t in draws if t <= 4.0)
    assert share == pytest.approx((gap - 0.2) / 10.0)


def test_the_window_cuts_gaps_at_its_edges() -> None:
    # The last picture before the window was drawn at 9.0; the window starts at 10 and nothing
    # comes until 11: stale from 9.2, so all of 10..11 counts; the end (12) cuts the last gap.
    assert frozen_share([9.0, 11.0], 10.0, 12.0, 0.2) == pytest.approx((1.0 + 0.8) / 2.0)
    # No picture at all before or in the window: counted from the threshold on.
    assert frozen_share([], 0.0, 1.0, 0.2) == pytest.approx(0.8)


def test_frozen_share_refuses_an_empty_window_or_a_negative_threshold() -> None:
    with pytest.raises(ValueError, match="positive length"):
        frozen_share([1.0], 2.0, 2.0, 0.2)
    with pytest.raises(ValueError, match="negative"):
        frozen_share([1.0], 0.0, 2.0, -0.1)


def test_forward_waits_from_uniform_instants_estimate_the_frozen_share() -> None:
    """The method used on baresip (forward waits at sample instants) against the exact share."""
    draws = [i * FRAME for i in range(601)]
    draws = [t for t in draws if not (5.0 < t < 5.6 or 12.0 < t < 12.35)]
    exact = frozen_share(draws, 1.0, 19.0, 0.2)
    instants = [1.0 + k * 0.00917 for k in range(1960)]  # spread evenly over the window
    waits = forward_waits(draws, instants)
    assert len(waits) == len(instants)
    assert wait_share(waits, 0.2) == pytest.approx(exact, abs=0.003)
    assert exact > 0.02


def test_wait_share_of_no_samples_is_not_a_number() -> None:
    assert math.isnan(wait_share([], 0.2))
    assert forward_waits([1.0], [2.0]) == []  # no picture after the instant: left out


def test_psnr_of_equal_planes_is_infinite_and_of_a_known_error_exact() -> None:
    a = np.full((4, 4), 100, np.uint8)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0] = 116  # one pixel off by 16: mse = 256 / 16
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 16.0))
    with pytest.raises(ValueError, match="shapes"):
        psnr(a, np.zeros((2, 2)))


def test_the_loss_rule_drops_a_share_of_video_rtp_from_the_sender_only() -> None:
    rules = video_runs.loss_ruleset("203.0.113.1", 2)
    assert "ip saddr 203.0.113.1" in rules
    assert "@th,64,2 2" in rules and "@th,73,7 >= 96" in rules  # RTP v2, dynamic type
    assert "numgen random mod 100 < 2 counter name dropped drop" in rules
    with pytest.raises(ValueError, match="0 to 100"):
        video_runs.loss_ruleset("203.0.113.1", 101)


def test_baresip_is_configured_for_the_benchmarks_picture() -> None:
    config = video_runs.baresip_video_config()
    assert "video_size\t\t640x360" in config and "video_fps\t\t30" in config
    assert f"video_bitrate\t\t{video_runs.BITRATE}" in config
    assert "video_display\t\tfakevideo,nil" in config and "snapshot.so" in config


@pytest.mark.parametrize(
    "argv",
    [
        ["video", "--part", "speed"],
        ["video", "--calls", "0"],
        ["video", "--seconds", "5"],
        ["video", "--threshold-ms", "x"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, stdout=io.StringIO()) == 2
    assert "softphone bench video: error" in capsys.readouterr().err


def test_the_report_shows_each_part_against_its_target() -> None:
    results = {
        "delay": {
            "softphone": 20.0,
            "baresip": 180.0,
            "ratio": 0.11,
            "target": "< 1 (lower than baresip)",
            "met": True,
            "unit": "ms",
            "baresip_low": 160.0,
            "baresip_high": 200.0,
            "baresip_samples": 40,
            "softphone_by_snapshot_method": 22.0,
        },
        "freeze": {
            "softphone": 1.0,
            "baresip": 0.5,
            "ratio": 2.0,
            "target": "<= baresip",
            "met": False,
            "unit": "%",
            "threshold_ms": 200,
            "softphone_parts": {},
            "baresip_parts": {},
        },
    }
    text = video.table(results)
    delay_row = next(line for line in text.splitlines() if line.startswith("delay "))
    freeze_row = next(line for line in text.splitlines() if line.startswith("freeze "))
    assert "PASS" in delay_row and "0.11" in delay_row
    assert "FAIL" in freeze_row and "2.00" in freeze_row
    assert "[160.0, 200.0] ms over 40 snapshots" in text


def test_the_peer_takes_an_even_size_only() -> None:
    from softphone.bench.video_peer import build_parser

    args = build_parser().parse_args(["dial", "sip:a@127.0.0.1", "--log", "x", "--size", "640x360"])
    assert args.size == (640, 360) and args.fps == 30
    for bad in ("640x361", "64x64", "wide"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["answer", "--log", "x", "--size", bad])


def test_without_namespaces_the_freeze_part_is_refused_and_left_out_of_all(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from softphone.lab import netns_pair

    monkeypatch.setattr(netns_pair, "namespaces_usable", lambda: "network namespaces need root")
    ran: list[str] = []
    monkeypatch.setitem(
        video.RUNNERS, "delay", lambda where, args: ran.append("delay") or {"met": True}
    )
    monkeypatch.setitem(
        video.RUNNERS, "cpu", lambda where, args: ran.append("cpu") or {"met": True}
    )
    assert main(["video", "--part", "freeze"], stdout=io.StringIO()) == 2
    assert "needs namespaces: network namespaces need root" in capsys.readouterr().err
    out = io.StringIO()
    assert main(["video", "--json"], stdout=out) == 0
    assert ran == ["delay", "cpu"]
    assert "freeze left out" in capsys.readouterr().err
    assert set(json.loads(out.getvalue())) >= {"delay", "cpu"} and "freeze" not in out.getvalue()


def test_baresip_waits_are_read_less_the_calm_overhead_of_writing_the_png() -> None:
    """Calm snapshots take 10 ms (the next picture, half a frame interval on average) plus
    25 ms of writing the PNG; under loss one waits 400 ms (a freeze) and one shows a picture
    that is not the pattern's (broken)."""
    from softphone.bench.video_runs import Snapshot, SnapshotRun

    sent = {"sent": [[i, 100.0 + i * FRAME] for i in range(900)]}
    loss = video._LossAt("ns", "203.0.113.1")
    loss.at = 105.0

    def shot(at: float, wait: float, counter: int, score: float) -> Snapshot:
        return Snapshot(at, at + 0.001, at + 0.001 + wait, Path("x.png"), counter, score)

    calm = [shot(101.0 + k, FRAME / 2 + 0.025, 40 * k, 50.0) for k in range(4)]
    lossy = [
        shot(106.0, FRAME / 2 + 0.025, 200, 49.0),
        shot(107.0, 0.400 + 0.025, 260, 49.0),
        shot(108.0, FRAME / 2 + 0.025, 280, 12.0),
        shot(109.0, FRAME / 2 + 0.025, 310, 48.0),
    ]
    result = video._baresip_freezes(sent, SnapshotRun(shots=calm + lossy), loss, 0.2)
    assert result["overhead_ms"] == pytest.approx(25.0, abs=0.1)
    assert result["samples"] == 4 and result["calm_samples"] == 4
    assert result["frozen"] == pytest.approx(0.25) and result["broken"] == pytest.approx(0.25)
    assert result["frozen_or_broken"] == pytest.approx(0.5)
