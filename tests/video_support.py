"""Helpers for the video tests: real encoded frames from PyAV (libvpx, libvpx-vp9, libx264),
RTP packets around packetiser payloads, and decoding with FFmpeg to prove a stream is valid."""

from __future__ import annotations

import fractions
from collections.abc import Sequence

import av
import numpy as np

from softphone.rtp.packet import RtpPacket
from softphone.rtp.packetize import RtpPayload

ENCODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9", "h264": "libx264"}


def pattern(index: int, width: int = 160, height: int = 120) -> np.ndarray:
    """An RGB picture that changes with ``index`` (a moving bar), so that frames differ."""
    img = np.full((height, width, 3), 40, np.uint8)
    x = (index * 10) % width
    img[:, x : x + 20] = (250, 200, 30)
    img[(index * 7) % height, :] = 255
    return img


def encode(
    codec: str, count: int, *, gop: int = 5, width: int = 160, height: int = 120
) -> list[tuple[bytes, bool]]:
    """``count`` encoded frames of the moving pattern: (bytes, key frame) in decoding order."""
    ctx = av.CodecContext.create(ENCODERS[codec], "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 90000)
    ctx.framerate = 10
    ctx.bit_rate = 300_000
    ctx.gop_size = gop
    if codec == "h264":
        ctx.options = {"tune": "zerolatency", "preset": "ultrafast"}
    else:
        ctx.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
    out = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i * 9000
        out += ctx.encode(frame)
    out += ctx.encode(None)
    return [(bytes(p), bool(p.is_keyframe)) for p in out]


class Wire:
    """RTP packets around payloads: consecutive sequence numbers from ``seq`` (wrapping)."""

    def __init__(self, seq: int = 65530) -> None:
        self.seq = seq

    def packets(self, payloads: Sequence[RtpPayload]) -> list[RtpPacket]:
        out = []
        for p in payloads:
            out.append(
                RtpPacket(
                    payload_type=96,
                    sequence=self.seq,
                    timestamp=p.timestamp,
                    ssrc=7,
                    marker=p.marker,
                    payload=p.payload,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        return out


def decode(codec: str, frames: Sequence[bytes]) -> list[av.VideoFrame]:
    """Decode with FFmpeg (vp8, vp9, h264); raises av's error on a broken stream."""
    ctx = av.CodecContext.create(codec, "r")
    pictures: list[av.VideoFrame] = []
    for data in frames:
        pictures += ctx.decode(av.Packet(data))
    return pictures + ctx.decode(None)
