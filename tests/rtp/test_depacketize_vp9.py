"""VP9 depacketiser (RFC 9628): the payload descriptor in both modes, the scalability structure,
the frame header, superframes, pictures out of packets (real libvpx-vp9 frames), spatial layers,
loss, damage and key frames."""

from __future__ import annotations

import pytest
from rtp_captures import DATA, Capture, load_capture
from video_support import Wire, decode, encode

from softphone.rtp.depacketize import PayloadError, make_depacketizer
from softphone.rtp.depacketize.vp9 import (
    Vp9Depacketizer,
    build_superframe,
    parse_descriptor,
    parse_frame_header,
    split_superframe,
)
from softphone.rtp.packet import RtpPacket
from softphone.rtp.packetize.vp9 import Vp9Packetizer


def packet(payload: bytes, *, seq: int = 1, ts: int = 3000, marker: bool = True) -> RtpPacket:
    return RtpPacket(
        payload_type=98, sequence=seq, timestamp=ts, ssrc=7, marker=marker, payload=payload
    )


@pytest.fixture(scope="module")
def frames() -> list[tuple[bytes, bool]]:
    return encode("vp9", 10, gop=5)


def run(frames: list[tuple[bytes, bool]], max_payload: int = 40) -> list[RtpPacket]:
    packetizer = Vp9Packetizer(max_payload=max_payload, picture_id=0x7FFE)
    wire = Wire()
    return [
        p
        for i, (data, _) in enumerate(frames)
        for p in wire.packets(packetizer.packetize(data, 1000 + i * 9000))
    ]


# --- the descriptor (RFC 9628 §4.2) ---------------------------------------------------------
def test_non_flexible_mode_with_layer_indices() -> None:
    # I P L - B E - Z; 7-bit picture id 5; TID 2 U SID 1 D; TL0PICIDX 200
    desc = parse_descriptor(bytes([0xED, 0x05, 0x40 | 0x10 | 0x02 | 0x01, 200, 0xAA]))
    assert desc.size == 4
    assert desc.inter_predicted and not desc.flexible
    assert desc.begins_frame and desc.ends_frame and desc.not_upper_reference
    assert (desc.picture_id, desc.tid, desc.switching_up, desc.sid, desc.inter_layer) == (
        5,
        2,
        True,
        1,
        True,
    )
    assert desc.tl0_pic_idx == 200 and desc.references == ()


def test_flexible_mode_reads_up_to_three_references() -> None:
    # I P - F B; 15-bit picture id 0x0102; P_DIFF 1 (N), 2 (N), 4
    desc = parse_descriptor(bytes([0xD8, 0x81, 0x02, 0x03, 0x05, 0x08, 0xAA]))
    assert desc.flexible and desc.picture_id == 0x0102 and desc.references == (1, 2, 4)
    assert desc.tl0_pic_idx is None and desc.size == 6


def test_the_scalability_structure_is_parsed_and_skipped() -> None:
    # V with N_S = 1 (two layers), Y, G: sizes 320x180 and 640x360; N_G 2:
    # (TID 0, U 0, R 1: P_DIFF 2) and (TID 1, U 1, R 2: P_DIFF 1, 3)
    ss = bytes([0x20 | 0x10 | 0x08])
    ss += (320).to_bytes(2, "big") + (180).to_bytes(2, "big")
    ss += (640).to_bytes(2, "big") + (360).to_bytes(2, "big")
    ss += bytes([2, 0x04, 2, 0x20 | 0x10 | 0x08, 1, 3])
    desc = parse_descriptor(bytes([0x0A]) + ss + b"\x82\x49")  # B, V
    assert desc.size == 1 + len(ss)
    assert desc.scalability is not None
    assert desc.scalability.spatial_layers == 2
    assert desc.scalability.sizes == ((320, 180), (640, 360))
    assert desc.scalability.group == ((0, False, (2,)), (1, True, (1, 3)))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x88",  # no data
        b"\x88\x80\x01",  # half a 15-bit id
        b"\x28\x00",  # L: no TL0PICIDX (non-flexible)
        b"\x58\x03\x03\x03\x03\xaa",  # four references
        b"\x58\x03",  # reference chain ends early
        b"\x0a\x30\x00\x01",  # SS sizes cut short
        b"\x0a\x08\x02\x04",  # SS group cut short
    ],
    ids=["empty", "no-data", "half-pid", "no-tl0", "four-refs", "refs-cut", "ss-sizes", "ss-group"],
)
def test_a_broken_descriptor_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError, match="VP9"):
        parse_descriptor(payload)


