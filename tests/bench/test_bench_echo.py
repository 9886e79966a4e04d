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


def test_a_short_run_reports_each_figure_as_json() -> None:
    out = io.StringIO()
    argv = ["echo", "--speech", str(SPEECH), "--delay-ms", "60", "--seconds", "4", "--json"]
    status = main(argv, stdout=out)
    report = json.loads(out.getvalue())
    (result,) = report["results"]
    assert set(result) == {"delay_ms", "erle_db", "pesq_on", "pesq_off", "cpu_s_per_s", "met"}
    assert result["delay_ms"] == 60
    assert result["erle_db"] > 25.0  # single talk, converged
    assert 1.0 <= result["pesq_off"] <= 4.7 and 1.0 <= result["pesq_on"] <= 4.7
    assert 0 < result["cpu_s_per_s"] < 0.5
    assert status == (0 if report["met"] else 1)


def test_the_table_names_the_targets_and_a_missing_file_is_a_usage_error(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    main(["echo", "--speech", str(SPEECH), "--delay-ms", "30", "--seconds", "4"], stdout=out)
    lines = out.getvalue().splitlines()
    assert "targets ERLE >= 25 dB, double-talk WB-PESQ >= 3.5" in lines[0]
    assert lines[2].lstrip().startswith("30ms")
    assert main(["echo", "--speech", str(tmp_path / "none.wav")], stdout=io.StringIO()) == 2
