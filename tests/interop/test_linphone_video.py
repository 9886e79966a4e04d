"""Video calls with Linphone's console client (linphonec, liblinphone 5.1) headless: no display,
no camera (lab/linphone.py: ``-C -D``, mediastreamer's static picture as the camera and
``MSExtDisplay`` as the display), through the lab Kamailio, VP8 and H.264 (OpenH264), both
directions:

- our side decodes linphonec's picture (Debian's "no webcam" image, one picture a second): the
  ``video_*`` stats count decoded pictures of its size;
- linphonec's side: its ``snapshot`` command saves the next picture it decoded as a JPEG, and
  the frame counter our pattern draws, read back from two of them, goes up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest
from lab_support import LinphoneFactory, peers_required
from test_softphone_sip import account, expect, state
from video_call_support import STEP_S, stat, until

from softphone import lab
from softphone.config import Account, Config
from softphone.lab.linphone import CallEventKind, Linphone
from softphone.media.video_source import read_counter
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

# linphonec's static picture comes at one a second: 3 decoded is 3 s or so of a call.
THEIR_PICTURES = 3
OPENH264_PLUGIN = "*/mediastreamer/plugins/libmsopenh264.so"


def require_openh264(codec: str) -> None:
    """linphonec's H.264 is a mediastreamer plugin: without it, it offers VP8 alone."""
    if codec == "H264" and not list(Path("/usr/lib").glob(OPENH264_PLUGIN)):
        with peers_required():
            raise lab.PeerMissing("linphonec's H.264 (Debian mediastreamer2-plugin-openh264)")


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Phone] = []

    async def start(acc: Account, codec: str, *, auto_answer: bool = False) -> Phone:
        phone = Phone(
            Config(accounts=(acc,), codecs=("pcmu",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(codec),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=NullAudio(),
            video=VideoSettings(source="pattern", offer=True, codecs=(codec,)),
            data_dir=tmp_path / f"data{len(made)}",
        )
        await phone.start()
        made.append(phone)
        await expect(phone, lambda e: isinstance(e, pe.Registered))
        return phone

    yield start
    for phone in made:
        await phone.stop()


async def snapshot_counter(peer: Linphone, path: Path) -> int:
    """The frame counter of the next picture linphonec decodes from us (its JPEG snapshot)."""
    await asyncio.to_thread(peer.snapshot, path, STEP_S)
    frame: av.VideoFrame | None = None

    def whole() -> bool:  # written when that picture is decoded: read it once it is whole
        nonlocal frame
        try:
            with av.open(str(path)) as container:
                frame = next(container.decode(video=0))
        except (av.FFmpegError, StopIteration):
            return False
        return True

    await until(whole, STEP_S)
    assert frame is not None and (frame.width, frame.height) == (320, 240)  # our size
    return read_counter(frame)


def h264_fmtp(phone: Phone, call_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The call's H.264 fmtp: (ours, linphonec's), from the two SDPs."""
    info = phone.call(call_id)
    assert info.video_media is not None and info.video_media.codec is not None
    codec = info.video_media.codec
    assert info.local_sdp is not None
    mine = next(m for m in info.local_sdp.media if m.media == "video")
    return mine.fmtp(codec.payload_type), codec.fmtp


async def both_ways(phone: Phone, call_id: str, peer: Linphone, codec: str, tmp: Path) -> None:
    def count(key: str) -> int:
        value = stat(phone, call_id, key)
        return value if isinstance(value, int) else 0

    await until(lambda: count("video_frames_received") >= THEIR_PICTURES, 3 * STEP_S)
    stats = phone.call_stats(call_id) or {}
    assert stats["video_codec"] == codec
    assert stats["video_width"] and stats["video_height"]  # its picture, decoded
    first = await snapshot_counter(peer, tmp / "first.jpg")
    sent = count("video_frames_sent")
    await until(lambda: count("video_frames_sent") >= sent + 8)
    second = await snapshot_counter(peer, tmp / "second.jpg")
    assert first < second, (first, second)  # our pattern, moving, decoded by linphonec


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_we_call_linphonec_with_video(
    kamailio: lab.Kamailio,
    linphone_factory: LinphoneFactory,
    ours: Callable[..., Any],
    tmp_path: Path,
    codec: str,
) -> None:
    require_openh264(codec)
    bob = await asyncio.to_thread(linphone_factory, "bob", auto_answer=True, video=True)
    alice = await ours(account(kamailio, user="alice"), codec)
    call_id = await alice.dial("sip:bob@lab.test")
    await expect(alice, state(call_id, "established"))
    media = alice.call(call_id).video_media
    assert media is not None and media.codec is not None and media.codec.encoding == codec
    if codec == "H264":  # it answers Baseline (OpenH264's) to our Constrained Baseline
        mine, theirs = h264_fmtp(alice, call_id)
        assert mine["packetization-mode"] == theirs["packetization-mode"] == "1"
        assert theirs["profile-level-id"].lower() == "42801f"
    await both_ways(alice, call_id, bob, codec, tmp_path)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_linphonec_calls_us_with_video(
    kamailio: lab.Kamailio,
    linphone_factory: LinphoneFactory,
    ours: Callable[..., Any],
    tmp_path: Path,
    codec: str,
) -> None:
    """linphonec offers VP8 and H.264; we take the one codec we have."""
    require_openh264(codec)
    bob = await asyncio.to_thread(linphone_factory, "bob", video=True)
    alice = await ours(account(kamailio, user="alice"), codec, auto_answer=True)
    mark = bob.mark()
    await asyncio.to_thread(bob.call, "sip:alice@lab.test")
    await asyncio.to_thread(bob.wait_event, CallEventKind.STREAMS_RUNNING, STEP_S, since=mark)
    await expect(alice, state(None, "established"))
    call_id = next(c.call_id for c in alice.calls if c.state == "established")
    if codec == "H264":
        # Its offer: profile-level-id=42801F (Baseline) and no packetization-mode, so mode 0
        # (RFC 6184 §8.1); our answer names its Baseline (sdp/h264_profile.py can_answer).
        mine, theirs = h264_fmtp(alice, call_id)
        assert theirs == {"profile-level-id": "42801F"}
        assert mine == {"profile-level-id": "42801f", "packetization-mode": "0"}
    await both_ways(alice, call_id, bob, codec, tmp_path)
