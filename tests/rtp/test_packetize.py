"""Video packetisers (RFC 7741, RFC 9628, RFC 6184): payload sizes and descriptors, and real
encoder output (libvpx, libvpx-vp9, libx264 through PyAV) that goes through our packetiser and
depacketiser and still decodes."""

from __future__ import annotations

import pytest
from video_support import Wire, decode, encode

from softphone.rtp.depacketize import make_depacketizer
from softphone.rtp.depacketize.h264 import split_annex_b
from softphone.rtp.depacketize.vp8 import parse_descriptor as vp8_descriptor
from softphone.rtp.depacketize.vp9 import parse_descriptor as vp9_descriptor
from softphone.rtp.packetize import PacketizeError, RtpPayload, even_chunks
from softphone.rtp.packetize.h264 import H264Packetizer
from softphone.rtp.packetize.vp8 import Vp8Packetizer
from softphone.rtp.packetize.vp9 import Vp9Packetizer

SC = b"\x00\x00\x00\x01"


def test_even_chunks_are_as_even_as_the_budget_allows() -> None:
    chunks = even_chunks(bytes(2500), 1200)
    assert [len(c) for c in chunks] == [834, 833, 833]
    assert even_chunks(b"abc", 10) == [b"abc"]
    assert [len(c) for c in even_chunks(bytes(2400), 1200)] == [1200, 1200]
    with pytest.raises(PacketizeError):
        even_chunks(b"a", 0)


def test_vp8_payloads_fit_and_carry_the_descriptor() -> None:
    packetizer = Vp8Packetizer(max_payload=100, picture_id=0x7FFF)
    out = packetizer.packetize(bytes(range(250)), 1234)
    assert all(len(p.payload) <= 100 for p in out) and len(out) == 3
    assert [p.marker for p in out] == [False, False, True]
    assert {p.timestamp for p in out} == {1234}
    descs = [vp8_descriptor(p.payload) for p in out]
    assert [d.start for d in descs] == [True, False, False]
    assert {(d.picture_id, d.picture_id_bits, d.partition) for d in descs} == {(0x7FFF, 15, 0)}
    assert b"".join(p.payload[4:] for p in out) == bytes(range(250))
    assert vp8_descriptor(packetizer.packetize(b"x", 0)[0].payload).picture_id == 0  # wraps


def test_vp9_key_frames_carry_the_scalability_structure() -> None:
    key, inter = encode("vp9", 2, gop=10)
    packetizer = Vp9Packetizer(max_payload=60, picture_id=3)
    first = packetizer.packetize(key[0], 0)
    descs = [vp9_descriptor(p.payload) for p in first]
    assert all(len(p.payload) <= 60 for p in first)
    assert descs[0].scalability is not None and descs[0].scalability.sizes == ((160, 120),)
    assert all(d.scalability is None for d in descs[1:])
    assert [d.begins_frame for d in descs] == [True] + [False] * (len(descs) - 1)
    assert [d.ends_frame for d in descs] == [False] * (len(descs) - 1) + [True]
    assert not any(d.inter_predicted for d in descs) and {d.picture_id for d in descs} == {3}
    later = [vp9_descriptor(p.payload) for p in packetizer.packetize(inter[0], 9000)]
    assert all(d.inter_predicted and d.picture_id == 4 for d in later)
    assert later[0].scalability is None


def test_vp9_without_the_inter_flag_leaves_p_clear_for_baresip_1_0() -> None:
    key, inter = encode("vp9", 2, gop=10)
    packetizer = Vp9Packetizer(inter_flag=False)
    descs = [
        vp9_descriptor(p.payload) for f in (key[0], inter[0]) for p in packetizer.packetize(f, 0)
    ]
    assert not any(d.inter_predicted for d in descs)
    assert [d.picture_id for d in descs] == [0, 1]  # the rest as before


