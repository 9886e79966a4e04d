"""Two Phones on 127.0.0.1 in video calls (phone/video.py, phone/video_stream.py): the test
pattern each side sends is decoded by the other, its frame counter going up; a side without a
source answers receive-only; video added and taken away by re-INVITE; the ``video_*`` stats."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import av
import pytest
from phone_support import expect, port_of

from softphone.config import Account, Config, MediaEncryptionName
from softphone.media.video_source import TestPattern, read_counter
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings, local_codecs
from softphone.sdp import SessionDescription
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

Start = Callable[..., Awaitable[Phone]]
PATTERN = VideoSettings(source="pattern", offer=True)


@pytest.fixture
async def make() -> AsyncIterator[Start]:
    made: list[Phone] = []

    async def start(
        name: str,
        video: VideoSettings | None,
        *,
        auto_answer: bool = True,
        config: Config | None = None,
        data_dir: Path | None = None,
    ) -> Phone:
        phone = Phone(
            config or Config(codecs=("pcmu",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(name),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=NullAudio(),
            video=video,
            data_dir=data_dir,
        )
        await phone.start()
        made.append(phone)
        return phone

    yield start
    for phone in made:
        await phone.stop()


async def until(condition: Callable[[], bool], timeout_s: float = 8.0) -> None:
    """Wait for ``condition`` (checked every 20 ms), at most ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def received(phone: Phone, call_id: str) -> int:
    stats = phone.call_stats(call_id) or {}
    return int(stats.get("video_frames_received") or 0)  # type: ignore[call-overload]


def their_call(phone: Phone) -> CallInfo:
    return next(c for c in phone.calls if c.state != "ended")


