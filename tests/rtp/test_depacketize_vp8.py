"""VP8 depacketiser (RFC 7741): the payload descriptor, the frame header, frames out of packets
(real libvpx frames cut up by our packetiser and by hand), loss, damage and key frames."""

from __future__ import annotations

import pytest
from rtp_captures import DATA, Capture, load_capture
from video_support import Wire, decode, encode

from softphone.rtp.depacketize import PayloadError, make_depacketizer
from softphone.rtp.depacketize.vp8 import Vp8Depacketizer, parse_descriptor, parse_frame_header
from softphone.rtp.packet import RtpPacket
from softphone.rtp.packetize.vp8 import Vp8Packetizer

KEY = bytes.fromhex("1006009d012aa0007800")  # tag (key, show, partition 48), start code, 160x120


def packet(payload: bytes, *, seq: int = 1, ts: int = 3000, marker: bool = True) -> RtpPacket:
    return RtpPacket(
        payload_type=96, sequence=seq, timestamp=ts, ssrc=7, marker=marker, payload=payload
    )


@pytest.fixture(scope="module")
def frames() -> list[tuple[bytes, bool]]:
    return encode("vp8", 12, gop=6)


def run(frames: list[tuple[bytes, bool]], max_payload: int = 40) -> list[RtpPacket]:
    packetizer = Vp8Packetizer(max_payload=max_payload, picture_id=32760)
    wire = Wire()
    return [
        p
        for i, (data, _) in enumerate(frames)
        for p in wire.packets(packetizer.packetize(data, 4_294_960_000 + i * 9000))
    ]


# --- the descriptor (RFC 7741 §4.2) ---------------------------------------------------------
def test_a_minimal_descriptor_is_one_byte() -> None:
    desc = parse_descriptor(b"\x10\xaa")  # S = 1, PID 0
    assert (desc.size, desc.start, desc.partition, desc.picture_id) == (1, True, 0, None)
    assert desc.starts_frame


def test_every_extension_field_is_read() -> None:
    # X | N | S | PID 3; I L T K; 15-bit picture id 0x1234; TL0PICIDX 9; TID 2, Y, KEYIDX 17
    desc = parse_descriptor(bytes([0xB3, 0xF0, 0x92, 0x34, 0x09, 0x80 | 0x20 | 17, 0xEE]))
    assert desc.size == 6
    assert desc.non_reference and desc.start and desc.partition == 3
    assert not desc.starts_frame  # a later partition starts here, not the frame
    assert (desc.picture_id, desc.picture_id_bits) == (0x1234, 15)
    assert (desc.tl0_pic_idx, desc.tid, desc.layer_sync, desc.key_idx) == (9, 2, True, 17)


def test_a_seven_bit_picture_id() -> None:
    desc = parse_descriptor(b"\x90\x80\x7f\x00")
    assert (desc.picture_id, desc.picture_id_bits, desc.size) == (127, 7, 3)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x90", b"\x90\x80", b"\x90\x80\x80\x01", b"\x90\x40", b"\x90\x20", b"\x10", b"\x80"],
    ids=["empty", "no-ext", "no-pid", "half-pid", "no-tl0", "no-tid", "no-data", "x-only"],
)
def test_a_truncated_descriptor_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError, match="VP8"):
        parse_descriptor(payload)


# --- the frame header (RFC 6386 §9.1, RFC 7741 §4.3) ----------------------------------------
def test_a_key_frame_header_gives_its_size(frames: list[tuple[bytes, bool]]) -> None:
    header = parse_frame_header(frames[0][0])
    assert header.keyframe and (header.width, header.height) == (160, 120)
    assert not parse_frame_header(frames[1][0]).keyframe


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x10\x06", "shorter than its frame tag"),
        (KEY[:8], "key frame shorter"),
        (KEY[:3] + b"\x9d\x01\x2b" + KEY[6:] + bytes(60), "start code"),
        (KEY[:6] + bytes(4) + bytes(60), "size 0x0"),
        (KEY + bytes(10), "overruns"),  # partition of 48 bytes in a 20-byte frame
        (b"\x0f\x00\x00", "version 7"),
    ],
)
def test_a_broken_frame_header_is_a_payload_error(frame: bytes, error: str) -> None:
    with pytest.raises(PayloadError, match=error):
        parse_frame_header(frame)


# --- frames out of packets ------------------------------------------------------------------
def test_real_frames_come_back_byte_exact_and_decode(frames: list[tuple[bytes, bool]]) -> None:
    packets = run(frames)
    assert len(packets) > 2 * len(frames)  # cut into several packets each
    dep = make_depacketizer("VP8", 90000, {})
    units = [u for p in packets for u in dep.push(p)] + dep.flush()
    assert [u.data for u in units] == [f for f, _ in frames]
    assert [u.keyframe for u in units] == [k for _, k in frames]
    assert units[1].timestamp == (4_294_960_000 + 9000) & 0xFFFF_FFFF  # wrapped
    assert {u.codec for u in units} == {"vp8"}
    assert dep.picture_size == (160, 120) and not dep.waiting_for_keyframe
    assert dep.picture_id == (32760 + len(frames) - 1) & 0x7FFF  # 15-bit wrap
    assert len(decode("vp8", [u.data for u in units])) == len(frames)


def test_a_frame_without_a_marker_ends_at_the_next_timestamp() -> None:
    dep = Vp8Depacketizer()
    body = KEY + bytes(48)
    assert dep.push(packet(b"\x10" + body[:30], marker=False)) == []
    assert dep.push(packet(b"\x00" + body[30:], seq=2, marker=False)) == []
    units = dep.push(packet(b"\x10" + b"\x01\x00\x00", seq=3, ts=6000, marker=False))
    assert [u.data for u in units] == [body]