# --- frame header and superframes -----------------------------------------------------------
def test_the_key_frame_header_gives_its_size(frames: list[tuple[bytes, bool]]) -> None:
    header = parse_frame_header(frames[0][0])
    assert header.keyframe and (header.width, header.height) == (160, 120)
    assert header.profile == 0
    assert not parse_frame_header(frames[1][0]).keyframe


@pytest.mark.parametrize(
    ("frame", "error"),
    [(b"\x02\x00", "frame_marker"), (b"\x82\x49\x83\x43\x00", "sync code"), (b"\x82", "truncated")],
)
def test_a_broken_frame_header_is_a_payload_error(frame: bytes, error: str) -> None:
    with pytest.raises(PayloadError, match=error):
        parse_frame_header(frame)


def test_superframes_split_and_build() -> None:
    a, b = b"\x86" + bytes(300), b"\x86\x01\x02"
    sf = build_superframe([a, b])
    assert sf[-1] == sf[-(2 + 2 * 2)] == 0xC0 | 1 << 3 | 1  # 2 bytes per size, 2 frames
    assert split_superframe(sf) == [a, b]
    assert build_superframe([a]) == a and split_superframe(a) == [a]
    bad = sf[:-3] + (299).to_bytes(2, "little") + sf[-1:]
    with pytest.raises(PayloadError, match="superframe index"):
        split_superframe(bad)


# --- pictures out of packets ----------------------------------------------------------------
def test_real_frames_come_back_byte_exact_and_decode(frames: list[tuple[bytes, bool]]) -> None:
    packets = run(frames)
    assert len(packets) > 2 * len(frames)
    dep = make_depacketizer("VP9", 90000, {"profile-id": "0"})
    units = [u for p in packets for u in dep.push(p)] + dep.flush()
    assert [u.data for u in units] == [f for f, _ in frames]
    assert [u.keyframe for u in units] == [k for _, k in frames]
    assert {u.codec for u in units} == {"vp9"}
    assert isinstance(dep, Vp9Depacketizer)
    assert dep.picture_size == (160, 120)
    assert dep.scalability is not None and dep.scalability.sizes == ((160, 120),)
    assert dep.picture_id == (0x7FFE + len(frames) - 1) & 0x7FFF
    assert len(decode("vp9", [u.data for u in units])) == len(frames)


def test_spatial_layers_come_out_as_one_superframe(frames: list[tuple[bytes, bool]]) -> None:
    base, upper = frames[0][0], frames[1][0]
    dep = Vp9Depacketizer()
    # layer 0 in two packets, layer 1 in one; L set, SID 0 then 1 (D: depends on layer 0)
    l0 = bytes([0x80 | 0x20 | 0x08, 0x11, 0x00, 0x00])
    l0_end = bytes([0x80 | 0x20 | 0x04, 0x11, 0x00, 0x00])
    l1 = bytes([0x80 | 0x40 | 0x20 | 0x0C, 0x11, 0x03, 0x00])
    assert dep.push(packet(l0 + base[:50], marker=False)) == []
    assert dep.push(packet(l0_end + base[50:], seq=2, marker=False)) == []
    units = dep.push(packet(l1 + upper, seq=3))
    assert len(units) == 1 and units[0].keyframe
    assert split_superframe(units[0].data) == [base, upper]


def test_a_sender_superframe_comes_back_whole(frames: list[tuple[bytes, bool]]) -> None:
    sf = build_superframe([frames[0][0], frames[1][0]])
    dep = Vp9Depacketizer()
    units = [u for p in run([(sf, True)], max_payload=64) for u in dep.push(p)]
    assert [u.data for u in units] == [sf]


