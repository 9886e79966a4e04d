"""The sound card going away under a call with baresip: the JACK dummy card's server is stopped
mid-call (softphone/bench/call_device_loss.py, in a process of its own because PortAudio cannot
use JACK again in the process that lost it).

What must hold: the phone says the device is lost within 2 s, the call stays up and keeps
sending RTP (silence), a restarted JACK server gets a clear notice of what to do rather than a
hang, hanging up works, and the process ends promptly (PortAudio 19.6's JACK host would hold it
for 10 minutes at exit if it were left to close the lost stream)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lab_support import require_binary

pytestmark = pytest.mark.interop

PACKETS_PER_S = 50  # PCMU, 20 ms frames


def test_a_call_survives_its_jack_server_going_away(tmp_path: Path) -> None:
    require_binary("jackd")
    require_binary("baresip")
    done = subprocess.run(
        [sys.executable, "-m", "softphone.bench.call_device_loss", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    notices = result["notices"]
    assert notices and notices[0].startswith("audio device lost ("), result
    assert "calls go on without sound" in notices[0]
    assert result["lost_after_s"] <= 2.0, result
    assert result["ended_while_lost"] is False
    # 2 s waited after the notice: most of 100 packets of silence went on to baresip.
    assert result["sent_while_lost"] >= 1.5 * PACKETS_PER_S, result
    # JACK back: PortAudio 19.6 cannot use it again in this process; the phone says so once
    # (a PortAudio that can would bring the call back onto it).
    assert result["back_after_restart"] or any(
        "restart softphone to use the device again" in n for n in notices[1:]
    ), notices
    assert result["state_after_restart"] == "established"
    assert result["hung_up"] is True
    assert result["stop_s"] < 5.0
