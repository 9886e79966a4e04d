"""MJPEG depacketiser (RFC 2435): rebuilt JFIF headers decode to the very pixels of the original.

JPEGs come from PyAV's mjpeg encoder (standard Huffman tables; one thread: no restart markers,
two threads: a DRI and RST markers) and are cut into RTP/JPEG packets by the test-side packetiser;
plus FFmpeg's own RTP/JPEG packetiser (tests/data/rtp/depack_ffmpeg_mjpeg.bin, captured on
127.0.0.1 with `ffmpeg -f lavfi -i testsrc2=size=160x120:rate=10 -frames:v 3 -c:v mjpeg
-pix_fmt yuvj420p -huffman default -threads 1 -f rtp rtp://127.0.0.1:PORT?pkt_size=400`;
format: an rtpmap line, a blank line, then 16-bit length + RTP packet).
"""

from __future__ import annotations

import fractions
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtp.depacketize.jpeg import (
    CHROMA_QUANTIZER,
    HUFFMAN_TABLES,
    LUMA_QUANTIZER,
    ZIGZAG,
    JpegDepacketizer,
    scaled_tables,
)
from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent.parent / "data" / "rtp"


def encode_jpeg(pix_fmt: str = "yuvj420p", threads: int = 1, seed: int = 1) -> bytes:
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 48, pix_fmt
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.options = {"huffman": "default"}  # RFC 2435 receivers assume the standard tables
    ctx.thread_count = threads
    ctx.thread_type = "SLICE" if threads > 1 else "NONE"
    rng = np.random.default_rng(seed)
    rgb = np.repeat(np.repeat(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), 8, 0), 8, 1)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
    return b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])


@dataclass
class Jfif:
    width: int
    height: int
    jpeg_type: int
    tables: bytes
    restart_interval: int
    scan: bytes


def parse_jfif(data: bytes) -> Jfif:
    """What an RFC 2435 sender takes from a JPEG (test side)."""
    pos, tables, restart, width, height, jpeg_type = 2, b"", 0, 0, 0, -1
    while True:
        marker, length = data[pos + 1], struct.unpack_from("!H", data, pos + 2)[0]
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xDB:
            i = 0
            while i < len(body):
                assert body[i] >> 4 == 0  # 8-bit tables
                tables += body[i + 1 : i + 65]
                i += 65
        elif marker == 0xC0:
            height, width = struct.unpack_from("!HH", body, 1)
            jpeg_type = {0x21: 0, 0x22: 1}[body[7]]
        elif marker == 0xDD:
            restart = struct.unpack_from("!H", body)[0]
        elif marker == 0xC4:  # the encoder's tables are the standard ones we rebuild
            found, i = set(), 0
            while i < len(body):
                count = sum(body[i + 1 : i + 17])
                found.add((body[i], body[i + 1 : i + 17], body[i + 17 : i + 17 + count]))
                i += 17 + count
            assert found == set(HUFFMAN_TABLES)
        elif marker == 0xDA:
            return Jfif(width, height, jpeg_type, tables, restart, data[pos + 2 + length :])
        pos += 2 + length


