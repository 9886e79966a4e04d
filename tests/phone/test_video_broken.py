"""A peer's broken video stream (truncated partitions, a frame of the wrong size, no key frame)
fed to a call's video stream (phone/video_stream.py, phone/video_health.py): no exception, the
last good picture held (never garbage, never blank), a PLI asked for at a bounded rate, and a
note (``on_picture``) while the picture is broken, then when it is back."""

from __future__ import annotations

import asyncio
import random

import pytest

from softphone.media.video_source import read_counter
from softphone.phone import video_stream
from softphone.phone.video import VideoSettings
from softphone.phone.video_stream import VideoStream
from softphone.rtp.packet import RtpPacket
from softphone.rtp.video_receiver import KEYFRAME_INTERVAL_S
from softphone.sdp.session import Direction
from softphone.sdp.video import NegotiatedVideo, NegotiatedVideoCodec
from tests.phone.test_video_stream import PEER, Endpoint, Peer, plis

VP8_START = b"\x9d\x01\x2a"  # a VP8 key frame's start code, before its width and height


class Harness:
    def __init__(self) -> None:
        self.endpoint = Endpoint()
        self.notes: list[tuple[bool, str]] = []
        codec = NegotiatedVideoCodec(96, "VP8", 90000, {}, frozenset({"nack", "nack pli"}))
        negotiated = NegotiatedVideo(
            remote_address=PEER[0],
            remote_port=PEER[1],
            remote_rtcp_port=PEER[1],
            codec=codec,
            receive_codecs=(codec,),
            direction=Direction.RECVONLY,
            rtcp_mux=True,
            remote_bitrate_bps=None,
        )
        self.stream = VideoStream(
            endpoint=self.endpoint,  # type: ignore[arg-type]
            negotiated=negotiated,
            settings=VideoSettings(),
            rng=random.Random(1),
            cname="test",
            on_picture=lambda broken, reason: self.notes.append((broken, reason)),
        )
        self.peer = Peer()
        self.clock = 0.0
        self.started = asyncio.get_running_loop().time()

    def deliver(self, datagrams: list[bytes]) -> None:
        self.clock += 1 / 15
        for data in datagrams:
            assert self.endpoint.timed_sink is not None
            self.endpoint.timed_sink(data, PEER, False, self.clock)

    def shown(self) -> int | None:
        last = self.stream.last_picture
        return read_counter(last.frame) if last is not None else None

    def pli_bound(self) -> int:
        """PLIs allowed so far: one, then one per KEYFRAME_INTERVAL_S of the loop's clock
        (the receiver's rate limit runs on it)."""
        elapsed = asyncio.get_running_loop().time() - self.started
        return 1 + int(elapsed / KEYFRAME_INTERVAL_S) + 1


def _descriptor_length(payload: bytes) -> int:
    """The VP8 payload descriptor's length (RFC 7741 §4.2)."""
    length = 1
    if payload[0] & 0x80:  # X: extension bits follow
        ext = payload[1]
        length += 1
        if ext & 0x80:  # I: picture ID, 15 bits when its M bit is set
            length += 2 if payload[length] & 0x80 else 1
        length += 1 if ext & 0x40 else 0  # L: TL0PICIDX
        length += 1 if ext & 0x30 else 0  # T or K: TID/KEYIDX
    return length


