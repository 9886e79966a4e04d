"""The player's start-up: on the way to PLAY only the handshake's modules load; PyAV and numpy load
on a thread once PLAY is answered (phone/preload.py), the RTP modules with the first media, so
nothing before the first picture may need them; audio that arrives before they are loaded is kept
and decoded afterwards, not lost; the garbage collector is paused until the first picture."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_camera import FakeCamera

from softphone.__main__ import main
from softphone.cli_play import AudioLater
from softphone.phone import preload
from softphone.phone.audio import NullAudio
from softphone.phone.player import Player
from softphone.phone.player_media import AudioOutput, TrackDecoding
from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtsp import client as rc
from softphone.rtsp.url import RtspUrl

HEAVY = ("numpy", "av", "sounddevice", "softphone.media.video", "softphone.phone.audio")
# Not needed to send PLAY: what decodes, the RTP session, digest auth (until a challenge), SDP
# offer/answer, the SIP events and URIs, the TOML parser (no config file).
NOT_BEFORE_PLAY = (
    *HEAVY,
    "softphone.rtp.session",
    "softphone.rtp.packet",
    "softphone.rtp.reorder",
    "softphone.auth.basic",
    "softphone.auth.digest",
    "softphone.sdp.negotiation",
    "softphone.phone.events",
    "softphone.sip.uri",
    "tomllib",
)

# `softphone play` in a child that notes, when it sends PLAY and when it prints the first picture,
# which of NOT_BEFORE_PLAY are loaded and whether the garbage collector runs.
WATCH_PLAY = f"""
import gc, json, socket, sys
def note(label):
    loaded = [m for m in {NOT_BEFORE_PLAY!r} if m in sys.modules]
    sys.stderr.write(label + " " + json.dumps([loaded, gc.isenabled()]) + "\\n")
send = socket.socket.send
def watched_send(self, data, *args):
    if data.startswith(b"PLAY "):
        note("AT-PLAY")
    return send(self, data, *args)
socket.socket.send = watched_send
write = sys.stdout.write
def watched_write(text):
    if '"first_frame"' in text:
        note("AT-PICTURE")
    return write(text)
