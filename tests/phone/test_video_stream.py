"""A call's video stream (phone/video_stream.py) fed a peer's broken stream: no exception, the
last good picture kept, a PLI asked for (RFC 4585 §6.3.1), pictures again from the key frame
that answers it. The endpoint is a stand-in that keeps what the stream sends."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import av
import numpy as np

from softphone.media.video_encode import VideoEncoder
from softphone.media.video_source import TestPattern, read_counter
from softphone.phone.video import VideoSettings
from softphone.phone.video_send import MAX_PAYLOAD
from softphone.phone.video_stream import VideoStream
from softphone.rtp.packet import RtpPacket
from softphone.rtp.packetize.vp8 import Vp8Packetizer
from softphone.sdp.session import Direction
from softphone.sdp.video import NegotiatedVideo, NegotiatedVideoCodec

PEER = ("127.0.0.1", 40000)
SSRC = 0x1234


class Endpoint:
    """What VideoStream needs of an RtpEndpoint: a sink to set and ``send``."""

    def __init__(self) -> None:
        self.timed_sink = None
        self.sent: list[tuple[bytes, tuple[str, int], bool]] = []

    def send(self, data: bytes, addr: tuple[str, int], via_rtcp: bool = False) -> None:
        self.sent.append((data, addr, via_rtcp))


def plis(endpoint: Endpoint) -> int:
    """PLIs in what went out: PSFB (206) with FMT 1 after the empty RR."""
    return sum(1 for data, _, _ in endpoint.sent if data[8:10] == bytes([0x81, 206]))


class Peer:
    """The far end's VP8 stream of the test pattern, as RTP packets."""

    def __init__(self) -> None:
        self.pattern = TestPattern(320, 240)
        self.encoder = VideoEncoder("vp8", width=320, height=240, fps=15, keyframe_interval_s=100)
        self.packetizer = Vp8Packetizer(max_payload=600)
        self.seq = 1000
        self.ts = 0

    def packet(self, payload: bytes, timestamp: int, marker: bool) -> bytes:
        self.seq += 1
        packet = RtpPacket(
            payload_type=96,
            sequence=self.seq,
            timestamp=timestamp,
            ssrc=SSRC,
            marker=marker,
            payload=payload,
        )
        return bytes(packet)

    def picture(self, *, keyframe: bool = False) -> list[bytes]:
        if keyframe:
            self.encoder.request_keyframe()
        self.ts += 6000
        return [
            self.packet(p.payload, p.timestamp, p.marker)
            for frame in self.encoder.encode(self.pattern.read(), self.ts)
            for p in self.packetizer.packetize(frame.data, frame.timestamp)
        ]

    def garbage(self) -> list[bytes]:
        """A picture whose VP8 partitions are noise (descriptor intact, S=1)."""
        self.ts += 6000
        self.pattern.read()  # the counter moves on, as a real sender's would
        noise = random.Random(self.ts).randbytes(300)
        return [self.packet(b"\x90\x80" + bytes([self.seq & 0x7F]) + noise, self.ts, True)]


async def test_a_broken_stream_keeps_the_last_picture_and_asks_for_a_key_frame() -> None:
    endpoint = Endpoint()
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
    stream = VideoStream(
        endpoint=endpoint,  # type: ignore[arg-type]
        negotiated=negotiated,
        settings=VideoSettings(),
        rng=random.Random(1),
        cname="test",
    )
    peer = Peer()
    clock = 0.0

    def deliver(datagrams: list[bytes]) -> None:
        nonlocal clock
        for data in datagrams:
            clock += 0.001
            assert endpoint.timed_sink is not None
            endpoint.timed_sink(data, PEER, False, clock)

    for i in range(6):
        deliver(peer.picture(keyframe=i == 0))
    good = stream.frames_received
    assert good >= 5 and stream.last_picture is not None
    last = read_counter(stream.last_picture.frame)
    for _ in range(4):
        deliver(peer.garbage())  # must not raise
    # Nothing smeared shown: the broken pictures never reached the screen (the depacketiser
    # or the decoder refused them), the last good one stays, and a key frame was asked for.
    assert stream.frames_received == good
    assert stream.last_picture is not None and read_counter(stream.last_picture.frame) == last
    assert plis(endpoint) >= 1
    assert stream.stats()["video_keyframe_requests"] >= 1
    deliver(peer.picture(keyframe=True))  # what the PLI brings
    deliver(peer.picture())
    assert stream.frames_received > good
    assert read_counter(stream.last_picture.frame) > last
    stream.close()
    assert endpoint.timed_sink is None


def noise_file(path: Path, count: int = 4, width: int = 320, height: int = 240) -> Path:
    """A short lossless video of noise: pictures no encoder fits in one packet unsliced."""
    rng = np.random.default_rng(2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(count):
            picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


async def test_h264_mode_0_sends_busy_pictures_as_single_nal_unit_packets(
    tmp_path: Path,
) -> None:
    """RFC 6184 §6.2: with packetization-mode 0 agreed there is no FU-A, so the encoder must
    cut pictures into slices that fit a packet; unsliced, the first key frame stopped sending."""
    endpoint = Endpoint()
    fmtp = {"packetization-mode": "0", "profile-level-id": "42e01f"}
    codec = NegotiatedVideoCodec(97, "H264", 90000, fmtp, frozenset({"nack pli"}))
    negotiated = NegotiatedVideo(
        remote_address=PEER[0],
        remote_port=PEER[1],
        remote_rtcp_port=PEER[1],
        codec=codec,
        receive_codecs=(codec,),
        direction=Direction.SENDRECV,
        rtcp_mux=True,
        remote_bitrate_bps=None,
    )
    notices: list[str] = []
    stream = VideoStream(
        endpoint=endpoint,  # type: ignore[arg-type]
        negotiated=negotiated,
        settings=VideoSettings(source="file", path=str(noise_file(tmp_path / "noise.mkv"))),
        rng=random.Random(1),
        cname="test",
        on_notice=notices.append,
    )
    try:
        stream.allow_sending(True)
        async with asyncio.timeout(10):  # a loaded 2-core machine encodes slowly
            while stream.frames_sent < 3 and not notices:
                await asyncio.sleep(0.02)
    finally:
        stream.close()
    assert notices == []
    payloads = [
        RtpPacket.parse(data).payload
        for data, _, _ in endpoint.sent
        if not 192 <= data[1] <= 223  # RTCP (RFC 5761 §4: no RTP payload type there)
    ]
    assert max(len(p) for p in payloads) <= MAX_PAYLOAD
    assert {p[0] & 0x1F for p in payloads} <= set(range(1, 24))  # no STAP-A, no FU-A
    assert len(payloads) > 3 * 5  # busy pictures went out as many slices