def test_loss_drops_pictures_up_to_the_next_key_frame(frames: list[tuple[bytes, bool]]) -> None:
    packets = run(frames)
    second = [i for i, p in enumerate(packets) if p.timestamp == 1000 + 9000]
    lost = second[1]
    dep = Vp9Depacketizer()
    units = []
    for i, p in enumerate(packets):
        if i != lost:
            units += dep.push(p, lost_before=1 if i == lost + 1 else 0)
    assert [i for i, (_, k) in enumerate(frames) if k] == [0, 5]
    assert [u.data for u in units] == [frames[0][0]] + [f for f, _ in frames[5:]]
    assert dep.dropped_units == 4
    assert len(decode("vp9", [u.data for u in units])) == len(units)


def test_a_frame_without_its_end_is_dropped(frames: list[tuple[bytes, bool]]) -> None:
    key = frames[0][0]
    dep = Vp9Depacketizer()
    assert dep.push(packet(b"\x08" + key[:40], marker=False)) == []  # B, no E
    assert dep.push(packet(b"\x08" + key, seq=2, ts=6000)) == []  # marker, but no E either
    assert dep.dropped_units == 2 and dep.waiting_for_keyframe
    units = dep.push(packet(b"\x0c" + key, seq=3, ts=9000))  # B and E
    assert [u.data for u in units] == [key]
    assert dep.dropped_units == 2


def test_an_inter_frame_flagged_as_key_does_not_end_the_wait(
    frames: list[tuple[bytes, bool]],
) -> None:
    dep = Vp9Depacketizer()
    inter = frames[1][0]
    assert dep.push(packet(b"\x0c" + inter)) == []  # P = 0 in the descriptor, but not a key frame
    assert dep.push(packet(b"\x0c" + b"\x00\x11\x22", seq=2, ts=6000)) == []  # not VP9 at all
    assert dep.waiting_for_keyframe and dep.dropped_units == 2


def test_a_middle_packet_without_a_beginning_is_damage(frames: list[tuple[bytes, bool]]) -> None:
    key = frames[0][0]
    dep = Vp9Depacketizer()
    dep.push(packet(b"\x0c" + key, marker=False))  # one whole frame, picture goes on
    assert dep.push(packet(b"\x80\x00" + key, seq=2)) == []  # no B, and the picture id differs
    assert dep.dropped_units == 1


def test_ffmpeg_packets_give_every_frame() -> None:
    """FFmpeg's own RTP packetiser (another implementation of the RFC), captured once on
    127.0.0.1 into tests/data/rtp/depack_ffmpeg_vp9.bin (`ffmpeg -f lavfi -i
    testsrc2=size=160x120:rate=10 -frames:v 8 -c:v libvpx-vp9 -g 4 ... -f rtp
    rtp://127.0.0.1:PORT?pkt_size=300`): 8 frames, key frames every 4, all decodable."""
    capture = load_capture("vp9")
    assert len(capture.packets) > 40  # frames over several packets
    dep = make_depacketizer(capture.encoding, capture.clock_rate, capture.fmtp)
    units = [u for p in capture.packets for u in dep.push(p)] + dep.flush()
    assert [u.keyframe for u in units] == [True, False, False, False] * 2
    assert dep.dropped_units == 0 and dep.picture_size == (160, 120)
    assert len(decode("vp9", [u.data for u in units])) == 8


def test_baresip_packets_give_every_frame() -> None:
    """baresip 1.0's own vp9 module (fakevideo source, 320x240 at 15/s), captured once on
    127.0.0.1 into tests/data/rtp/depack_baresip_vp9.bin (the way
    tests/interop/test_video_baresip.py calls it): one key frame, then inter frames; every frame whole."""
    capture = load_capture("vp9", path=DATA / "depack_baresip_vp9.bin")
    assert isinstance(capture, Capture) and capture.encoding == "VP9"
    dep = make_depacketizer(capture.encoding, capture.clock_rate, capture.fmtp)
    units = [u for p in capture.packets for u in dep.push(p)] + dep.flush()
    assert len(units) == 61 and [u.keyframe for u in units] == [True] + [False] * 60
    assert dep.dropped_units == 0 and dep.picture_size == (320, 240)
    assert len(decode("vp9", [u.data for u in units])) == 61
