"""``softphone bench quality``: its pure parts (drop rules, counters, verdicts, output), and the
scorer on signals whose answer is known. The calls themselves need baresip and root."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from softphone.bench.cli import main
from softphone.bench.quality import (
    CallScore,
    Condition,
    Loss,
    nft_rules,
    parse_drop_counts,
    table,
)
from softphone.bench.quality_score import ScoreError, align, fft_resample, score_signals

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"


def test_random_and_burst_loss_rules_drop_rtp_both_ways_and_not_rtcp() -> None:
    random_rules = nft_rules(Loss.RANDOM, "203.0.113.2", (30000, 30099))
    assert random_rules.count("numgen random mod 100 < 5") == 2
    assert "ip saddr 203.0.113.2 udp sport 30000-30099 udp sport & 1 == 0" in random_rules
    assert "ip daddr 203.0.113.2 udp dport 30000-30099 udp dport & 1 == 0" in random_rules
    assert nft_rules(Loss.BURST, "203.0.113.2").count("numgen inc mod 100 < 5") == 2
    with pytest.raises(ValueError, match="clean"):
        nft_rules(Loss.CLEAN, "203.0.113.2")
    with pytest.raises(ValueError, match="even start"):
        nft_rules(Loss.RANDOM, "203.0.113.2", (30001, 30099))


@pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed")
def test_the_rules_are_valid_nftables() -> None:
    # `nft -c` checks a ruleset without loading it.
    for loss in (Loss.RANDOM, Loss.BURST):
        done = subprocess.run(
            ["nft", "-c", "-f", "-"],
            input=nft_rules(loss, "203.0.113.2"),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if "Operation not permitted" in done.stderr:
            pytest.skip("nft -c needs CAP_NET_ADMIN here")
        assert done.returncode == 0, done.stderr


def test_drop_counts_are_read_per_direction_from_the_listing() -> None:
    listing = """table inet softphone_quality_loss {
	chain in {
		type filter hook input priority -100; policy accept;
		ip saddr 203.0.113.2 udp sport 30000-30099 udp sport & 1 == 0 numgen random mod 100 < 5 counter packets 31 bytes 3100 drop
	}
	chain out {
		type filter hook output priority -100; policy accept;
		ip daddr 203.0.113.2 udp dport 30000-30099 udp dport & 1 == 0 numgen random mod 100 < 5 counter packets 7 bytes 700 drop
	}
}"""
    assert parse_drop_counts(listing) == (31, 7)
    assert parse_drop_counts("") == (0, 0)


def scores(*values: float) -> tuple[CallScore, ...]:
    return tuple(CallScore(pesq=v, lag_ms=0.0) for v in values)


def test_clean_calls_pass_only_when_every_one_is_within_005_of_opus_alone() -> None:
    ok = Condition(
        loss=Loss.CLEAN, softphone=scores(4.10, 4.12), baresip=scores(4.1, 4.1), opus_alone=4.14
    )
    one_low = Condition(
        loss=Loss.CLEAN, softphone=scores(4.12, 4.08), baresip=scores(4.1, 4.1), opus_alone=4.14
    )
    assert ok.met and not one_low.met
    assert ok.to_json()["target"].startswith("every call >= 4.09")


def test_lossy_calls_pass_when_softphone_is_03_above_baresip_by_the_median() -> None:
    ahead = Condition(
        loss=Loss.BURST, softphone=scores(3.0, 3.4, 2.0), baresip=scores(2.9, 3.0, 2.7),
        opus_alone=4.1,
    )  # fmt: skip
    behind = Condition(
        loss=Loss.RANDOM, softphone=scores(2.5, 2.6, 2.4), baresip=scores(2.4, 2.5, 2.3),
        opus_alone=4.1,
    )  # fmt: skip
    assert ahead.softphone_median == 3.0 and ahead.baresip_median == 2.9
    assert not ahead.met  # 0.1 above is not enough
    assert not behind.met
    winning = Condition(
        loss=Loss.RANDOM, softphone=scores(2.9, 3.0), baresip=scores(2.5, 2.6), opus_alone=4.1
    )
    assert winning.met and winning.difference == pytest.approx(0.4)
    text = table([winning], seconds=14)
    assert "random" in text and "PASS" in text and "+0.40" in text
    assert json.loads(json.dumps(winning.to_json()))["met"] is True


def test_scoring_aligns_a_delayed_copy_and_finds_damage() -> None:
    from softphone.bench.quality_score import read_pcm16

    ref, rate = read_pcm16(SPEECH)
    ref = fft_resample(ref, rate, 16000)
    delayed = np.concatenate((np.zeros(1600), ref))  # 100 ms later
    assert align(ref, delayed, 16000, 3.0) == 1600
    clean = score_signals(ref, delayed, seconds=8.0)
    assert clean.pesq > 4.3 and clean.lag_ms == pytest.approx(100.0)
    damaged = delayed.copy()
    for start in range(3200, len(damaged), 16000):  # 100 ms dropped out every second
        damaged[start : start + 1600] = 0.0
    assert score_signals(ref, damaged, seconds=8.0).pesq < clean.pesq - 0.5
    with pytest.raises(ScoreError, match="aligned speech"):
        score_signals(ref, delayed[:16000], seconds=8.0)


def test_cli_rejects_a_missing_speech_file_and_bad_arguments(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["quality", "--speech", str(tmp_path / "none.wav")], stdout=out) == 2
    assert main(["quality", "--loss", "sometimes"], stdout=out) == 2
    assert main(["quality", "--calls", "0"], stdout=out) == 2
    assert main(["quality", "--seconds", "2", "--speech", str(SPEECH)], stdout=out) == 2
