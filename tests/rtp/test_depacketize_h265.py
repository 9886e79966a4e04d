"""H.265 depacketiser (RFC 7798): AP, FU, PACI, DONL, sprop-vps/sps/pps, IRAP and loss.

Packets come from hand-made NAL units, from libx265 output cut up by the test-side packetiser,
and from FFmpeg's RTP packetiser (tests/data/rtp/depack_ffmpeg_h265.bin, captured on 127.0.0.1
with `ffmpeg -f lavfi -i testsrc2=size=160x120:rate=10 -frames:v 6 -c:v libx265 -flags
+global_header -x265-params keyint=3:min-keyint=3:scenecut=0:bframes=0 -f rtp
rtp://127.0.0.1:PORT?pkt_size=400`; format: SDP rtpmap/fmtp lines, a blank line, then 16-bit
length + RTP packet).
"""

from __future__ import annotations

import base64
import fractions
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np
import pytest
from rtp_captures import decode_video, load_capture

from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtp.depacketize.h264 import split_annex_b
from softphone.rtp.depacketize.h265 import H265Depacketizer
from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent.parent / "data" / "rtp"
SC = b"\x00\x00\x00\x01"


def nal(nal_type: int, body: bytes) -> bytes:
    return bytes([nal_type << 1, 0x01]) + body


VPS = nal(32, bytes.fromhex("0c01ffff016000000300900000030000030078959809"))
SPS = nal(
    33, bytes.fromhex("0101600000030090000003000003007880")
)  # max_sub_layers_minus1 = 0, id 0 (ue "1")
PPS = nal(34, bytes.fromhex("c172b46240"))
IDR = nal(19, b"\xa0" + bytes(range(1, 60)))  # IDR_W_RADL, first_slice_segment_in_pic_flag = 1
CRA = nal(21, b"\x80" + bytes(range(3, 40)))
TRAIL = nal(1, b"\x80" + bytes(range(5, 70)))
TRAIL_2ND = nal(1, b"\x20" + bytes(range(5, 30)))  # not the first slice segment of its picture


class Packetizer:
    """Test-side RFC 7798 packetiser: single NAL units, APs for small runs, FUs over ``mtu``;
    ``donl`` adds the DONL/DOND fields of sprop-max-don-diff > 0."""

    def __init__(self, mtu: int = 100, seq: int = 100, donl: bool = False) -> None:
        self.mtu, self.seq, self.donl, self.don = mtu, seq, donl, 0

    def packet(self, payload: bytes, ts: int, marker: bool) -> RtpPacket:
        packet = RtpPacket(
            payload_type=96, sequence=self.seq, timestamp=ts, ssrc=9, marker=marker, payload=payload
        )
        self.seq = (self.seq + 1) & 0xFFFF
        return packet

    def _don(self) -> bytes:
        self.don += 1
        return struct.pack("!H", self.don - 1) if self.donl else b""

    def payloads(self, nals: Sequence[bytes]) -> Iterator[bytes]:
        pending: list[bytes] = []

        def ap() -> Iterator[bytes]:
            if len(pending) == 1:
                yield self._don() + pending[0] if self.donl else pending[0]
            elif pending:
                body = b""
                for i, n in enumerate(pending):
                    don = self._don()
                    body += (
                        (don if i == 0 else (b"\x00" if self.donl else b""))
                        + struct.pack("!H", len(n))
                        + n
                    )
                yield bytes([48 << 1, 0x01]) + body
            pending.clear()

        for n in nals:
            if len(n) > self.mtu:
                yield from ap()
                body = n[2:]
                chunks = [body[i : i + self.mtu - 3] for i in range(0, len(body), self.mtu - 3)]
                don = self._don()
                for i, chunk in enumerate(chunks):
                    fu = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | n[0] >> 1
                    yield (
                        bytes([49 << 1 | n[0] & 0x81, n[1], fu]) + (don if i == 0 else b"") + chunk
                    )
            elif sum(len(p) + 3 for p in pending) + len(n) + 6 <= self.mtu:
                pending.append(n)
            else:
                yield from ap()
                pending.append(n)
        yield from ap()

    def access_unit(self, nals: Sequence[bytes], ts: int, marker: bool = True) -> list[RtpPacket]:
        payloads = list(self.payloads(nals))
        return [
            self.packet(p, ts, marker and i == len(payloads) - 1) for i, p in enumerate(payloads)
        ]


def run(dep: object, packets: Sequence[RtpPacket], skip: int | None = None) -> list[AccessUnit]:
    assert isinstance(dep, H265Depacketizer)
    out: list[AccessUnit] = []
    for i, packet in enumerate(packets):
        if i != skip:
            out += dep.push(packet, lost_before=int(skip is not None and i == skip + 1))
    return out + dep.flush()


def decode(units: Sequence[AccessUnit], extradata: bytes | None = None) -> list[av.VideoFrame]:
    return decode_video("hevc", units, extradata)


