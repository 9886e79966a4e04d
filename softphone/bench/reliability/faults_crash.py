"""Two faults that are not the network's: the RTSP server restarting under a viewer, and the
phone killed (SIGKILL) in the middle of a recorded call.

- :func:`rtsp_restart`: ``softphone play --headless --json`` on the lab's GStreamer RTSP server
  (H.264); once the picture is there the server is stopped and started again on the same port.
  Measured: from the restart until the player's per-second ``stats`` show new video frames.
- :func:`kill_during_call`: ``softphone listen --auto-answer --record heard.wav`` takes a call
  from SIPp (a tone both ways) and is killed with SIGKILL 3 s into it. The recording must be a
  WAV that two readers (ours and Python's ``wave``) play, with the tone in it; at the next start
  the call's history row must say ``interrupted``. Measured: from the second start until the
  phone listens again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from softphone.bench.reliability.faults import FaultResult, tone_wav
from softphone.bench.reliability.peers import SoftphoneListen
from softphone.lab.process import HOST, LabError, LabProcess
from softphone.lab.rtsp_server import RtspServer
from softphone.lab.sipp import Sipp

__all__ = ["kill_during_call", "rtsp_restart"]


def _json(line: str) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        value = json.loads(line)
        if isinstance(value, dict):
            return value
    return None


def rtsp_restart(workdir: Path, *, bound_s: float = 60.0) -> list[FaultResult]:
    server = RtspServer(workdir / "rtsp", media_file=False).start()
    player: LabProcess | None = None
    try:
        argv = [
            sys.executable, "-m", "softphone", "--log-file", str(workdir / "play.log"),
            "play", server.url("/h264"), "--headless", "--json", "--no-audio",
            "--transport", "tcp", "--duration", str(int(bound_s + 30)),
        ]  # fmt: skip
        player = LabProcess(argv, name="player", cwd=workdir, stderr_path=workdir / "play.err")
        first = player.log.search(
            lambda line: (
                ((e := _json(line)) is not None and e.get("event") == "first_frame") or None
            ),
            20,
        )
        if first is None:
            raise LabError(f"no first picture from the RTSP server: {player.tail()}")
        mark = player.mark()
        restarted = time.monotonic()
        server.restart()
        up = time.monotonic() - restarted
        frames_then: list[int] = []

        def new_frames(line: str) -> bool | None:
            event = _json(line)
            if event is None or event.get("event") != "stats":
                return None
            frames_then.append(int(event.get("video_frames", 0)))
            return True if len(frames_then) > 1 and frames_then[-1] > frames_then[0] else None

        # stats come every second with cumulative counts: the first that grows after the
        # restart (the first one seen may still count frames from before it)
        back = player.log.search(new_frames, bound_s, since=mark)
        back_s = time.monotonic() - restarted if back else None
        reconnects = sum(
            1
            for line in player.lines()[mark:]
            if (e := _json(line)) is not None and e.get("event") == "reconnecting"
        )
    finally:
        if player is not None:
            player.stop()
        server.stop()
    return [
        FaultResult(
            scenario="RTSP server restart",
            figure="picture back, s after the restart",
            recovery_s=back_s,
            target_s=None,
            detail=f"server back after {up:.1f} s; {reconnects} reconnect attempt(s); "
            "stats are per second",
        )
    ]


def _history_result(data_home: Path) -> str | None:
    db = data_home / "softphone" / "softphone.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT result FROM calls ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


def _playable(path: Path) -> tuple[bool, str]:
    """Both readers open it, and it holds a loud tone (not only a header, not silence)."""
    from softphone.media.wav import WavError, read_wav

    try:
        pcm, rate = read_wav(path)
        with wave.open(str(path)) as w:
            frames = w.getnframes()
    except (WavError, wave.Error, EOFError, OSError) as exc:
        return False, f"not readable: {exc}"
    seconds = len(pcm) / rate
    level = 20 * np.log10(float(np.sqrt(np.mean(pcm**2))) + 1e-12) if len(pcm) else -120.0
    ok = frames == len(pcm) and seconds >= 1.0 and level > -40
    return ok, f"{seconds:.1f} s, {level:.0f} dBFS"


def kill_during_call(workdir: Path) -> list[FaultResult]:
    workdir.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(workdir / "tone.wav", 40)
    heard = workdir / "heard.wav"
    phone = SoftphoneListen(workdir / "softphone", args=("--auto-answer", "--record", str(heard)))
    phone.start()
    sipp = Sipp(
        workdir / "sipp",
        "call",
        (HOST, phone.sip_port),
        service="softphone",
        rate=1,
        calls=1,
        call_ms=30_000,
        rtp_wav=tone,
        timeout_s=60,
    )
    try:
        sipp.start()
        phone.wait_event(
            lambda e: e.get("event") == "call_state" and e.get("state") == "established",
            20,
            "the call established",
        )
        time.sleep(3.0)  # three seconds of recorded call
        phone.kill_hard()
    finally:
        sipp.stop()
        phone.stop()
    playable, what = _playable(heard)
    row_before = _history_result(workdir / "softphone" / "data")
    started = time.monotonic()
    phone.start()  # same directories: the same database
    listening_s = time.monotonic() - started
    phone.stop()
    row_after = _history_result(workdir / "softphone" / "data")
    return [
        FaultResult(
            scenario="kill -9 during a recorded call",
            figure="listening again, s after the next start",
            recovery_s=listening_s,
            target_s=None,
            detail=(
                f"recording {'playable' if playable else 'NOT playable'} ({what}); history row "
                f"{row_before!r} before the next start, {row_after!r} after"
            ),
            ok=playable and row_after == "interrupted",
        )
    ]
