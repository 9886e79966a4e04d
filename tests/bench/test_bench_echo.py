"""``softphone bench echo``: the synthetic room, and a short run of the command (one delay,
4 s scored) that prints its table or JSON; the targets themselves are the benchmark's to
report, not asserted here beyond the echo clearly dropping."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from softphone.bench.cli import main
from softphone.bench.echo import RATE, room_response

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"
pytest.importorskip("livekit.rtc")
pytest.importorskip("pesq")


def test_the_room_has_its_delay_and_its_direct_to_reverberant_ratio() -> None:
    response = room_response(0.06, np.random.default_rng(1), drr_db=10.0)
    assert int(np.argmax(np.abs(response))) == int(0.06 * RATE)
    assert not response[: int(0.06 * RATE)].any()
    reverberant = float(np.sum(response[int(0.06 * RATE) + 1 :] ** 2))
    assert 10 * np.log10(1.0 / reverberant) == pytest.approx(10.0, abs=0.01)


def test_a_short_run_reports_each_figure_as_json_for_each_echo_level() -> None:
    out = io.StringIO()
    argv = ["echo", "--speech", str(SPEECH), "--delay-ms", "60", "--seconds", "4", "--json"]
    status = main([*argv, "--ser-db", "0", "--ser-db", "20"], stdout=out)
    report = json.loads(out.getvalue())
    assert report["backend"] == "speex"
    loud, quiet = report["results"]
    assert set(loud) == {
        "delay_ms",
        "ser_db",
        "erle_db",
        "pesq_on",
        "pesq_off",
        "pesq_no_echo",
        "cpu_s_per_s",
        "met",
    }
    assert (loud["delay_ms"], loud["ser_db"], quiet["ser_db"]) == (60, 0.0, 20.0)
    assert loud["erle_db"] == quiet["erle_db"] > 25.0  # single talk, converged: once a room
    # The quieter the echo, the better the raw microphone and the canceller's output score,
    # and the canceller clearly beats the raw microphone at 0 dB (1.1: the echo drowns it).
    assert loud["pesq_off"] < quiet["pesq_off"] and loud["pesq_on"] < quiet["pesq_on"]
    assert loud["pesq_on"] > loud["pesq_off"] + 0.4
    # Nothing beats the near end alone through the canceller (no echo at all).
    assert quiet["pesq_on"] <= quiet["pesq_no_echo"] == loud["pesq_no_echo"]
    assert 0 < loud["cpu_s_per_s"] < 0.5
    assert status == (0 if report["met"] else 1)


def test_the_table_names_the_targets_and_a_missing_file_is_a_usage_error(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    argv = ["echo", "--speech", str(SPEECH), "--delay-ms", "30", "--seconds", "4"]
    main([*argv, "--backend", "webrtc"], stdout=out)
    lines = out.getvalue().splitlines()
    assert "canceller webrtc" in lines[0]
    assert "targets ERLE >= 25 dB, double-talk WB-PESQ >= 3.5" in lines[0]
    assert lines[1].split() == [
        "delay", "SER", "dB", "ERLE", "dB", "PESQ", "on", "PESQ", "off", "no", "echo", "CPU",
        "s/s", "result",
    ]  # fmt: skip
    assert lines[2].split()[:2] == ["30ms", "0"]
    assert main(["echo", "--speech", str(tmp_path / "none.wav")], stdout=io.StringIO()) == 2