def truncated(packets: list[bytes]) -> list[bytes]:
    """A one-packet inter frame cut in the middle of its first partition, whose size its frame
    tag gives (RFC 6386 §9.1): the rest of it and the DCT partitions are missing."""
    assert len(packets) == 1
    packet = RtpPacket.parse(packets[0])
    start = _descriptor_length(packet.payload)
    tag = int.from_bytes(packet.payload[start : start + 3], "little")
    assert tag & 1  # an inter frame
    first_partition = tag >> 5 & 0x7FFFF
    cut = RtpPacket(
        payload_type=packet.payload_type,
        sequence=packet.sequence,
        timestamp=packet.timestamp,
        ssrc=packet.ssrc,
        marker=packet.marker,
        payload=packet.payload[: start + 3 + first_partition // 2],
    )
    return [bytes(cut)]


def resized(packets: list[bytes], width: int, height: int) -> list[bytes]:
    """The key frame with another size in its header than its data has."""
    first = RtpPacket.parse(packets[0])
    payload = bytearray(first.payload)
    at = payload.index(VP8_START) + len(VP8_START)
    payload[at : at + 4] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    packet = RtpPacket(
        payload_type=first.payload_type,
        sequence=first.sequence,
        timestamp=first.timestamp,
        ssrc=first.ssrc,
        marker=first.marker,
        payload=bytes(payload),
    )
    return [bytes(packet), *packets[1:]]


async def test_truncated_partitions_hold_the_last_good_picture_until_a_key_frame() -> None:
    h = Harness()
    for i in range(5):
        h.deliver(h.peer.picture(keyframe=i == 0))
    good = h.shown()
    assert good == 4 and h.notes == []
    for _ in range(6):  # truncated, then inter frames predicted from the damage: all withheld
        h.deliver(truncated(h.peer.picture()))
        h.deliver(h.peer.picture())
    assert h.shown() == good  # nothing garbled replaced it, and it is still there
    assert h.notes[0][0] is True
    assert len(h.notes) == 1  # one note while it lasts
    assert h.stream.stats()["video_picture"] == "broken"
    assert h.stream.stats()["video_keyframe_requests"] >= 1
    assert 1 <= plis(h.endpoint) <= h.pli_bound()
    h.deliver(h.peer.picture(keyframe=True))  # the answer to the PLI
    assert h.shown() == 17  # 5 good, 12 withheld, then the key frame
    assert h.notes[-1][0] is False and h.stream.stats()["video_picture"] == "good"
    h.stream.close()


async def test_a_key_frame_of_the_wrong_size_is_refused_and_the_picture_kept() -> None:
    h = Harness()
    for i in range(3):
        h.deliver(h.peer.picture(keyframe=i == 0))
    assert h.shown() == 2
    for width, height in ((640, 480), (16383, 16383), (1, 1)):
        h.deliver(resized(h.peer.picture(keyframe=True), width, height))
        h.deliver(h.peer.picture())  # an inter frame on top of it: withheld too
    assert h.shown() == 2
    assert h.notes and h.notes[0][0] is True
    assert 1 <= plis(h.endpoint) <= h.pli_bound()
    h.deliver(h.peer.picture(keyframe=True))
    assert h.shown() == 9 and h.notes[-1] == (False, "the picture is back")
    h.stream.close()


async def test_a_stream_without_a_key_frame_is_broken_after_a_second_and_asks_at_a_bounded_rate() -> (
    None
):
    h = Harness()
    h.peer.picture(keyframe=True)  # the key frame is lost on the way: only inter frames come
    for _ in range(30):  # 2 s at 15 pictures a second
        h.deliver(h.peer.picture())
    assert h.stream.last_picture is None  # no garbage, no blank picture either
    assert h.notes == [(True, "no key frame yet")]
    assert h.stream.stats()["video_picture"] == "broken"
    assert 1 <= plis(h.endpoint) <= h.pli_bound()
    h.deliver(h.peer.picture(keyframe=True))
    assert h.shown() == 31 and h.notes[-1][0] is False
    h.stream.close()


async def test_pictures_too_big_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video_stream, "MAX_PICTURE_PIXELS", 160 * 120)  # 320x240 is too big now
    h = Harness()
    for i in range(3):
        h.deliver(h.peer.picture(keyframe=i == 0))
    assert h.stream.last_picture is None
    assert h.notes[0] == (True, "a 320x240 picture")
    assert plis(h.endpoint) >= 1
    h.stream.close()
