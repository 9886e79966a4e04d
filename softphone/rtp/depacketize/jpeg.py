"""MJPEG depacketiser (RFC 2435): fragments in, complete JFIF images out (sans-IO).

RTP/JPEG leaves the JPEG headers out; the receiver rebuilds them (RFC 2435 §3.1 and Appendix A/B):

- Main JPEG header (§3.1): type-specific, fragment offset (24 bits), type, Q, width/8, height/8.
- Types 0 and 1 (§4.1): YUV 4:2:2 (Y sampled 2x1) and 4:2:0 (Y sampled 2x2); types 64 and 65
  are the same with a Restart Marker header (§3.1.7) whose interval becomes a DRI segment.
- Q 1-99 (§4.2, Appendix A): the standard tables of ITU-T T.81 Annex K scaled by Q.
  Q 128-255 (§3.1.8): the Quantization Table header in the packet at offset 0 carries the tables;
  for Q 128-254 a frame may omit them (length 0) and the last ones sent with that Q are used.
  Q 255 must carry them every frame.
- Huffman tables: always the standard ones (T.81 §K.3, §3.1.9).

A frame is the packets of one timestamp, put together by fragment offset; it is complete at the
marker bit when its fragments cover 0..end without a hole. A missing fragment (a hole, or a
timestamp change before the marker) drops the frame. Every output frame is a key frame.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from softphone.rtp.depacketize import AccessUnit

if TYPE_CHECKING:  # the RTP packet module loads with the RTP session, after PLAY
    from softphone.rtp.packet import RtpPacket

MAIN_HEADER_SIZE: Final = 8
RESTART_HEADER_SIZE: Final = 4
QUANT_HEADER_SIZE: Final = 4
MAX_FRAME_BYTES: Final = 1 << 24  # the 24-bit fragment offset

# ITU-T T.81 Table K.1 and K.2 (RFC 2435 Appendix A), natural (row-major) order.
LUMA_QUANTIZER: Final = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
CHROMA_QUANTIZER: Final = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
)  # fmt: skip


def _zigzag() -> tuple[int, ...]:
    """Natural-order index of each zigzag position (T.81 Figure A.6)."""
    cells = [(row, col) for row in range(8) for col in range(8)]
    # Walk the anti-diagonals, alternating direction: odd diagonals go down, even ones go up.
    cells.sort(key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]))
    return tuple(8 * row + col for row, col in cells)


ZIGZAG: Final = _zigzag()

# ITU-T T.81 §K.3 standard Huffman tables: (class << 4 | id, code counts per length, values).
_AC_LUMA_VALUES: Final = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
    "2433627282090a161718191a25262728292a3435363738393a434445464748494a"
    "535455565758595a636465666768696a737475767778797a838485868788898a"
    "92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6"
    "c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
)
_AC_CHROMA_VALUES: Final = bytes.fromhex(
    "000102031104052131061241510761711322328108144291a1b1c109233352f0"
    "156272d10a162434e125f11718191a262728292a35363738393a434445464748494a"
    "535455565758595a636465666768696a737475767778797a82838485868788898a"
    "92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6"
    "c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa"
)
HUFFMAN_TABLES: Final = (
    (0x00, bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]), bytes(range(12))),
    (0x10, bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]), _AC_LUMA_VALUES),
    (0x01, bytes([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]), bytes(range(12))),
    (0x11, bytes([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]), _AC_CHROMA_VALUES),
)
_LUMA_SAMPLING: Final = {0: 0x21, 1: 0x22}  # RFC 2435 §4.1: type 0 = 4:2:2, type 1 = 4:2:0


def scaled_tables(q: int) -> bytes:
    """Luma then chroma table in zigzag order for Q 1-99 (RFC 2435 Appendix A ``MakeTables``)."""
    factor = min(max(q, 1), 99)
    scale = 5000 // factor if factor < 50 else 200 - 2 * factor
    return bytes(
        min(max((base[ZIGZAG[i]] * scale + 50) // 100, 1), 255)
        for base in (LUMA_QUANTIZER, CHROMA_QUANTIZER)
        for i in range(64)
    )


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0xFF, marker, len(body) + 2) + body


def jfif_header(
    *, jpeg_type: int, width: int, height: int, tables: list[bytes], restart_interval: int
) -> bytes:
    """SOI, APP0 (JFIF), DQT, SOF0, DHT, [DRI], SOS for an RFC 2435 frame (Appendix B)."""
    dqt = b"".join(bytes([(len(table) == 128) << 4 | i]) + table for i, table in enumerate(tables))
    chroma_table = 1 if len(tables) > 1 else 0
    sof = struct.pack("!BHHB", 8, height, width, 3) + bytes(
        [1, _LUMA_SAMPLING[jpeg_type], 0, 2, 0x11, chroma_table, 3, 0x11, chroma_table]
    )
    dht = b"".join(bytes([tc_th]) + counts + values for tc_th, counts, values in HUFFMAN_TABLES)
    parts = [
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xDB, dqt),
        _segment(0xC0, sof),
        _segment(0xC4, dht),
    ]
    if restart_interval:
        parts.append(_segment(0xDD, struct.pack("!H", restart_interval)))
    parts.append(_segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])))
    return b"".join(parts)


class JpegDepacketizer:
    """RFC 2435 frames -> JFIF images. Counters: ``dropped_frames``."""

    codec = "mjpeg"

    def __init__(self) -> None:
        self._ts: int | None = None
        self._fragments: dict[int, bytes] = {}
        self._size = 0
        # type, Q, width, height, restart interval, tables: from the packet at offset 0
        self._first: tuple[int, int, int, int, int, list[bytes] | None] | None = None
        self._cached_tables: dict[int, list[bytes]] = {}
        self._waiting = True
        self.dropped_frames = 0

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> JpegDepacketizer:
        return cls()

    @property
    def extradata(self) -> bytes | None:
        return None

    @property
    def waiting_for_keyframe(self) -> bool:
        """True until the first complete frame, and again after a dropped one."""
        return self._waiting

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        # lost_before needs no handling: fragment offsets show every hole in a frame.
        if self._ts is not None and packet.timestamp != self._ts:
            self._drop()  # its last fragment (with the marker) never came
        self._ts = packet.timestamp
        if not self._take(packet.payload):
            self._drop(broken=True)
            return []
        if not packet.marker:
            return []
        return self._complete()

    def flush(self) -> list[AccessUnit]:
        self._drop()
        return []

    def _take(self, payload: bytes) -> bool:
        """Parse one packet's headers (RFC 2435 §3.1) and keep its fragment."""
        if len(payload) < MAIN_HEADER_SIZE:
            return False
        offset = int.from_bytes(payload[1:4], "big")
        jpeg_type, q, width, height = payload[4], payload[5], payload[6] * 8, payload[7] * 8
        pos = MAIN_HEADER_SIZE
        restart_interval = 0
        if 64 <= jpeg_type < 128:  # §3.1.7 Restart Marker header
            if len(payload) < pos + RESTART_HEADER_SIZE:
                return False
            restart_interval = int.from_bytes(payload[pos : pos + 2], "big")
            pos += RESTART_HEADER_SIZE
            jpeg_type -= 64
        tables: list[bytes] | None = None
        if q >= 128 and offset == 0:  # §3.1.8 Quantization Table header, first packet only
            if len(payload) < pos + QUANT_HEADER_SIZE:
                return False
            precision = payload[pos + 1]
            length = int.from_bytes(payload[pos + 2 : pos + 4], "big")
            pos += QUANT_HEADER_SIZE
            if len(payload) < pos + length:
                return False
            tables = _split_tables(payload[pos : pos + length], precision)
            if tables is None:
                return False
            pos += length
        if offset == 0:
            self._first = (jpeg_type, q, width, height, restart_interval, tables)
        data = payload[pos:]
        if offset in self._fragments:  # a duplicate: the first one stays
            return True
        self._fragments[offset] = data
        self._size += len(data)
        return self._size <= MAX_FRAME_BYTES

    def _complete(self) -> list[AccessUnit]:
        fragments, first, ts = self._fragments, self._first, self._ts
        self._reset()
        if first is None or ts is None:
            self.dropped_frames += 1
            self._waiting = True
            return []
        expected = 0
        for offset in sorted(fragments):
            if offset != expected:  # a hole (or an overlap): a fragment is missing
                self.dropped_frames += 1
                self._waiting = True
                return []
            expected += len(fragments[offset])
        jpeg_type, q, width, height, restart_interval, tables = first
        tables = self._tables_for(q, tables)
        if tables is None or jpeg_type not in _LUMA_SAMPLING or not width or not height:
            self.dropped_frames += 1
            self._waiting = True
            return []
        scan = b"".join(fragments[offset] for offset in sorted(fragments))
        header = jfif_header(
            jpeg_type=jpeg_type,
            width=width,
            height=height,
            tables=tables,
            restart_interval=restart_interval,
        )
        end = b"" if scan.endswith(b"\xff\xd9") else b"\xff\xd9"
        self._waiting = False
        return [AccessUnit(data=header + scan + end, timestamp=ts, keyframe=True, codec=self.codec)]

    def _tables_for(self, q: int, tables: list[bytes] | None) -> list[bytes] | None:
        """The quantization tables of a frame (RFC 2435 §3.1.8, Appendix A)."""
        if 1 <= q <= 99:
            scaled = scaled_tables(q)
            return [scaled[:64], scaled[64:]]
        if q < 128:  # 0 and 100-127 are reserved
            return None
        if tables:
            if q != 255:  # Q 255 tables may change every frame: never reused
                self._cached_tables[q] = tables
            return tables
        return self._cached_tables.get(q) if q != 255 else None

    def _drop(self, *, broken: bool = False) -> None:
        if self._fragments or broken:
            self.dropped_frames += 1
            self._waiting = True
        self._reset()

    def _reset(self) -> None:
        self._ts = None
        self._fragments = {}
        self._size = 0
        self._first = None


def _split_tables(data: bytes, precision: int) -> list[bytes] | None:
    """Tables of a Quantization Table header: bit i of precision set = table i has 16-bit
    entries (128 bytes), else 8-bit (64 bytes), in zigzag order (RFC 2435 §3.1.8)."""
    tables: list[bytes] = []
    pos = 0
    while pos < len(data):
        size = 128 if precision >> len(tables) & 1 else 64
        if pos + size > len(data) or len(tables) == 4:
            return None
        tables.append(data[pos : pos + size])
        pos += size
    return tables
