"""H.264 video calls between the phone and baresip 1.0's ``avcodec`` module (Debian
``baresip-ffmpeg``: libx264 to encode, FFmpeg's h264 to decode), on 127.0.0.1 without a
registrar, in both directions, as the VP8/VP9 calls of test_video_calls.py:

- our side decodes the pictures of baresip's fakevideo (the ``video_*`` stats);
- baresip's ``snapshot`` saves the pictures it decoded from us, and our pattern's frame counter
  read back from two of them goes up.

What baresip 1.0's avcodec does in SDP (read from its source and seen here): it registers H.264
twice, ``packetization-mode=0`` first, then ``=1``, each with ``profile-level-id=42e01f``
(Constrained Baseline, level 3.1); it matches an offered H.264 on the packetization mode alone.
Its account's ``video_codecs=H264`` keeps the first of the two: mode 0 alone. So each mode is
tested both ways: we offer one mode, or baresip offers mode 0 alone or both.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from lab_support import dump, peers_required
from phone_support import expect, port_of
from video_call_support import STEP_S, baresip_config, both_ways, stat

from softphone import lab
from softphone.config import Account, Config, MediaEncryptionName
from softphone.lab.baresip import MODULE_DIR
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.sdp import SessionDescription
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

PROFILE_LEVEL_ID = "42e01f"  # what baresip 1.0's avcodec writes, whatever it was offered
# Our pattern's key frame at 1280x720 has NAL units of some 1,500 bytes unsliced: a packet
# cannot hold them, so mode 1 sends FU-A fragments (RFC 6184 §5.8) and mode 0, which has none
# (§6.2), needs x264 to cut slices that fit.
SENT_SIZE = (1280, 720)


@pytest.fixture
def bob(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[lab.Baresip]:
    auto_answer, video_codecs, *encryption = request.param
    phone = lab.Baresip(
        tmp_path / "bob",
        codecs="PCMU",
        video_codecs=video_codecs,
        extra_config=baresip_config("avcodec"),
        auto_answer=auto_answer,
        mediaenc=encryption[0] if encryption else None,
    )
    with peers_required():
        if not (MODULE_DIR / "avcodec.so").is_file():
            raise lab.PeerMissing("baresip's avcodec module (Debian package baresip-ffmpeg)")
        phone.start()
    try:
        yield phone
    except BaseException:
        dump("baresip (avcodec)", phone.lines())
        raise
    finally:
        phone.stop()


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[Callable[..., Phone]]:
    made: list[Phone] = []

    async def start(
        *,
        modes: tuple[int, ...] = (1, 0),
        size: tuple[int, int] = (320, 240),
        auto_answer: bool = False,
        encryption: MediaEncryptionName | None = None,
    ) -> Phone:
        accounts: tuple[Account, ...] = ()
        if encryption is not None:
            uri = SipUri(user="softphone", host="127.0.0.1")
            accounts = (Account(name="a", uri=uri, media_encryption=encryption),)
        video = VideoSettings(
            source="pattern",
            offer=True,
            codecs=("H264",),
            h264_packetization_modes=modes,
            width=size[0],
            height=size[1],
        )
        phone = Phone(
            Config(accounts=accounts, codecs=("pcmu",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(7),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=NullAudio(),
            video=video,
            data_dir=tmp_path / "data",
        )
        await phone.start()
        made.append(phone)
        return phone

    yield start  # type: ignore[misc]
    for phone in made:
        await phone.stop()


def negotiated(phone: Phone, call_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The H.264 parameters of the call's video: (ours, the peer's), from the two SDPs."""
    info = phone.call(call_id)
    assert info.video_media is not None and info.video_media.codec is not None
    codec = info.video_media.codec
    assert codec.encoding == "H264"
    assert info.local_sdp is not None
    mine = next(m for m in info.local_sdp.media if m.media == "video")
    return mine.fmtp(codec.payload_type), codec.fmtp


def peer_h264(phone: Phone, call_id: str) -> dict[int, dict[str, str]]:
    """The peer's m=video formats with their fmtp (what it offered or answered)."""
    raw = phone.call(call_id).remote_sdp
    assert raw is not None
    video = next(m for m in SessionDescription.parse(raw).media if m.media == "video")
    return {
        pt: video.fmtp(pt) for pt, rtpmap in video.rtpmaps().items() if rtpmap.encoding == "H264"
    }


async def established(phone: Phone) -> str:
    await expect(
        phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established", STEP_S
    )
    return next(c.call_id for c in phone.calls if c.state == "established")


@pytest.mark.parametrize(
    ("bob", "mode"),
    [((True, None), 1), ((True, None), 0)],
    indirect=["bob"],
    ids=["mode1", "mode0"],
)
async def test_we_call_baresip_with_h264(
    bob: lab.Baresip, ours: Callable[..., Phone], tmp_path: Path, mode: int
) -> None:
    """We offer H.264 in one packetization mode; baresip answers it and both sides decode."""
    phone = await ours(modes=(mode,), size=SENT_SIZE)  # type: ignore[misc]
    await phone.dial(bob.uri)
    call_id = await established(phone)
    mine, theirs = negotiated(phone, call_id)
    assert mine["packetization-mode"] == theirs["packetization-mode"] == str(mode)
    assert theirs["profile-level-id"] == PROFILE_LEVEL_ID
    await both_ways(phone, call_id, bob, "h264", tmp_path, SENT_SIZE)


@pytest.mark.parametrize(
    ("bob", "mode", "offered"),
    [((False, None), 1, {"0", "1"}), ((False, "H264"), 0, {"0"})],
    indirect=["bob"],
    ids=["both-offered", "mode0-offered"],
)
async def test_baresip_calls_us_with_h264(
    bob: lab.Baresip, ours: Callable[..., Phone], tmp_path: Path, mode: int, offered: set[str]
) -> None:
    """baresip offers H.264 in both modes (or mode 0 alone); we answer in our preferred mode
    among them (1 before 0) and both sides decode."""
    phone = await ours(auto_answer=True, size=SENT_SIZE)  # type: ignore[misc]
    bob.dial(f"sip:softphone@127.0.0.1:{port_of(phone)}")
    call_id = await established(phone)
    offer = peer_h264(phone, call_id)
    modes = {fmtp.get("packetization-mode", "0") for fmtp in offer.values()}
    assert modes == offered, offer
    mine, theirs = negotiated(phone, call_id)
    assert mine["packetization-mode"] == theirs["packetization-mode"] == str(mode)
    # RFC 6184 §8.2.2: our answer keeps the offer's profile, at a level not above its 3.1.
    assert theirs["profile-level-id"] == PROFILE_LEVEL_ID
    assert mine["profile-level-id"] == PROFILE_LEVEL_ID
    await both_ways(phone, call_id, bob, "h264", tmp_path, SENT_SIZE)


@pytest.mark.parametrize("bob", [(True, None, "srtp-mand")], indirect=True, ids=["sdes"])
async def test_we_call_baresip_with_encrypted_h264(
    bob: lab.Baresip, ours: Callable[..., Phone], tmp_path: Path
) -> None:
    """baresip's srtp (RTP/SAVP, SDES keys) carries the H.264 stream too."""
    phone = await ours(encryption="srtp")  # type: ignore[misc]
    await phone.dial(bob.uri)
    call_id = await established(phone)
    await both_ways(phone, call_id, bob, "h264", tmp_path)
    assert stat(phone, call_id, "video_encryption") == "sdes"