sys.stdout.write = watched_write
from softphone.__main__ import main
sys.exit(main())
"""


def test_the_play_path_imports_neither_pyav_nor_numpy() -> None:
    """Everything `softphone play` imports before it connects, in a fresh interpreter."""
    code = (
        "import sys, json\n"
        "import softphone.__main__, softphone.config, softphone.cli, softphone.cli_play,"
        " softphone.phone.player\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert json.loads(done.stdout) == []


async def test_only_the_handshake_is_loaded_when_play_goes_out(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    async with FakeCamera(ssrc_in="setup") as camera:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WATCH_PLAY,
            "play",
            camera.url("/h264"),
            "--headless",
            "--json",
            "--no-audio",
            "--duration",
            "4",
            "--transport",
            "tcp",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
    notes = dict(line.split(" ", 1) for line in err.decode().splitlines() if line.startswith("AT-"))
    events = [json.loads(line)["event"] for line in out.decode().splitlines()]
    assert child.returncode == 0, err.decode()[-2000:]
    assert "first_frame" in events and events[-1] == "summary"
    loaded, collecting = json.loads(notes["AT-PLAY"])
    assert loaded == [] and collecting is False
    # ... and what decodes the picture did load after PLAY; the collector runs again with it
    loaded, collecting = json.loads(notes["AT-PICTURE"])
    assert {"av", "softphone.media.video", "softphone.rtp.session", "softphone.rtp.packet"} <= set(
        loaded
    )
    assert collecting is True


def test_the_collector_runs_again_when_play_ends_early() -> None:
    assert gc.isenabled()
    try:
        assert main(["play", "http://not-rtsp/", "--headless"]) == 2  # refused before it connects
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_the_collector_is_held_then_runs_again_without_walking_what_start_up_made() -> None:
    assert gc.isenabled()
    try:
        preload.hold_gc()
        assert not gc.isenabled()
        before = gc.get_freeze_count()
        preload.release_gc()
        assert gc.isenabled()
        assert (
            gc.get_freeze_count() > before
        )  # start-up's objects: frozen, not collected all at once
        preload.release_gc()  # twice: nothing more
        assert gc.isenabled()
    finally:
        gc.unfreeze()


async def test_the_collector_runs_again_when_the_player_ends_without_a_picture() -> None:
    """A refused stream never shows a picture: the end of run() releases what start-up held."""
    player = Player("rtsp://127.0.0.1:1/nothing-listens-here")
    preload.hold_gc()
    try:
        assert await player.run(asyncio.Event(), duration_s=10.0) == 1
        assert gc.isenabled()
    finally:
        preload.release_gc()
        gc.unfreeze()


def test_holding_the_collector_leaves_alone_a_collector_paused_by_someone_else() -> None:
    gc.disable()
    try:
        before = gc.get_freeze_count()
        preload.hold_gc()
        preload.release_gc()
        assert not gc.isenabled() and gc.get_freeze_count() == before
    finally:
        gc.enable()


def test_preload_imports_pyav_and_numpy_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, json\n"
        "from softphone.phone import preload\n"
        "preload.start()\n"
        "ok = preload.wait(60)\n"
        f"print(json.dumps([ok, preload.ready(), [m for m in {list(HEAVY)!r} if m in sys.modules],"
        " sys.getswitchinterval()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    ok, ready, loaded, switch = json.loads(done.stdout)
    assert ok and ready
    assert set(loaded) == set(HEAVY) - {
        "sounddevice"
    }  # PortAudio is opened with a device, not here
    assert switch == pytest.approx(0.005)  # the default, given back once the import is done


def test_with_video_numpy_waits_for_the_first_picture() -> None:
    """PyAV first; numpy (what audio needs) only once the first picture is out."""
    code = (
        "import sys, json\n"
        "from softphone.phone import preload\n"
        "preload.REST_AFTER_S = 60.0\n"
        "preload.start(video=True)\n"
        "import softphone.media.video\n"  # returns once the thread's import of it is complete
        "waiting = ['numpy' in sys.modules, preload.ready()]\n"
        "preload.picture_shown()\n"
        "ok = preload.wait(60)\n"
        "print(json.dumps([waiting, ok, 'numpy' in sys.modules, 'softphone.phone.audio' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    waiting, ok, numpy_loaded, audio_loaded = json.loads(done.stdout)
    assert waiting == [False, False]
    assert ok and numpy_loaded and audio_loaded


@pytest.fixture
def not_loaded_yet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """``preload.ready()`` answers False until the test sets ``state[0] = True``."""
    state = [False]
    monkeypatch.setattr(preload, "ready", lambda: state[0])
    yield state


def pcmu_track(player: Player) -> TrackDecoding:
    info = rc.Track(
        index=0,
        media="audio",
        encoding="PCMU",
        clock_rate=8000,
        channels=1,
        payload_type=0,
        fmtp={},
        control_url=RtspUrl.parse("rtsp://127.0.0.1/a/trackID=0"),
    )
    depack = make_depacketizer(info.encoding, info.clock_rate, info.fmtp, info.channels)
    return TrackDecoding(
        info, "audio", depack, counters=player.counters, audio=AudioOutput(None), notify=player.emit
    )


def unit(n: int) -> AccessUnit:
    return AccessUnit(
        data=bytes([0x55 + n]) * 160, timestamp=160 * n, keyframe=True, codec="pcm_mulaw"
    )


async def test_audio_before_pyav_is_loaded_is_kept_and_decoded_after(
    not_loaded_yet: list[bool],
) -> None:
    player = Player("rtsp://127.0.0.1:1/a")
    track = pcmu_track(player)
    for n in range(5):
        track.take(unit(n))
    assert player.counters.audio_samples == 0
    assert len(track.pending_audio) == 5

    not_loaded_yet[0] = True
    track.take(unit(5))
    assert len(track.pending_audio) == 0
    # six 20 ms units at 8 kHz, resampled to the 48 kHz the player plays at (the resampler
    # holds back a few samples of its filter): more than five units' worth came out
    assert 5 * 960 < player.counters.audio_samples <= 6 * 960
    assert player.counters.audio_frames >= 5


async def test_the_audio_kept_while_loading_is_bounded(not_loaded_yet: list[bool]) -> None:
    from softphone.phone.player_media import PENDING_AUDIO_UNITS

    player = Player("rtsp://127.0.0.1:1/a")
    track = pcmu_track(player)
    for n in range(PENDING_AUDIO_UNITS + 20):
        track.take(unit(n % 100))
    assert len(track.pending_audio) == PENDING_AUDIO_UNITS
    assert track.pending_audio[0].timestamp == 160 * 20  # the oldest went


class CountingAudio(NullAudio):
    made = 0

    def __init__(self) -> None:
        CountingAudio.made += 1


def test_audio_later_makes_the_provider_only_when_a_stream_has_sound() -> None:
    CountingAudio.made = 0
    unused = AudioLater(CountingAudio)
    unused.tones(ringback=False, ring=False)
    unused.close()
    assert CountingAudio.made == 0

    used = AudioLater(CountingAudio)
    engine = used.engine_for_call(1)
    assert CountingAudio.made == 1 and engine.sample_rate > 0
    used.release(engine)
    used.close()
    assert CountingAudio.made == 1