def test_vp9_refuses_what_is_not_vp9() -> None:
    with pytest.raises(PacketizeError, match="not a VP9 frame"):
        Vp9Packetizer().packetize(b"\x00\x01\x02", 0)


@pytest.mark.parametrize("codec", ["vp8", "vp9", "h264"])
@pytest.mark.parametrize("max_payload", [60, 1200])
def test_real_frames_round_trip_and_decode(codec: str, max_payload: int) -> None:
    frames = encode(codec, 8, gop=4)
    packetizer = {
        "vp8": Vp8Packetizer,
        "vp9": Vp9Packetizer,
        "h264": H264Packetizer,
    }[codec](max_payload=max_payload)
    wire = Wire()
    dep = make_depacketizer(codec.upper(), 90000, {"packetization-mode": "1"})
    units = []
    for i, (data, _) in enumerate(frames):
        payloads = packetizer.packetize(data, i * 9000)
        assert all(len(p.payload) <= max_payload for p in payloads)
        assert [p.marker for p in payloads][-1] and not any(p.marker for p in payloads[:-1])
        for packet in wire.packets(payloads):
            units += dep.push(packet)
    assert [u.keyframe for u in units] == [k for _, k in frames]
    assert [u.timestamp for u in units] == [i * 9000 for i in range(len(frames))]
    if codec != "h264":  # the H.264 depacketiser rewrites parameter sets in band
        assert [u.data for u in units] == [f for f, _ in frames]
    else:
        assert [split_annex_b(u.data)[-1] for u in units] == [
            split_annex_b(f)[-1] for f, _ in frames
        ]
    pictures = decode(codec, [u.data for u in units])
    assert len(pictures) == len(frames) and pictures[0].width == 160


def nals_of(payloads: list[RtpPayload]) -> list[int]:
    return [p.payload[0] & 0x1F for p in payloads]


def test_h264_mode_1_aggregates_small_units_and_fragments_big_ones() -> None:
    sps, pps = b"\x67\x42\xc0\x1e\xda", b"\x68\xce\x3c\x80"
    idr = b"\x65\x88" + bytes(range(250))
    out = H264Packetizer(max_payload=100).packetize(SC + sps + SC + pps + SC + idr, 90)
    assert nals_of(out) == [24, 28, 28, 28]  # STAP-A, then FU-A
    assert out[0].payload == b"\x78" + b"\x00\x05" + sps + b"\x00\x04" + pps
    fu_headers = [p.payload[1] for p in out[1:]]
    assert fu_headers == [0x85, 0x05, 0x45]  # S, -, E with type 5
    assert all(p.payload[0] == 0x60 | 28 for p in out[1:])  # NRI of the IDR
    assert b"".join(p.payload[2:] for p in out[1:]) == idr[1:]


def test_h264_mode_0_sends_one_unit_per_packet_or_refuses() -> None:
    sps, pps, idr = b"\x67\x42\xc0\x1e\xda", b"\x68\xce\x3c\x80", b"\x65\x88" + bytes(range(1, 51))
    packetizer = H264Packetizer(max_payload=100, packetization_mode=0)
    out = packetizer.packetize(SC + sps + SC + pps + SC + idr, 0)
    assert [p.payload for p in out] == [sps, pps, idr]
    with pytest.raises(PacketizeError, match="mode 0"):
        packetizer.packetize(SC + b"\x65" + bytes(range(1, 201)), 0)


@pytest.mark.parametrize(
    ("make", "frame"),
    [
        (lambda: Vp8Packetizer(), b""),
        (lambda: Vp9Packetizer(), b""),
        (lambda: H264Packetizer(), b"\x00\x00\x00\x01"),
        (lambda: Vp8Packetizer(max_payload=4), b"x"),
        (lambda: Vp9Packetizer(max_payload=8), b"x"),
        (lambda: H264Packetizer(packetization_mode=2), b"x"),
    ],
)
def test_misuse_is_a_packetize_error(make, frame: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PacketizeError):
        make().packetize(frame, 0)
