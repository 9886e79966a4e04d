"""Helpers for the depacketiser tests. RTP packets that FFmpeg's own packetisers sent on 127.0.0.1, captured once into
tests/data/rtp/depack_ffmpeg_<name>.bin: the SDP's rtpmap/fmtp lines, a blank line, then a 16-bit
length and an RTP packet, repeated. Used by the depacketiser tests and the scripted camera."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from softphone.rtp.depacketize import AccessUnit
from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent / "data" / "rtp"


@dataclass(frozen=True)
class Capture:
    encoding: str
    clock_rate: int
    fmtp: dict[str, str]
    fmtp_line: str
    packets: list[RtpPacket]


def load_capture(name: str, path: Path | None = None) -> Capture:
    """tests/data/rtp/depack_ffmpeg_<name>.bin, or another capture of that layout at ``path``."""
    path = path or DATA / f"depack_ffmpeg_{name}.bin"
    head, _, body = path.read_bytes().partition(b"\n\n")
    encoding, rate, fmtp, fmtp_line = "", 0, {}, ""
    for line in head.decode().splitlines():
        if line.startswith("a=rtpmap:"):
            encoding, rate_text = line.split(" ", 1)[1].split("/")[:2]
            rate = int(rate_text)
        elif line.startswith("a=fmtp:"):
            fmtp_line = line
            for part in line.split(" ", 1)[1].split(";"):
                key, _, value = part.strip().partition("=")
                fmtp[key] = value
    packets, pos = [], 0
    while pos < len(body):
        (size,) = struct.unpack_from("!H", body, pos)
        packets.append(RtpPacket.parse(body[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    return Capture(encoding, rate, fmtp, fmtp_line, packets)


def decode_video(
    codec: str, units: Sequence[AccessUnit], extradata: bytes | None = None
) -> list[av.VideoFrame]:
    """Decode depacketised access units with FFmpeg (tests only): proof the output is a valid stream."""
    ctx = av.CodecContext.create(codec, "r")
    if extradata:
        ctx.extradata = extradata
    frames: list[av.VideoFrame] = []
    for unit in units:
        frames += ctx.decode(av.Packet(unit.data))
    return frames + ctx.decode(None)