async def call(a: Phone, b: Phone) -> tuple[str, str]:
    call_id = await a.dial(f"sip:softphone@127.0.0.1:{port_of(b)}")
    await expect(a, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    return call_id, their_call(b).call_id


def counter(phone: Phone, call_id: str) -> int:
    """The pattern's frame counter in the last picture the phone received (drawn with our
    self-view in the corner, away from the counter's blocks)."""
    rgb = phone.video_picture(call_id, 320, 240)
    assert rgb is not None and rgb.shape == (240, 320, 3)
    return read_counter(av.VideoFrame.from_ndarray(rgb, format="rgb24"))


async def test_each_side_decodes_the_others_moving_pattern(make: Start) -> None:
    a = await make("a", PATTERN)
    b = await make("b", VideoSettings(source="pattern"))
    ours, theirs = await call(a, b)
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    first = (counter(a, ours), counter(b, theirs))
    await until(lambda: received(a, ours) >= 20 and received(b, theirs) >= 20)
    later = (counter(a, ours), counter(b, theirs))
    assert later[0] > first[0] and later[1] > first[1]  # the pictures move, in order
    stats = a.call_stats(ours)
    assert stats is not None
    assert stats["video_codec"] == "VP8"  # our first choice, the answerer's too
    assert (stats["video_width"], stats["video_height"]) == (320, 240)
    assert int(stats["video_frames_sent"]) >= 20  # type: ignore[call-overload]
    assert 5.0 <= float(stats["video_fps"]) <= 16.0  # type: ignore[arg-type]
    # SRTP as the audio's (SDES, keys of its own: RFC 4568 §6.1)
    assert stats["encryption"] == stats["video_encryption"] == "sdes"
    local = a.call(ours).local_sdp
    assert local is not None and [m.media for m in local.media] == ["audio", "video"]
    keys = [set(m.attribute_all("crypto")) for m in local.media]
    assert keys[0] and keys[1] and not keys[0] & keys[1]
    await a.hangup(ours)
    ended = await expect(a, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.stats is not None
    assert int(ended.stats["video_frames_received"]) >= 20  # type: ignore[call-overload]
    assert a.call(ours).video_rtp is None and a.video_picture(ours, 320, 240) is None


async def test_a_side_without_a_source_answers_receive_only(make: Start) -> None:
    a = await make("a", PATTERN)
    b = await make("b", None)
    ours, theirs = await call(a, b)
    await until(lambda: received(b, theirs) >= 5)
    answer = SessionDescription.parse(a.call(ours).remote_sdp or b"")
    video = answer.first_media("video")
    assert video is not None and answer.direction_of(video).value == "recvonly"
    assert received(a, ours) == 0
    stats_b = b.call_stats(theirs)
    assert stats_b is not None and stats_b["video_frames_sent"] == 0


async def test_video_is_added_and_removed_by_reinvite(make: Start) -> None:
    a = await make("a", VideoSettings(source="pattern"))  # a source, but no video offered
    b = await make("b", VideoSettings(source="pattern"))
    ours, theirs = await call(a, b)
    assert a.video_picture(ours, 320, 240) is None
    local = a.call(ours).local_sdp
    assert local is not None and [m.media for m in local.media] == ["audio"]
    await a.set_video(ours, True)
    await until(lambda: received(a, ours) >= 5 and received(b, theirs) >= 5)
    await a.set_video(ours, False)
    await until(lambda: a.call(ours).video_media is None and b.call(theirs).video_media is None)
    assert a.video_picture(ours, 320, 240) is None
    local = a.call(ours).local_sdp
    assert local is not None and [(m.media, m.port) for m in local.media][1] == ("video", 0)
    stats = a.call_stats(ours)
    assert stats is not None and int(stats["video_frames_received"]) >= 5  # type: ignore[call-overload]


def recorded_counters(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_counter(frame) for frame in container.decode(video=0)]


async def test_received_video_is_recorded_to_matroska(make: Start, tmp_path: Path) -> None:
    """--video-record (VideoSettings.record) for every call, and Phone.record: an .mkv beside
    the call's WAV; each decodes to the sender's pattern, its counter going up frame by frame."""
    a = await make("a", PATTERN, config=Config(codecs=("pcmu",), recordings_dir=tmp_path / "rec"))
    b = await make("b", VideoSettings(source="pattern", record=str(tmp_path / "in.mkv")))
    ours, theirs = await call(a, b)
    await until(lambda: received(a, ours) >= 3)
    wav = a.record(ours, True)
    assert wav is not None
    await until(lambda: received(a, ours) >= 25 and received(b, theirs) >= 25)
    assert a.record(ours, False) == wav
    await a.hangup(ours)
    await expect(a, lambda e: isinstance(e, pe.CallEnded))
    for path in (tmp_path / "in.mkv", wav.with_suffix(".mkv")):
        counters = recorded_counters(path)
        assert len(counters) >= 10, path
        assert counters == sorted(counters) and counters[-1] - counters[0] == len(counters) - 1


async def test_hold_makes_the_video_inactive_and_resume_brings_it_back(make: Start) -> None:
    a = await make("a", PATTERN)
    b = await make("b", VideoSettings(source="pattern"))
    ours, theirs = await call(a, b)
    await until(lambda: received(b, theirs) >= 3)
    await a.hold(ours)
    await until(lambda: a.call(ours).state == "held")
    local = a.call(ours).local_sdp
    assert local is not None and local.direction_of(local.media[1]).value == "inactive"
    media = b.call(theirs).video_media
    assert media is not None and media.direction.value == "inactive"
    sent = int(b.call_stats(theirs)["video_frames_sent"])  # type: ignore[index, call-overload]
    await a.resume(ours)
    await until(lambda: a.call(ours).state == "established")
    await until(
        lambda: received(a, ours) >= 3 and int(b.call_stats(theirs)["video_frames_sent"]) > sent
    )  # type: ignore[index, call-overload]


@pytest.mark.parametrize("codec", ["VP9", "H264"])
async def test_each_codec_carries_the_pattern(make: Start, codec: str) -> None:
    """VP8 is the first choice (above); VP9 and H.264 (packetization-mode 1 first) when the
    answerer takes only that one."""
    a = await make("a", PATTERN)
    b = await make("b", VideoSettings(source="pattern", codecs=(codec,)))
    ours, theirs = await call(a, b)
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    first = (counter(a, ours), counter(b, theirs))
    await until(lambda: received(a, ours) >= 20 and received(b, theirs) >= 20)
    later = (counter(a, ours), counter(b, theirs))
    assert later[0] > first[0] and later[1] > first[1]
    assert a.call_stats(ours)["video_codec"] == codec  # type: ignore[index]
    media = a.call(ours).video_media
    assert media is not None and media.codec is not None
    if codec == "H264":
        assert media.codec.fmtp.get("packetization-mode") == "1"


def pattern_clip(path: Path, frames: int) -> Path:
    """A VP8 WebM of the test pattern's first ``frames`` pictures."""
    source = TestPattern(320, 240)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(frames):
            container.mux(stream.encode(source.read()))
        container.mux(stream.encode(None))
    return path


async def test_a_video_file_is_sent_in_a_loop(make: Start, tmp_path: Path) -> None:
    clip = pattern_clip(tmp_path / "clip.webm", 8)
    a = await make("a", VideoSettings(source="file", path=str(clip), offer=True))
    b = await make("b", None)
    _, theirs = await call(a, b)
    seen: set[int] = set()

    def looped() -> bool:
        if received(b, theirs):
            seen.add(counter(b, theirs))
        return received(b, theirs) >= 20

    await until(looped)  # 20 pictures from a file of 8: it started again, twice
    assert seen <= set(range(8)) and len(seen) >= 3


@pytest.mark.parametrize("encryption", ["dtls-srtp", "srtp"])
async def test_video_is_encrypted_as_the_audio(
    make: Start, tmp_path: Path, encryption: MediaEncryptionName
) -> None:
    """DTLS-SRTP: a handshake of its own on the video's port (RFC 5764 §4.1) with the audio's
    certificate; SDES inside RTP/SAVP: keys of its own. Pictures flow both ways either way."""

    def config(name: str) -> Config:
        account = Account(
            name=name, uri=SipUri(user="softphone", host="127.0.0.1"), media_encryption=encryption
        )
        return Config(accounts=(account,), codecs=("pcmu",))

    a = await make("a", PATTERN, config=config("a"), data_dir=tmp_path / "a")
    b = await make(
        "b", VideoSettings(source="pattern"), config=config("b"), data_dir=tmp_path / "b"
    )
    ours, theirs = await call(a, b)
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    method = "dtls-srtp" if encryption == "dtls-srtp" else "sdes"
    for phone, call_id in ((a, ours), (b, theirs)):
        stats = phone.call_stats(call_id) or {}
        assert stats["encryption"] == stats["video_encryption"] == method
    local = a.call(ours).local_sdp
    assert local is not None
    want = "UDP/TLS/RTP/SAVP" if method == "dtls-srtp" else "RTP/SAVP"
    assert [m.proto for m in local.media] == [want, want]


@pytest.mark.parametrize(
    ("modes", "expected"),
    [((1, 0), ["VP8", "H264/1", "H264/0"]), ((0,), ["VP8", "H264/0"]), ((1,), ["VP8", "H264/1"])],
)
def test_h264_is_offered_in_the_packetization_modes_asked_for_in_their_order(
    modes: tuple[int, ...], expected: list[str]
) -> None:
    settings = VideoSettings(codecs=("VP8", "H264"), h264_packetization_modes=modes)
    names = [
        c.name if c.name != "H264" else f"H264/{c.fmtp['packetization-mode']}"
        for c in local_codecs(settings)
    ]
    assert names == expected


@pytest.mark.parametrize("modes", [(), (2,), (1, 1)])
def test_packetization_modes_other_than_0_and_1_are_refused(modes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="packetization modes"):
        VideoSettings(h264_packetization_modes=modes)
