"""H.264 depacketiser (RFC 6184): byte-exact reassembly, quirks, loss and key frames.

Three sources of packets: hand-made NAL units (byte-exact checks), a small libx264 stream cut up
by the test-side packetiser below, and packets FFmpeg's own RTP packetiser sent on 127.0.0.1
(tests/data/rtp/depack_ffmpeg_h264*.bin: the SDP's rtpmap/fmtp lines, a blank line, then
16-bit length + RTP packet, repeated; captured once with `ffmpeg -f lavfi -i
testsrc2=size=160x120:rate=10 -frames:v 6 -c:v libx264 -x264-params
keyint=3:min-keyint=3:scenecut=0[:slices=2] [-flags +global_header] -f rtp
rtp://127.0.0.1:PORT?pkt_size=400`). PyAV decodes the output to prove it is a valid stream.
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

from softphone.rtp.depacketize import AccessUnit, UnsupportedCodec, make_depacketizer
from softphone.rtp.depacketize.h264 import H264Depacketizer, decode_sprop, split_annex_b
from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent.parent / "data" / "rtp"
SC = b"\x00\x00\x00\x01"

SPS = bytes.fromhex("6742c01eda0280bf")  # type 7, profile 66, level 30, id 0
PPS = bytes.fromhex("68ce3c80")  # type 8, id 0
SEI = bytes.fromhex("0605ff")
IDR_A = b"\x65\x88" + bytes(range(1, 40))  # first_mb_in_slice = 0 (top bit of byte 1)
IDR_B = b"\x65\x40" + bytes(range(1, 30))  # a second slice (first_mb_in_slice != 0)
P_A = b"\x41\x9a" + bytes(range(7, 50))
P_B = b"\x41\x40" + bytes(range(9, 20))
AUD = b"\x09\xf0"


# --- helpers -------------------------------------------------------------------------------
class Packetizer:
    """Test-side RFC 6184 packetiser: single NAL units, STAP-A for runs of small units, FU-A for
    units over ``mtu``; the marker on the last packet of each access unit."""

    def __init__(self, mtu: int = 120, seq: int = 65530, stap: bool = True) -> None:
        self.mtu, self.seq, self.stap = mtu, seq, stap

    def packet(self, payload: bytes, ts: int, marker: bool) -> RtpPacket:
        packet = RtpPacket(
            payload_type=96, sequence=self.seq, timestamp=ts, ssrc=7, marker=marker, payload=payload
        )
        self.seq = (self.seq + 1) & 0xFFFF
        return packet

    def payloads(self, nals: Sequence[bytes]) -> Iterator[bytes]:
        pending: list[bytes] = []

        def stap() -> Iterator[bytes]:
            if len(pending) == 1:
                yield pending[0]
            elif pending:
                nri = max(n[0] & 0x60 for n in pending)
                yield bytes([nri | 24]) + b"".join(struct.pack("!H", len(n)) + n for n in pending)
            pending.clear()

        for nal in nals:
            if len(nal) > self.mtu:
                yield from stap()
                body = nal[1:]
                chunks = [body[i : i + self.mtu - 2] for i in range(0, len(body), self.mtu - 2)]
                for i, chunk in enumerate(chunks):
                    header = (
                        (0x80 if i == 0 else 0)
                        | (0x40 if i == len(chunks) - 1 else 0)
                        | nal[0] & 0x1F
                    )
                    yield bytes([nal[0] & 0xE0 | 28, header]) + chunk
            elif self.stap and sum(len(n) + 2 for n in pending) + len(nal) + 3 <= self.mtu:
                pending.append(nal)
            else:
                yield from stap()
                pending.append(nal)
        yield from stap()

    def access_unit(self, nals: Sequence[bytes], ts: int, marker: bool = True) -> list[RtpPacket]:
        payloads = list(self.payloads(nals))
        return [
            self.packet(p, ts, marker and i == len(payloads) - 1) for i, p in enumerate(payloads)
        ]


def nals_of(annex_b: bytes) -> list[bytes]:
    return split_annex_b(annex_b)


def run(
    dep: H264Depacketizer, packets: Sequence[RtpPacket], lost: dict[int, int] | None = None
) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for i, packet in enumerate(packets):
        out += dep.push(packet, lost_before=(lost or {}).get(i, 0))
    return out + dep.flush()


def decode(units: Sequence[AccessUnit], extradata: bytes | None = None) -> list[av.VideoFrame]:
    return decode_video("h264", units, extradata)


def x264_stream(frames: int = 6) -> list[bytes]:
    """Six 64x64 pictures, IDR every 3, two slices each; Annex-B per access unit."""
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV has no libx264 encoder")
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width = ctx.height = 64
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.options = {"x264-params": "keyint=3:min-keyint=3:scenecut=0:bframes=0:slices=2:threads=1"}
    out: list[bytes] = []
    for i in range(frames):
        rgb = np.full((64, 64, 3), 30 * i, np.uint8)
        rgb[:, : 8 * (i + 1)] = 255
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    return out + [bytes(p) for p in ctx.encode(None)]


# --- byte-exact reassembly -----------------------------------------------------------------
def test_single_stap_and_fu_units_are_reassembled_byte_exact() -> None:
    pk = Packetizer(mtu=20)
    packets = pk.access_unit([SPS, PPS, SEI, IDR_A, IDR_B], ts=1000) + pk.access_unit(
        [P_A, P_B], ts=4600
    )
    kinds = {p.payload[0] & 0x1F for p in packets}
    assert {24, 28} <= kinds  # STAP-A and FU-A really used
    units = run(H264Depacketizer(), packets)
    assert [u.timestamp for u in units] == [1000, 4600]
    assert units[0] == AccessUnit(
        data=b"".join(SC + n for n in (SPS, PPS, SEI, IDR_A, IDR_B)),
        timestamp=1000,
        keyframe=True,
        codec="h264",
    )
    assert units[1].data == SC + P_A + SC + P_B and not units[1].keyframe


def test_stap_a_is_split_into_its_units() -> None:
    stap = bytes([0x78]) + b"".join(struct.pack("!H", len(n)) + n for n in (SPS, PPS, IDR_A))
    dep = H264Depacketizer()
    units = dep.push(
        RtpPacket(payload_type=96, sequence=1, timestamp=9, ssrc=1, marker=True, payload=stap)
    )
    assert nals_of(units[0].data) == [SPS, PPS, IDR_A]
    assert dep.extradata == SC + SPS + SC + PPS


def test_fu_a_with_start_and_end_in_one_fragment_and_empty_fragments() -> None:
    pk = Packetizer()
    fu = bytes([0x7C])  # FU indicator, NRI 3
    packets = [
        *pk.access_unit([SPS, PPS], ts=5, marker=False),
        pk.packet(fu + bytes([0x80 | 0x40 | 5]) + IDR_A[1:], 5, False),  # S and E together
        pk.packet(fu + bytes([0x80 | 5]) + IDR_B[1:10], 5, False),
        pk.packet(fu + bytes([5]), 5, False),  # an empty middle fragment
        pk.packet(fu + bytes([0x20 | 5]) + IDR_B[10:20], 5, False),  # reserved bit set
        pk.packet(fu + bytes([0x40 | 5]) + IDR_B[20:], 5, True),
    ]
    units = run(H264Depacketizer(), packets)
    assert nals_of(units[0].data) == [
        SPS,
        PPS,
        bytes([0x65]) + IDR_A[1:],
        bytes([0x65]) + IDR_B[1:],
    ]


def test_nal_type_changing_between_fragments_drops_the_unit() -> None:
    pk = Packetizer()
    good = pk.access_unit([SPS, PPS, IDR_A], ts=0)
    broken = [
        pk.packet(bytes([0x7C, 0x80 | 5]) + IDR_A[1:10], 3000, False),
        pk.packet(bytes([0x7C, 0x40 | 1]) + IDR_A[10:], 3000, True),  # type 5 -> 1
    ]
    after = pk.access_unit([SPS, PPS, IDR_A], ts=6000)
    dep = H264Depacketizer()
    units = run(dep, good + broken + after)
    assert [u.timestamp for u in units] == [0, 6000]
    assert dep.dropped_units == 1


def test_start_codes_inside_payloads_are_split() -> None:
    pk = Packetizer(stap=False)
    packets = [
        pk.packet(
            SC + SPS + b"\x00\x00\x01" + PPS, 0, False
        ),  # two units with start codes in one single-NAL packet
        pk.packet(
            bytes([0x78]) + struct.pack("!H", 4 + len(SEI)) + SC + SEI, 0, False
        ),  # inside STAP-A
        pk.packet(IDR_A + SC + IDR_B, 0, True),
    ]
    units = run(H264Depacketizer(), packets)
    assert nals_of(units[0].data) == [SPS, PPS, SEI, IDR_A, IDR_B]
    assert units[0].data.count(SC) == 5


# --- access unit boundaries ----------------------------------------------------------------
def test_access_units_split_by_timestamp_when_the_marker_is_never_set() -> None:
    pk = Packetizer()
    packets = (
        pk.access_unit([SPS, PPS, IDR_A, IDR_B], ts=0, marker=False)
        + pk.access_unit([P_A, P_B], ts=3000, marker=False)
        + pk.access_unit([P_A], ts=6000, marker=False)
    )
    dep = H264Depacketizer()
    out = [u for p in packets for u in dep.push(p)]
    assert [u.timestamp for u in out] == [0, 3000]  # the last waits for a new timestamp
    assert nals_of(out[1].data) == [P_A, P_B]
    assert [u.timestamp for u in dep.flush()] == [6000]


def test_parameter_sets_with_their_own_timestamp_or_marker_join_the_next_picture() -> None:
    pk = Packetizer(stap=False)
    packets = pk.access_unit([SPS, PPS], ts=100) + pk.access_unit([SEI, IDR_A], ts=200)
    units = run(H264Depacketizer(), packets)
    assert len(units) == 1
    assert units[0].timestamp == 200 and nals_of(units[0].data) == [SPS, PPS, SEI, IDR_A]


def test_parameter_sets_go_before_every_key_frame_after_the_delimiter() -> None:
    pk = Packetizer()
    packets = (
        pk.access_unit([SPS, PPS, IDR_A], ts=0)
        + pk.access_unit([P_A], ts=1)
        + pk.access_unit([AUD, IDR_A], ts=2)
    )
    units = run(H264Depacketizer(), packets)
    assert nals_of(units[1].data) == [P_A]
    assert nals_of(units[2].data) == [AUD, SPS, PPS, IDR_A] and units[2].keyframe


def test_a_stray_byte_after_the_sps_is_harmless() -> None:
    sps = SPS + b"\x00"  # seen on cameras: a trailing byte after the SPS
    units = run(H264Depacketizer(), Packetizer().access_unit([sps, PPS, IDR_A], ts=0))
    assert len(units) == 1 and units[0].keyframe
    assert nals_of(units[0].data)[1:] == [PPS, IDR_A]


# --- loss and key frames -------------------------------------------------------------------
def test_loss_waits_for_the_next_idr_and_resumes_there() -> None:
    pk = Packetizer(mtu=20)
    gop = [[SPS, PPS, IDR_A, IDR_B], [P_A, P_B], [P_A, P_B], [SPS, PPS, IDR_A, IDR_B], [P_A, P_B]]
    packets: list[RtpPacket] = []
    for i, au in enumerate(gop):
        packets += pk.access_unit(au, ts=3000 * i)
    first_of = [next(j for j, p in enumerate(packets) if p.timestamp == 3000 * i) for i in range(5)]
    dep = H264Depacketizer()
    seen: list[tuple[int, bool]] = []
    for j, packet in enumerate(packets):
        if j == first_of[1] + 1:  # lose the second packet of picture 1
            continue
        for unit in dep.push(packet, lost_before=1 if j == first_of[1] + 2 else 0):
            seen.append((unit.timestamp, dep.waiting_for_keyframe))
        if j == first_of[2]:
            assert dep.waiting_for_keyframe
    assert [ts for ts, _ in seen] == [0, 9000, 12000]
    assert not dep.waiting_for_keyframe
    assert dep.dropped_units == 2  # picture 1 (damaged) and picture 2 (not a key frame)


def test_start_in_the_middle_waits_for_a_clean_key_frame() -> None:
    pk = Packetizer(mtu=20)
    packets = pk.access_unit([SPS, PPS, IDR_A, IDR_B], ts=0) + pk.access_unit(
        [SPS, PPS, IDR_A, IDR_B], ts=3000
    )
    # Join after the first slice of picture 0: IDR_B alone is not a whole picture.
    cut = next(
        j
        for j, p in enumerate(packets)
        if p.payload[0] & 0x1F == 28 and p.payload[1] & 0x1F == 5 and p.payload[1] & 0x40
    )
    dep = H264Depacketizer()
    assert dep.waiting_for_keyframe
    units = run(dep, packets[cut + 1 :])
    assert [u.timestamp for u in units] == [3000]


def test_key_frame_without_known_parameter_sets_is_not_output() -> None:
    pk = Packetizer()
    dep = H264Depacketizer()
    assert run(dep, pk.access_unit([IDR_A], ts=0)) == []
    assert dep.waiting_for_keyframe and dep.extradata is None
    units = run(dep, pk.access_unit([SPS, PPS, IDR_A], ts=3000))
    assert [u.timestamp for u in units] == [3000]


def test_sprop_parameter_sets_are_used_and_invalid_ones_wait_for_in_band() -> None:
    sprop = ",".join(base64.b64encode(n).decode() for n in (SPS, PPS))
    dep = make_depacketizer(
        "h264", 90000, {"packetization-mode": "1", "sprop-parameter-sets": sprop}
    )
    assert dep.extradata == SC + SPS + SC + PPS
    units = run_any(dep, Packetizer().access_unit([IDR_A], ts=0))
    assert nals_of(units[0].data) == [SPS, PPS, IDR_A]

    bad = make_depacketizer("H264", 90000, {"sprop-parameter-sets": "Z0LAHto!!!,aM48gA=="})
    assert bad.extradata is None
    assert run_any(bad, Packetizer().access_unit([IDR_A], ts=0)) == []
    assert len(run_any(bad, Packetizer().access_unit([SPS, PPS, IDR_A], ts=1))) == 1
    assert decode_sprop(base64.b64encode(SC + SPS + SC + PPS).decode()) == [SPS, PPS]


def run_any(dep: object, packets: Sequence[RtpPacket]) -> list[AccessUnit]:
    assert isinstance(dep, H264Depacketizer)
    return run(dep, packets)


def test_packetization_mode_2_is_refused() -> None:
    with pytest.raises(UnsupportedCodec, match="packetization-mode=2"):
        make_depacketizer("H264", 90000, {"packetization-mode": "2"})


# --- real encoders and packetisers ---------------------------------------------------------
@pytest.mark.parametrize("mtu", [1400, 60])
def test_x264_stream_round_trips_and_decodes(mtu: int) -> None:
    stream = x264_stream()
    pk = Packetizer(mtu=mtu)
    packets = [p for i, au in enumerate(stream) for p in pk.access_unit(nals_of(au), ts=3600 * i)]
    dep = H264Depacketizer()
    units = run(dep, packets)
    assert [nals_of(u.data) for u in units] == [nals_of(au) for au in stream]
    assert [u.keyframe for u in units] == [True, False, False, True, False, False]
    frames = decode(units)
    assert [(f.width, f.height) for f in frames] == [(64, 64)] * 6


@pytest.mark.parametrize("capture", ["h264", "h264_sprop"])
def test_ffmpeg_packetiser_capture_decodes(capture: str) -> None:
    cap = load_capture(capture)
    encoding, fmtp, packets = cap.encoding, cap.fmtp, cap.packets
    dep = make_depacketizer(encoding, 90000, fmtp)
    units = run_any(dep, packets)
    assert [u.keyframe for u in units] == [True, False, False, True, False, False]
    assert all(u.data.startswith(SC) for u in units)
    frames = decode(units, dep.extradata)
    assert [(f.width, f.height) for f in frames] == [(160, 120)] * 6


def test_ffmpeg_capture_with_a_lost_packet_resumes_at_the_next_idr() -> None:
    cap = load_capture("h264")
    fmtp, packets = cap.fmtp, cap.packets
    stamps = sorted({p.timestamp for p in packets})
    victim = next(i for i, p in enumerate(packets) if p.timestamp == stamps[1])
    dep = make_depacketizer("H264", 90000, fmtp)
    out: list[AccessUnit] = []
    for i, packet in enumerate(packets):
        if i != victim:
            out += dep.push(packet, lost_before=int(i == victim + 1))
    units = out + dep.flush()
    assert [u.timestamp for u in units] == [stamps[0], *stamps[3:]]
    assert len(decode(units)) == 4
