"""RTP packets that FFmpeg's own packetisers sent on 127.0.0.1, captured once into
tests/data/rtp/depack_ffmpeg_<name>.bin: the SDP's rtpmap/fmtp lines, a blank line, then a 16-bit
length and an RTP packet, repeated. Used by the depacketiser tests and the scripted camera."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent / "data" / "rtp"


@dataclass(frozen=True)
class Capture:
    encoding: str
    clock_rate: int
    fmtp: dict[str, str]
    fmtp_line: str
    packets: list[RtpPacket]


def load_capture(name: str) -> Capture:
    head, _, body = (DATA / f"depack_ffmpeg_{name}.bin").read_bytes().partition(b"\n\n")
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
