"""The answering machine against the real peers on 127.0.0.1: ``softphone listen`` (alice, with
voicemail after 1 s) takes bob's baresip call through Kamailio when nobody answers; bob hears
the greeting (his recording of the call is not silence), talks (baresip's 440 Hz tone) for
about three seconds and hangs up; the message is bob's tone, of that length, and
``softphone voicemail list --json`` shows it with bob as the caller."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from cli_support import make_env
from lab_support import BaresipFactory

from softphone import lab
from softphone.media.wav import read_wav

pytestmark = pytest.mark.interop

STEP_S = 10.0
TALK_S = 3.0


class JsonLines:
    """The --json events of a process, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            if line.startswith("{"):
                self._lines.put(json.loads(line))

    def wait(self, kind: str, timeout_s: float = STEP_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            if event.get("event") == kind:
                return event
        raise AssertionError(f"no {kind} event within {timeout_s} s; seen: {self.seen}")


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if len(pcm) else 0.0


def test_nobody_answers_and_baresip_leaves_a_message(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    bob = baresip_factory(user="bob", record=True)
    hop = f"sip:127.0.0.1:{kamailio.port_for('udp')}"
    config = tmp_path / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "sip_port": 0,
                "voicemail_dir": str(tmp_path / "voicemail"),
                "account": [
                    {
                        "name": "alice",
                        "uri": f"sip:alice@{lab.DOMAIN}",
                        "password": lab.USERS["alice"],
                        "registrar": hop,
                        "proxy": hop,
                        "voicemail": True,
                        "voicemail_after": 1,
                    }
                ],
            }
        )
    )
    env = make_env(tmp_path)
    base = [sys.executable, "-m", "softphone", "--config", str(config)]
    listen = subprocess.Popen(
        [*base, "listen", "--json", "--no-audio", "--bind", "127.0.0.1"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = JsonLines(listen)
        events.wait("registered")
        mark = bob.mark()
        bob.dial(f"sip:alice@{lab.DOMAIN}")
        incoming = events.wait("incoming_call")
        bob.wait_event("CALL_ESTABLISHED", STEP_S, None, mark)  # the machine answered
        started = events.wait("voicemail_started")
        assert started["caller"] == "sip:bob@lab.test" and started["account"] == "alice"
        assert started["call_id"] == incoming["call_id"]
        # bob talks (his tone) for a while, then hangs up
        assert bob.ctrl.find_event("CALL_CLOSED", TALK_S, None, mark) is None
        bob.hangup()
        recorded = events.wait("voicemail_recorded")
        assert TALK_S - 0.5 <= recorded["duration_s"] <= TALK_S + 1.5, recorded
    finally:
        listen.send_signal(signal.SIGTERM)
        _, stderr = listen.communicate(timeout=STEP_S)
    assert "Traceback" not in stderr, stderr
    listed = subprocess.run(
        [*base, "voicemail", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_S * 3,
        check=True,
    )
    (message,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (message["caller"], message["account"], message["heard"], message["recording"]) == (
        "sip:bob@lab.test",
        "alice",
        False,
        False,
    )
    assert message["duration_s"] == recorded["duration_s"]
    assert Path(message["path"]).parent == tmp_path / "voicemail"
    # the message is bob's 440 Hz tone, on the caller's (right) channel
    with wave.open(message["path"], "rb") as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller = frames[:, 1].astype(np.float64) / 32768
    assert rms(caller) > 0.05 and rms(frames[:, 0].astype(np.float64) / 32768) < 0.01
    peak_hz = np.argmax(np.abs(np.fft.rfft(caller))) * rate / len(caller)
    assert abs(peak_hz - 440) < 15, peak_hz
    # bob heard the greeting: his recording of the call starts with sound, not silence
    decoded = [p for p in bob.recordings() if p.name.endswith("-dec.wav")]
    assert decoded, f"baresip recorded nothing: {bob.recordings()}"
    heard, heard_rate = read_wav(max(decoded, key=lambda p: p.stat().st_size))
    assert rms(heard[: int(heard_rate * 1.0)]) > 0.02, "the greeting was not heard"
