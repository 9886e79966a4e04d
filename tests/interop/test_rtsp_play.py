"""``softphone play`` against a real RTSP server (GStreamer 1.22 on 127.0.0.1, the peer lab's).

Every test runs the real command (``python -m softphone play URL --headless --json``) in a
subprocess and checks its JSON events, its exit code, what it wrote, and what the server saw.
Durations are short and counted by the command itself; nothing here sleeps.

Every one of those processes runs under media_guard/sitecustomize.py: ``av.open`` refuses network
URLs and starting ffmpeg or GStreamer fails, so what plays here went through our own RTSP, RTP and
depacketisers, not FFmpeg's or GStreamer's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from cli_support import make_env

from softphone.lab import rtsp_server as lab_rtsp

pytestmark = pytest.mark.interop

RUN_LIMIT_S = 50.0
GUARD_DIR = Path(__file__).with_name("media_guard")
Event = dict[str, Any]


@dataclass
class PlayResult:
    returncode: int
    events: list[Event]
    stderr: str
    elapsed_s: float

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e["event"] == kind]

    def one(self, kind: str) -> Event:
        found = self.of(kind)
        assert len(found) == 1, (kind, self.events, self.stderr)
        return found[0]


def env_for(root: Path) -> dict[str, str]:
    env = make_env(root)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), env.get("PYTHONPATH")]))
    env["SOFTPHONE_MEDIA_GUARD"] = "1"
    return env


def test_the_media_guard_is_on_in_the_play_processes(tmp_path: Path) -> None:
    probe = (
        "import av, subprocess\n"
        "try:\n    av.open('rtsp://127.0.0.1:9/x')\nexcept RuntimeError as e:\n    print('av:', e)\n"
        "try:\n    subprocess.run(['ffmpeg', '-version'])\nexcept RuntimeError as e:\n    print('spawn:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert (
        "av: av.open('rtsp://127.0.0.1:9/x'): FFmpeg must not do the networking" in done.stdout
    ), done.stdout + done.stderr
    assert "spawn: the play path must not run ffmpeg" in done.stdout


def argv(tmp_path: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "softphone",
        "--log-file",
        str(tmp_path / "play.log"),
        "--log-level",
        "DEBUG",
        "play",
        url,
        "--headless",
        "--json",
        "--no-audio",
        *extra,
    ]


def play(tmp_path: Path, url: str, *extra: str) -> PlayResult:
    started = time.monotonic()
    done = subprocess.run(
        argv(tmp_path, url, *extra),
        env=env_for(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    elapsed = time.monotonic() - started
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert "Traceback" not in done.stderr, done.stderr
    return PlayResult(done.returncode, events, done.stderr, elapsed)


def assert_played(result: PlayResult, *, transport: str) -> None:
    assert result.returncode == 0, result.stderr
    assert result.one("playing")["transport"] == transport
    summary = result.one("summary")
    assert summary["transport"] == transport


# --------------------------------------------------------------------------- codecs and transports
VIDEO_CASES = [
    ("/h264", "udp", "h264"),
    ("/h264", "tcp", "h264"),
    ("/h265", "udp", "hevc"),
    ("/mjpeg", "tcp", "mjpeg"),
]


@pytest.mark.parametrize(
    ("mount", "transport", "codec"), VIDEO_CASES, ids=[f"{m[1:]}-{t}" for m, t, _ in VIDEO_CASES]
)
def test_video_streams_play(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer, mount: str, transport: str, codec: str
) -> None:
    result = play(tmp_path, rtsp_lab.url(mount), "--transport", transport, "--duration", "3")
    assert_played(result, transport=transport)
    described = result.one("described")
    spec = lab_rtsp.MOUNTS[mount]
    assert [s["media"] for s in described["streams"]] == [s.media for s in spec.streams]
    assert [s["clock_rate"] for s in described["streams"]] == [s.clock_rate for s in spec.streams]
    first = result.one("first_frame")
    assert (first["width"], first["height"], first["codec"]) == (320, 240, codec)
    assert first["ms"] < 3000
    summary = result.one("summary")
    # 25 fps for the time left after the first picture, less a margin for a shared machine
    expected = 25 * (3.0 - first["ms"] / 1000)
    assert summary["video_frames"] >= 0.6 * expected, summary
    assert summary["lost_packets"] == 0
    assert result.of("stats"), "a stats event every second"
    if len(spec.streams) > 1:  # /h264 carries AAC too
        assert summary["audio_frames"] >= 0.6 * 50 * (3.0 - first["ms"] / 1000), summary
    assert result.elapsed_s < 3.0 + 4.0


AUDIO_CASES = ["/pcmu", "/opus", "/l16", "/h264-latm"]


@pytest.mark.parametrize("mount", AUDIO_CASES, ids=[m[1:] for m in AUDIO_CASES])
def test_audio_streams_play(tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer, mount: str) -> None:
    result = play(tmp_path, rtsp_lab.url(mount), "--duration", "3")
    assert_played(result, transport="udp")
    summary = result.one("summary")
    playing_at = 0.0
    # audio_frames are 20 ms units of decoded audio: about 50 per second once playing
    assert summary["audio_frames"] >= 0.6 * 50 * (3.0 - 1.5 - playing_at), summary
    assert summary["audio_frames"] <= 50 * 3.0 + 10, summary


def test_auto_falls_back_to_tcp_when_udp_is_refused(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer
) -> None:
    mark = rtsp_lab.mark()
    result = play(tmp_path, rtsp_lab.url("/tcp-only"), "--duration", "4")
    assert_played(result, transport="tcp")
    assert result.one("first_frame")["codec"] == "h264"
    setups = [line for line in rtsp_lab.lines()[mark:] if line.startswith("LAB SETUP")]
    assert any("RTP/AVP;" in s or "RTP/AVP/UDP" in s for s in setups), setups  # tried UDP first
    assert any("RTP/AVP/TCP" in s for s in setups), setups


def test_forced_udp_on_a_tcp_only_server_fails_with_the_reason(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer
) -> None:
    result = play(tmp_path, rtsp_lab.url("/tcp-only"), "--transport", "udp", "--duration", "10")
    assert result.returncode == 1
    assert "461" in result.one("failed")["reason"]
    assert result.elapsed_s < 15
    assert "461" in result.stderr


# --------------------------------------------------------------------------- auth and refusals
@pytest.mark.parametrize("mount", ["/basic", "/digest"])
def test_credentials_from_the_url_with_special_characters(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer, mount: str
) -> None:
    url = rtsp_lab.url(mount, user=rtsp_lab.user, password=rtsp_lab.password)
    assert "%40" in url and "%23" in url
    result = play(tmp_path, url, "--duration", "3")
    assert_played(result, transport="udp")
    assert result.one("first_frame")["codec"] == "h264"
    assert rtsp_lab.password not in json.dumps(result.events)  # never echoed
    assert rtsp_lab.password not in result.stderr


@pytest.mark.parametrize("mount", ["/basic", "/digest"])
def test_credentials_from_the_config_by_camera_name(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer, mount: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[camera]]\nname = "door"\nurl = "{rtsp_lab.url(mount)}"\nusername = "{rtsp_lab.user}"\n'
        f'password = "{rtsp_lab.password}"\n',
        encoding="utf-8",
    )
    args = argv(tmp_path, "door", "--duration", "3")
    args[3:3] = ["--config", str(config)]
    done = subprocess.run(
        args,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert any(json.loads(line)["event"] == "first_frame" for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    ("password", "says"),
    [(None, "401"), ("wrong", "401")],
    ids=["no-credentials", "wrong-password"],
)
@pytest.mark.parametrize("mount", ["/basic", "/digest"])
def test_auth_failures_end_with_a_clear_reason(
    tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer, mount: str, password: str | None, says: str
) -> None:
    url = rtsp_lab.url(mount, user=rtsp_lab.user if password else None, password=password)
    result = play(tmp_path, url, "--duration", "10")
    assert result.returncode == 1
    reason = result.one("failed")["reason"]
    assert says in reason, reason
    assert result.elapsed_s < 15


def test_unknown_mount_is_404(tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer) -> None:
    result = play(tmp_path, rtsp_lab.url("/no-such-stream"), "--duration", "10")
    assert result.returncode == 1
    assert "404" in result.one("failed")["reason"]
    assert result.elapsed_s < 15


# --------------------------------------------------------------------------- snapshot and recording
def test_snapshot_and_recording(tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer) -> None:
    png, mkv = tmp_path / "shot.png", tmp_path / "rec.mkv"
    result = play(
        tmp_path,
        rtsp_lab.url("/h264"),
        "--duration",
        "4",
        "--snapshot",
        str(png),
        "--record",
        str(mkv),
    )
    assert_played(result, transport="udp")
    summary = result.one("summary")
    assert summary["snapshot"] == str(png) and summary["recording"] == str(mkv)
    with av.open(str(png)) as image:
        frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
    with av.open(str(mkv)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 0.5 * summary["video_frames"], (frames, summary)


# --------------------------------------------------------------------------- on-demand, keep-alive, reconnect
def test_on_demand_file_reports_its_range(tmp_path: Path, rtsp_lab: lab_rtsp.RtspServer) -> None:
    result = play(tmp_path, rtsp_lab.url("/file"), "--duration", "3")
    assert_played(result, transport="udp")
    playing = result.one("playing")
    assert playing["range_end"] == pytest.approx(lab_rtsp.FILE_DURATION_S, abs=0.5)
    assert result.one("first_frame")["codec"] == "h264"


@pytest.mark.parametrize("rtsp_lab_private", [{"session_timeout_s": 10}], indirect=True)
def test_keep_alive_holds_a_session_past_its_timeout(
    tmp_path: Path, rtsp_lab_private: lab_rtsp.RtspServer
) -> None:
    """Session timeout 10 s (GStreamer drops a silent session about 5 s after it); a play three
    times that long must keep its session with zero reconnects (the keep-alives work)."""
    mark = rtsp_lab_private.mark()
    result = play(tmp_path, rtsp_lab_private.url("/h264"), "--duration", "30")
    assert_played(result, transport="udp")
    assert result.elapsed_s >= 29.5  # played the whole --duration
    lines = rtsp_lab_private.lines()[mark:]
    teardown = next(
        (i for i, line in enumerate(lines) if line.startswith("LAB TEARDOWN")), len(lines)
    )
    assert not [line for line in lines[:teardown] if "SESSION-REMOVED" in line], (
        lines
    )  # never timed out
    keepalives = [line for line in lines if line.startswith(("LAB GET_PARAMETER", "LAB OPTIONS"))]
    assert len(keepalives) >= 5, lines  # every timeout/2 = 5 s after the last request
    assert result.one("summary")["reconnects"] == 0
    stats = result.of("stats")
    assert stats[-1]["video_frames"] - stats[-4]["video_frames"] >= 25, stats[
        -4:
    ]  # still flowing at the end


def test_reconnects_after_a_server_restart(
    tmp_path: Path, rtsp_lab_private: lab_rtsp.RtspServer
) -> None:
    proc = subprocess.Popen(
        argv(tmp_path, rtsp_lab_private.url("/h264"), "--duration", "16"),
        env=env_for(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[Event] = []
    first_frame = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "first_frame":
                first_frame.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first_frame.wait(10), events
        rtsp_lab_private.restart()
        proc.wait(timeout=RUN_LIMIT_S)
        reader.join(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 0, stderr
    kinds = [e["event"] for e in events]
    assert "reconnecting" in kinds, kinds
    after = kinds.index("reconnecting")
    assert "playing" in kinds[after:], kinds  # playing again after the restart
    summary = events[-1]
    assert summary["event"] == "summary" and summary["reconnects"] >= 1
    stats_after = [e for e in events[after:] if e["event"] == "stats"]
    assert stats_after[-1]["video_frames"] > stats_after[0]["video_frames"], stats_after


@pytest.mark.parametrize("rtsp_lab_private", [{"tls": True}], indirect=True)
def test_rtsps(tmp_path: Path, rtsp_lab_private: lab_rtsp.RtspServer, lab_pki: Any) -> None:
    url = rtsp_lab_private.url("/h264", scheme="rtsps")
    result = play(
        tmp_path, url, "--duration", "3", "--ca-file", str(lab_pki.ca_file), "--transport", "tcp"
    )
    assert_played(result, transport="tcp")
    assert result.one("first_frame")["codec"] == "h264"


@pytest.fixture
def media_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard of the subprocesses, in this process (undone after the test)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "media_guard_site", GUARD_DIR / "sitecustomize.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(av, "open", av.open)  # remembered, so that the guard is undone
    monkeypatch.setattr(subprocess.Popen, "__init__", subprocess.Popen.__init__)
    module.install()


async def test_pause_resume_and_seek_on_demand_media(
    rtsp_lab: lab_rtsp.RtspServer, media_guard: None
) -> None:
    """The façade the viewer uses: PAUSE stops the pictures, PLAY resumes, and a seek asks for
    Range npt=<position + 10> and restarts from there."""
    import asyncio

    from softphone.phone import events as pe
    from softphone.phone.player import Player, PlayerOptions

    async def next_of(player: Player, kind: type[pe.PhoneEvent], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                event = await player.events.get()
                if isinstance(event, kind):
                    return event
                assert not isinstance(event, pe.StreamFailed), event

    player = Player(rtsp_lab.url("/file"), options=PlayerOptions(transport="tcp"))
    stop = asyncio.Event()
    task = asyncio.ensure_future(player.run(stop))
    try:
        playing = await next_of(player, pe.StreamPlaying)
        assert playing.range_end == pytest.approx(lab_rtsp.FILE_DURATION_S, abs=0.5)
        await next_of(player, pe.FirstFrame)
        await next_of(player, pe.StreamStats)
        player.pause()
        await next_of(player, pe.StreamPaused)
        frames_at_pause = player.counters.video_frames
        await next_of(player, pe.StreamStats)
        await next_of(player, pe.StreamStats)
        # nothing new after PAUSE was answered, but for pictures already in flight
        assert player.counters.video_frames - frames_at_pause <= 5
        mark = rtsp_lab.mark()
        player.resume()
        await next_of(player, pe.StreamPlaying)
        # pictures flow again: wait on that (a statistics tick may come just after PLAY)
        for _ in range(5):
            await next_of(player, pe.StreamStats)
            if player.counters.video_frames > frames_at_pause + 5:
                break
        assert player.counters.video_frames > frames_at_pause + 5
        position = player.position_s
        assert position is not None
        player.seek(10)
        resumed = await next_of(player, pe.StreamPlaying)
        assert resumed.range_start == pytest.approx(position + 10, abs=2.5)
        plays = [line for line in rtsp_lab.lines()[mark:] if line.startswith("LAB PLAY")]
        assert any("npt=" in line for line in plays), plays
        frames = player.counters.video_frames
        for _ in range(5):
            await next_of(player, pe.StreamStats)
            if player.counters.video_frames > frames:
                break
        assert player.counters.video_frames > frames  # pictures after the seek
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 10)
    assert code == 0