def packetize(
    jfif: Jfif, *, ts: int, seq: int, q: int = 255, send_tables: bool = True, mtu: int = 200
) -> list[RtpPacket]:
    """Test-side RFC 2435 packetiser."""
    jpeg_type = jfif.jpeg_type + (64 if jfif.restart_interval else 0)
    packets: list[RtpPacket] = []
    scan = jfif.scan.removesuffix(b"\xff\xd9")
    offset = 0
    while offset < len(scan):
        chunk = scan[offset : offset + mtu]
        header = (
            struct.pack("!B", 0)
            + offset.to_bytes(3, "big")
            + bytes([jpeg_type, q, jfif.width // 8, jfif.height // 8])
        )
        if jfif.restart_interval:
            header += struct.pack("!HH", jfif.restart_interval, 0xFFFF)  # F=L=1, count 0x3FFF
        if q >= 128 and offset == 0:
            tables = jfif.tables if send_tables else b""
            header += struct.pack("!BBH", 0, 0, len(tables)) + tables
        last = offset + len(chunk) >= len(scan)
        packets.append(
            RtpPacket(
                payload_type=26,
                sequence=(seq + len(packets)) & 0xFFFF,
                timestamp=ts,
                ssrc=3,
                marker=last,
                payload=header + chunk,
            )
        )
        offset += len(chunk)
    return packets


def pixels(jpeg: bytes) -> np.ndarray:
    ctx = av.CodecContext.create("mjpeg", "r")
    frames = [*ctx.decode(av.Packet(jpeg)), *ctx.decode(None)]
    assert len(frames) == 1
    return frames[0].to_ndarray(format="rgb24")


def push_all(dep: JpegDepacketizer, packets: list[RtpPacket]) -> list[AccessUnit]:
    return [u for p in packets for u in dep.push(p)]


@pytest.mark.parametrize(
    ("pix_fmt", "threads", "jpeg_type"),
    [("yuvj420p", 1, 1), ("yuvj420p", 2, 65)],  # FFmpeg codes 4:2:2 as 2x2/1x2: not RFC 2435
)
def test_rebuilt_jpeg_decodes_to_the_original_pixels(
    pix_fmt: str, threads: int, jpeg_type: int
) -> None:
    original = encode_jpeg(pix_fmt, threads)
    jfif = parse_jfif(original)
    packets = packetize(jfif, ts=90, seq=65534)
    assert packets[0].payload[4] == jpeg_type and len(packets) > 1
    units = push_all(JpegDepacketizer(), packets)
    assert (
        len(units) == 1
        and units[0].keyframe
        and units[0].codec == "mjpeg"
        and units[0].timestamp == 90
    )
    assert units[0].data.startswith(b"\xff\xd8\xff\xe0") and units[0].data.endswith(b"\xff\xd9")
    assert (b"\xff\xdd" in units[0].data) == (threads > 1)
    assert np.array_equal(pixels(units[0].data), pixels(original))


def scan_422(restart: bool) -> bytes:
    """A hand-coded 32x8 4:2:2 scan (two MCUs of Y Y Cb Cr, T.81 §F.1.2, standard tables): luma
    DC +40 in the first MCU (pixels 128 + 40 * 16 / 8 = 208), back to 0 in the second; with
    ``restart`` an RST0 between them resets the DC predictions (T.81 §F.1.1.5.1)."""
    dc6, eob_y, dc0_y, dc0_c_eob_c = "1110", "1010", "00", "0000"
    mcu0 = dc6 + "101000" + eob_y + dc0_y + eob_y + dc0_c_eob_c * 2
    mcu1 = (dc0_y if restart else dc6 + "010111") + eob_y + dc0_y + eob_y + dc0_c_eob_c * 2

    def pack(bits: str) -> bytes:
        bits += "1" * (-len(bits) % 8)
        raw = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
        return raw.replace(b"\xff", b"\xff\x00")

    return pack(mcu0) + b"\xff\xd0" + pack(mcu1) if restart else pack(mcu0 + mcu1)


@pytest.mark.parametrize("restart", [False, True])
def test_type_0_and_64_rebuild_a_4_2_2_picture(restart: bool) -> None:
    jfif = Jfif(
        width=32,
        height=8,
        jpeg_type=0,
        tables=b"",
        restart_interval=int(restart),
        scan=scan_422(restart),
    )
    packets = packetize(jfif, ts=5, seq=9, q=50, mtu=3)
    assert packets[0].payload[4] == (64 if restart else 0)
    units = push_all(JpegDepacketizer(), packets)
    ctx = av.CodecContext.create("mjpeg", "r")
    (frame,) = [*ctx.decode(av.Packet(units[0].data)), *ctx.decode(None)]
    assert (frame.width, frame.height, frame.format.name) == (32, 8, "yuvj422p")
    luma = frame.to_ndarray(format="gray")
    assert np.all(np.abs(luma[:, :16].astype(int) - 208) <= 1)
    assert np.all(np.abs(luma[:, 16:].astype(int) - 128) <= 1)


def test_q_128_to_254_tables_are_cached_for_frames_that_omit_them() -> None:
    first, second = encode_jpeg(seed=1), encode_jpeg(seed=2)
    dep = JpegDepacketizer()
    units = push_all(dep, packetize(parse_jfif(first), ts=0, seq=1, q=200))
    units += push_all(dep, packetize(parse_jfif(second), ts=3000, seq=50, q=200, send_tables=False))
    assert len(units) == 2
    assert np.array_equal(pixels(units[1].data), pixels(second))
    # Q 255 tables are per frame: a frame without them cannot be rebuilt.
    assert (
        push_all(dep, packetize(parse_jfif(second), ts=6000, seq=90, q=255, send_tables=False))
        == []
    )
    assert dep.dropped_frames == 1


def test_q_1_to_99_uses_the_scaled_standard_tables() -> None:
    zigzag_luma = bytes(LUMA_QUANTIZER[i] for i in ZIGZAG)
    assert scaled_tables(50) == zigzag_luma + bytes(CHROMA_QUANTIZER[i] for i in ZIGZAG)
    assert scaled_tables(90)[:3] == bytes(
        [3, 2, 2]
    )  # (16*20+50)//100, (11*20+50)//100, (12*20+50)//100
    assert scaled_tables(99)[0] == 1 and scaled_tables(1)[64:66] == bytes([255, 255])
    jfif = parse_jfif(encode_jpeg())
    units = push_all(JpegDepacketizer(), packetize(jfif, ts=0, seq=1, q=50))
    assert zigzag_luma in units[0].data  # the DQT holds the Q=50 tables
    assert pixels(units[0].data).shape == (48, 64, 3)


def test_a_missing_fragment_drops_the_frame_and_the_next_one_comes_through() -> None:
    jfif = parse_jfif(encode_jpeg())
    dep = JpegDepacketizer()
    assert dep.waiting_for_keyframe
    broken = packetize(jfif, ts=0, seq=1)
    assert push_all(dep, broken[:1] + broken[2:]) == []  # a hole
    tail_lost = packetize(jfif, ts=3000, seq=20)[:-1]  # the marker packet never comes
    assert push_all(dep, tail_lost) == []
    assert dep.waiting_for_keyframe
    units = push_all(dep, packetize(jfif, ts=6000, seq=40))
    assert [u.timestamp for u in units] == [6000] and dep.dropped_frames == 2
    assert not dep.waiting_for_keyframe


def test_junk_headers_drop_the_frame() -> None:
    dep = JpegDepacketizer()
    bad = [
        RtpPacket(
            payload_type=26, sequence=1, timestamp=0, ssrc=1, marker=True, payload=b"\x00\x00\x00"
        ),
        RtpPacket(
            payload_type=26,
            sequence=2,
            timestamp=1,
            ssrc=1,
            marker=True,
            payload=bytes([0, 0, 0, 0, 7, 50, 8, 6]) + b"x",
        ),
        RtpPacket(
            payload_type=26,
            sequence=3,
            timestamp=2,
            ssrc=1,
            marker=True,
            payload=bytes([0, 0, 0, 0, 1, 110, 8, 6]) + b"x",
        ),
    ]
    assert push_all(dep, bad) == [] and dep.dropped_frames == 3


def test_ffmpeg_packetiser_capture_decodes() -> None:
    head, _, body = (DATA / "depack_ffmpeg_mjpeg.bin").read_bytes().partition(b"\n\n")
    assert head.startswith(b"a=rtpmap:26 JPEG/90000")
    packets, pos = [], 0
    while pos < len(body):
        (size,) = struct.unpack_from("!H", body, pos)
        packets.append(RtpPacket.parse(body[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    dep = make_depacketizer("JPEG", 90000, {})
    units = [u for p in packets for u in dep.push(p)]
    assert len(units) == 3
    assert all(pixels(u.data).shape == (120, 160, 3) for u in units)
