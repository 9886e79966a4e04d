"""The sender stays within what the peer can receive (phone/video_stream.py, sdp/video_limits.py):
a level-1.0 H.264 answer (RFC 6184 §8.1: Baseline level 1 when profile-level-id is absent, at
most 99 macroblocks) makes us send at most 176x144, and level 3.1 leaves 640x360 alone; a
re-INVITE that changes the level changes what we send. The sizes are read by decoding what went
out, not from our settings."""

from __future__ import annotations

import asyncio
import itertools
import random

from softphone.media.video import DecodedPicture, VideoDecoder, split_annexb
from softphone.phone.video import VideoSettings
from softphone.phone.video_stream import VideoStream
from softphone.rtp.depacketize import make_depacketizer
from softphone.rtp.packet import RtpPacket
from softphone.sdp.session import Direction
from softphone.sdp.video import NegotiatedVideo, NegotiatedVideoCodec

PEER = ("127.0.0.1", 40000)
SETTINGS = VideoSettings(source="pattern", width=640, height=360, fps=15)
LEVEL_1 = {"packetization-mode": "1", "profile-level-id": "42000a"}
LEVEL_3_1 = {"packetization-mode": "1", "profile-level-id": "42e01f"}


class Endpoint:
    """What VideoStream needs of an RtpEndpoint: a sink to set and ``send``."""

    def __init__(self) -> None:
        self.timed_sink = None
        self.sent: list[bytes] = []

    def send(self, data: bytes, addr: tuple[str, int], via_rtcp: bool = False) -> None:
        self.sent.append(data)


def negotiated(fmtp: dict[str, str]) -> NegotiatedVideo:
    codec = NegotiatedVideoCodec(97, "H264", 90000, fmtp, frozenset({"nack pli"}))
    return NegotiatedVideo(
        remote_address=PEER[0],
        remote_port=PEER[1],
        remote_rtcp_port=PEER[1],
        codec=codec,
        receive_codecs=(codec,),
        direction=Direction.SENDONLY,
        rtcp_mux=True,
        remote_bitrate_bps=None,
    )


def decode(datagrams: list[bytes], fmtp: dict[str, str]) -> tuple[list[DecodedPicture], set[int]]:
    """What a receiver makes of the RTP we sent: the pictures, and the level_idc of every
    sequence parameter set (NAL type 7: profile_idc, flags, level_idc after the header)."""
    depacketizer = make_depacketizer("H264", 90000, fmtp)
    decoder = VideoDecoder("h264")
    pictures: list[DecodedPicture] = []
    levels: set[int] = set()
    for data in datagrams:
        if 192 <= data[1] <= 223:  # RTCP (RFC 5761 §4)
            continue
        for unit in depacketizer.push(RtpPacket.parse(data)):
            levels |= {nal[3] for nal in split_annexb(unit.data) if nal[0] & 0x1F == 7}
            pictures += decoder.decode(unit)
    decoder.close()
    return pictures, levels


async def send_until(stream: VideoStream, frames: int) -> None:
    async with asyncio.timeout(10):  # a loaded 2-core machine encodes slowly
        while stream.frames_sent < frames:
            await asyncio.sleep(0.02)


async def test_a_level_1_peer_gets_at_most_qcif_and_level_3_1_gets_640x360() -> None:
    endpoint = Endpoint()
    notices: list[str] = []
    stream = VideoStream(
        endpoint=endpoint,  # type: ignore[arg-type]
        negotiated=negotiated(LEVEL_1),
        settings=SETTINGS,
        rng=random.Random(1),
        cname="test",
        on_notice=notices.append,
    )
    try:
        stream.allow_sending(True)
        await send_until(stream, 4)
        small, small_levels = decode(endpoint.sent, LEVEL_1)
        stats = stream.stats()
        # A re-INVITE answered at level 3.1: the sender starts again at our full size.
        endpoint.sent.clear()
        sent_before = stream.frames_sent
        stream.update(negotiated(LEVEL_3_1), None)
        await send_until(stream, sent_before + 4)
        large, large_levels = decode(endpoint.sent, LEVEL_3_1)
        stats_after = stream.stats()
    finally:
        stream.close()
    assert notices == []
    assert len(small) >= 3 and len(large) >= 3
    # The largest even size with 640:360's aspect in at most 99 macroblocks (the last row and
    # column padded), and no side over sqrt(8 * 99) = 28 macroblocks (H.264 A.3.1).
    assert {(p.width, p.height) for p in small} == {(200, 112)}
    assert all(p.width <= 16 * 28 and -(-p.width // 16) * -(-p.height // 16) <= 99 for p in small)
    assert (stats["video_width"], stats["video_height"]) == (200, 112)
    assert small_levels == {10}  # the SPS names level 1, not the 1b x264 would pick itself
    assert {(p.width, p.height) for p in large} == {(640, 360)}
    assert (stats_after["video_width"], stats_after["video_height"]) == (640, 360)
    assert large_levels == {31}


async def test_a_4_3_source_to_a_level_1_peer_is_sent_within_176x144_at_15_fps() -> None:
    """320x240 at 30 fps configured: 176x132, and 1,485 macroblocks/s over 99 is 15 fps."""
    endpoint = Endpoint()
    stream = VideoStream(
        endpoint=endpoint,  # type: ignore[arg-type]
        negotiated=negotiated(LEVEL_1),
        settings=VideoSettings(source="pattern", width=320, height=240, fps=30),
        rng=random.Random(2),
        cname="test",
    )
    try:
        stream.allow_sending(True)
        await send_until(stream, 3)
    finally:
        stream.close()
    pictures, _ = decode(endpoint.sent, LEVEL_1)
    assert pictures and {(p.width, p.height) for p in pictures} == {(176, 132)}
    assert all(p.width <= 176 and p.height <= 144 for p in pictures)
    # Pictures 1/15 s apart on the 90 kHz clock (6,000 ticks; 30 fps would be 3,000). A late
    # loop only skips pictures, which makes the steps longer, never shorter.
    stamps = sorted(
        {RtpPacket.parse(data).timestamp for data in endpoint.sent if not 192 <= data[1] <= 223}
    )
    assert len(stamps) >= 3
    assert min(b - a for a, b in itertools.pairwise(stamps)) >= 4_500