def test_loss_drops_frames_up_to_the_next_key_frame(frames: list[tuple[bytes, bool]]) -> None:
    packets = run(frames)
    # a middle packet of the second frame is lost
    ts1 = (packets[0].timestamp + 9000) & 0xFFFF_FFFF
    second = [i for i, p in enumerate(packets) if p.timestamp == ts1]
    lost = second[1]
    dep = Vp8Depacketizer()
    units = []
    for i, p in enumerate(packets):
        if i == lost:
            continue
        units += dep.push(p, lost_before=1 if i == lost + 1 else 0)
        if lost < i < second[-1]:
            assert dep.waiting_for_keyframe
    units += dep.flush()
    keys = [i for i, (_, k) in enumerate(frames) if k]
    assert keys == [0, 6]
    assert [u.data for u in units] == [frames[0][0]] + [f for f, _ in frames[6:]]
    assert dep.dropped_units == 5  # the damaged frame and the four after it
    assert len(decode("vp8", [u.data for u in units])) == len(units)


def test_joining_mid_stream_waits_for_a_key_frame(frames: list[tuple[bytes, bool]]) -> None:
    packets = run(frames)
    start = next(i for i, p in enumerate(packets) if p.timestamp != packets[0].timestamp) + 1
    dep = Vp8Depacketizer()
    units = [u for p in packets[start:] for u in dep.push(p)]
    assert units[0].keyframe and units[0].data == frames[6][0]
    assert dep.dropped_units == 5  # the rest of frame 1 (no S bit) and frames 2-5


def test_a_key_frame_with_a_wrong_partition_size_is_dropped() -> None:
    dep = Vp8Depacketizer()
    broken = bytearray(KEY + bytes(20))  # the first partition claims 48 bytes
    assert dep.push(packet(b"\x10" + bytes(broken))) == []
    assert dep.waiting_for_keyframe and dep.dropped_units == 1
    good = KEY + bytes(48)
    assert [u.data for u in dep.push(packet(b"\x10" + good, seq=2, ts=6000))] == [good]


def test_a_stream_without_a_key_frame_gives_nothing() -> None:
    dep = Vp8Depacketizer()
    inter = b"\x01\x02\x00" + bytes(16)  # P = 1, first partition 16 bytes
    out = [dep.push(packet(b"\x10" + inter, seq=i, ts=i * 3000)) for i in range(5)]
    assert out == [[]] * 5 and dep.waiting_for_keyframe and dep.dropped_units == 5


def test_a_second_frame_start_under_one_timestamp_drops_the_frame() -> None:
    dep = Vp8Depacketizer()
    body = KEY + bytes(48)
    dep.push(packet(b"\x90\x80\x05" + body[:20], marker=False))
    assert dep.push(packet(b"\x90\x80\x06" + body[20:], seq=2)) == []  # another picture id
    assert dep.dropped_units == 1 and dep.waiting_for_keyframe


def test_a_malformed_descriptor_drops_the_rest_of_its_frame() -> None:
    dep = Vp8Depacketizer()
    body = KEY + bytes(48)
    dep.push(packet(b"\x10" + body[:20], marker=False))
    assert dep.push(packet(b"\x80", seq=2, marker=False)) == []
    assert dep.push(packet(b"\x00" + body[20:], seq=3)) == []  # the rest of the broken frame
    assert [u.data for u in dep.push(packet(b"\x10" + body, seq=4, ts=6000))] == [body]
    assert dep.dropped_units == 1


def test_ffmpeg_packets_give_every_frame() -> None:
    """FFmpeg's own RTP packetiser (another implementation of the RFC), captured once on
    127.0.0.1 into tests/data/rtp/depack_ffmpeg_vp8.bin (`ffmpeg -f lavfi -i
    testsrc2=size=160x120:rate=10 -frames:v 8 -c:v libvpx -g 4 ... -f rtp
    rtp://127.0.0.1:PORT?pkt_size=300`): 8 frames, key frames every 4, all decodable."""
    capture = load_capture("vp8")
    assert len(capture.packets) > 40  # frames over several packets
    dep = make_depacketizer(capture.encoding, capture.clock_rate, capture.fmtp)
    units = [u for p in capture.packets for u in dep.push(p)] + dep.flush()
    assert [u.keyframe for u in units] == [True, False, False, False] * 2
    assert dep.dropped_units == 0 and dep.picture_size == (160, 120)
    assert len(decode("vp8", [u.data for u in units])) == 8


def test_baresip_packets_give_every_frame() -> None:
    """baresip 1.0's own vp8 module (fakevideo source, 320x240 at 15/s), captured once on
    127.0.0.1 into tests/data/rtp/depack_baresip_vp8.bin (the way
    tests/interop/test_video_baresip.py calls it): one key frame, then inter frames; the last frame is cut short by the end of the capture: no marker, dropped by flush."""
    capture = load_capture("vp8", path=DATA / "depack_baresip_vp8.bin")
    assert isinstance(capture, Capture) and capture.encoding == "VP8"
    dep = make_depacketizer(capture.encoding, capture.clock_rate, capture.fmtp)
    units = [u for p in capture.packets for u in dep.push(p)] + dep.flush()
    assert len(units) == 60 and [u.keyframe for u in units] == [True] + [False] * 59
    assert dep.dropped_units == 1 and dep.picture_size == (320, 240)
    assert len(decode("vp8", [u.data for u in units])) == 60