def test_single_ap_and_fu_are_reassembled_byte_exact() -> None:
    pk = Packetizer(mtu=40)
    packets = pk.access_unit([VPS, SPS, PPS, IDR], ts=0) + pk.access_unit([TRAIL], ts=3000)
    assert {p.payload[0] >> 1 for p in packets} >= {48, 49}
    dep = H265Depacketizer()
    units = run(dep, packets)
    assert units[0] == AccessUnit(
        data=b"".join(SC + n for n in (VPS, SPS, PPS, IDR)),
        timestamp=0,
        keyframe=True,
        codec="hevc",
    )
    assert units[1].data == SC + TRAIL and not units[1].keyframe
    assert dep.extradata == SC + VPS + SC + SPS + SC + PPS


def test_donl_fields_are_skipped_when_sprop_max_don_diff_is_set() -> None:
    pk = Packetizer(mtu=200, donl=True)
    packets = pk.access_unit([VPS, SPS, PPS, IDR], ts=0)
    pk.mtu = 30
    packets += pk.access_unit([TRAIL], ts=1)
    assert [p.payload[0] >> 1 for p in packets] == [48, 49, 49, 49]  # one AP, then FUs
    dep = make_depacketizer("H265", 90000, {"sprop-max-don-diff": "2"})
    units = run(dep, packets)
    assert [split_annex_b(u.data) for u in units] == [[VPS, SPS, PPS, IDR], [TRAIL]]


def test_paci_packets_are_skipped() -> None:
    pk = Packetizer()
    paci = pk.packet(bytes([50 << 1, 0x01, 0x00, 0x00]) + TRAIL, 0, False)
    units = run(H265Depacketizer(), [paci, *pk.access_unit([VPS, SPS, PPS, IDR], ts=0)])
    assert split_annex_b(units[0].data) == [VPS, SPS, PPS, IDR]


def test_sprop_parameter_sets_and_irap_key_frames() -> None:
    fmtp = {
        f"sprop-{k}": base64.b64encode(v).decode()
        for k, v in (("vps", VPS), ("sps", SPS), ("pps", PPS))
    }
    dep = make_depacketizer("h265", 90000, fmtp)
    assert dep.extradata == SC + VPS + SC + SPS + SC + PPS
    pk = Packetizer()
    units = run(dep, pk.access_unit([CRA], ts=0) + pk.access_unit([TRAIL], ts=1))
    assert [u.keyframe for u in units] == [True, False]
    assert split_annex_b(units[0].data) == [VPS, SPS, PPS, CRA]  # in band before the key frame


def test_loss_waits_for_the_next_irap() -> None:
    pk = Packetizer(mtu=30)
    packets = (
        pk.access_unit([VPS, SPS, PPS, IDR], ts=0)
        + pk.access_unit([TRAIL, TRAIL_2ND], ts=1)
        + pk.access_unit([TRAIL], ts=2)
        + pk.access_unit([CRA], ts=3)
    )
    victim = next(i for i, p in enumerate(packets) if p.timestamp == 1)
    dep = H265Depacketizer()
    units = run(dep, packets, skip=victim)
    assert [u.timestamp for u in units] == [0, 3]
    assert dep.dropped_units == 2 and not dep.waiting_for_keyframe


def test_a_picture_missing_its_first_slice_is_not_output() -> None:
    pk = Packetizer()
    units = run(
        H265Depacketizer(),
        pk.access_unit([VPS, SPS, PPS, IDR], ts=0) + pk.access_unit([TRAIL_2ND], ts=1),
    )
    assert [u.timestamp for u in units] == [0]


def test_x265_stream_round_trips_and_decodes() -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("PyAV has no libx265 encoder")
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width = ctx.height = 64
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.options = {
        "x265-params": "keyint=3:min-keyint=3:scenecut=0:bframes=0:log-level=error:pools=1:frame-threads=1"
    }
    stream: list[bytes] = []
    for i in range(6):
        rgb = np.full((64, 64, 3), 40 * i, np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        stream += [bytes(p) for p in ctx.encode(frame)]
    stream += [bytes(p) for p in ctx.encode(None)]
    pk = Packetizer(mtu=80)
    packets = [
        p for i, au in enumerate(stream) for p in pk.access_unit(split_annex_b(au), ts=3600 * i)
    ]
    units = run(H265Depacketizer(), packets)
    assert [split_annex_b(u.data) for u in units] == [split_annex_b(au) for au in stream]
    assert [(f.width, f.height) for f in decode(units)] == [(64, 64)] * 6


def test_ffmpeg_packetiser_capture_decodes() -> None:
    cap = load_capture("h265")
    encoding, fmtp, packets = cap.encoding, cap.fmtp, cap.packets
    dep = make_depacketizer(encoding, 90000, fmtp)
    assert isinstance(dep, H265Depacketizer) and dep.extradata is not None
    units = run(dep, packets)
    assert [u.keyframe for u in units] == [True, False, False, True, False, False]
    assert [(f.width, f.height) for f in decode(units, dep.extradata)] == [(160, 120)] * 6
