"""The player's start-up: PyAV and numpy load on a thread while it connects (phone/preload.py),
so nothing before the first picture may need them; audio that arrives before they are loaded is
kept and decoded afterwards, not lost."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from softphone.cli import AudioLater
from softphone.phone import preload
from softphone.phone.audio import NullAudio
from softphone.phone.player import Player, _Session, _Track
from softphone.rtp.depacketize import AccessUnit
from softphone.rtsp import client as rc
from softphone.rtsp.url import RtspUrl

HEAVY = ("numpy", "av", "sounddevice", "softphone.media.video", "softphone.phone.audio")


def test_the_play_path_imports_neither_pyav_nor_numpy() -> None:
    """Everything `softphone play` imports before it connects, in a fresh interpreter."""
    code = (
        "import sys, json\n"
        "import softphone.__main__, softphone.config, softphone.cli, softphone.phone.player\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    assert json.loads(done.stdout) == []


def test_preload_imports_pyav_and_numpy_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, json\n"
        "from softphone.phone import preload\n"
        "preload.start()\n"
        "ok = preload.wait(60)\n"
        f"print(json.dumps([ok, preload.ready(), [m for m in {list(HEAVY)!r} if m in sys.modules],"
        " sys.getswitchinterval()]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    ok, ready, loaded, switch = json.loads(done.stdout)
    assert ok and ready
    assert set(loaded) == set(HEAVY) - {"sounddevice"}  # PortAudio is opened with a device, not here
    assert switch == pytest.approx(0.005)  # the default, given back once the import is done


@pytest.fixture
def not_loaded_yet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """``preload.ready()`` answers False until the test sets ``state[0] = True``."""
    state = [False]
    monkeypatch.setattr(preload, "ready", lambda: state[0])
    yield state


def pcmu_track(session: _Session) -> _Track:
    info = rc.Track(index=0, media="audio", encoding="PCMU", clock_rate=8000, channels=1, payload_type=0,
                    fmtp={}, control_url=RtspUrl.parse("rtsp://127.0.0.1/a/trackID=0"))
    track = session._make_track(info, "audio")
    assert track is not None
    return track


def unit(n: int) -> AccessUnit:
    return AccessUnit(data=bytes([0x55 + n]) * 160, timestamp=160 * n, keyframe=True, codec="pcm_mulaw")


async def test_audio_before_pyav_is_loaded_is_kept_and_decoded_after(not_loaded_yet: list[bool]) -> None:
    player = Player("rtsp://127.0.0.1:1/a")
    session = _Session(player, player.url, "tcp")
    track = pcmu_track(session)
    for n in range(5):
        session._play_audio(track, unit(n))
    assert player.counters.audio_samples == 0
    assert len(track.pending_audio) == 5

    not_loaded_yet[0] = True
    session._play_audio(track, unit(5))
    assert len(track.pending_audio) == 0
    # six 20 ms units at 8 kHz, resampled to the 48 kHz the player plays at (the resampler
    # holds back a few samples of its filter): more than five units' worth came out
    assert 5 * 960 < player.counters.audio_samples <= 6 * 960
    assert player.counters.audio_frames >= 5


async def test_the_audio_kept_while_loading_is_bounded(not_loaded_yet: list[bool]) -> None:
    from softphone.phone.player import PENDING_AUDIO_UNITS

    player = Player("rtsp://127.0.0.1:1/a")
    session = _Session(player, player.url, "tcp")
    track = pcmu_track(session)
    for n in range(PENDING_AUDIO_UNITS + 20):
        session._play_audio(track, unit(n % 100))
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
