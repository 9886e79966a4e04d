"""RTP and RTCP packets: parse from bytes, serialize with ``bytes(packet)`` (sans-IO).

- RTP fixed header, CSRC list, header extension and padding: RFC 3550 §5.1, §5.3.1.
- RTCP SR, RR and report blocks: RFC 3550 §6.4; SDES: §6.5; BYE: §6.6. Any other RTCP packet type
  (APP, RTPFB, PSFB, XR, ...) is kept as ``RtcpUnknown``, not an error.
- Compound RTCP validity checks: RFC 3550 §A.2 (optionally relaxed for RFC 5506 reduced-size).
- RTP/RTCP demultiplexing on one port: RFC 5761 §4 (``is_rtcp``).

Packets are frozen dataclasses; building one with out-of-range fields raises ``RtpError`` (our
bug), parsing junk raises ``RtpParseError`` (the peer's junk) and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeAlias

from softphone.rtp.errors import RtpError, RtpParseError

RTP_VERSION: Final = 2
RTP_HEADER_SIZE: Final = 12
RTCP_HEADER_SIZE: Final = 4
REPORT_BLOCK_SIZE: Final = 24
MAX_COUNT: Final = 31  # the 5-bit RC / SC fields of RTCP headers (RFC 3550 §6.4.1)

_U16: Final = 0xFFFF
_U32: Final = 0xFFFF_FFFF
_U64: Final = 0xFFFF_FFFF_FFFF_FFFF
_FIXED = struct.Struct("!BBHII")  # V P X CC | M PT | sequence | timestamp | SSRC
_RTCP_HEADER = struct.Struct("!BBH")  # V P RC | PT | length (32-bit words - 1)
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC | NTP (64) | RTP timestamp | packets | octets
_REPORT_BLOCK = struct.Struct("!IIIIII")


class RtcpPacketType(IntEnum):
    """RTCP packet types (RFC 3550 §12.1; 205-207 from RFC 4585 and RFC 3611)."""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206
    XR = 207


class SdesItemType(IntEnum):
    """SDES item types (RFC 3550 §6.5, §12.2)."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


def _check_range(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise RtpError(f"{name} must fit in {bits} bits, got {value}")


def _check_count(name: str, count: int) -> None:
    if count > MAX_COUNT:
        raise RtpError(f"at most {MAX_COUNT} {name} fit in one RTCP packet, got {count}")


def _pad4(data: bytes) -> bytes:
    """Zero octets up to the next 32-bit boundary."""
    return data + b"\x00" * (-len(data) % 4)


# --- RTP (RFC 3550 §5.1) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet.

    ``extension_profile`` is None when the X bit is clear; ``extension`` is the extension data
    after its 4-octet header (a multiple of 4 octets, RFC 3550 §5.3.1). ``padding_length`` counts
    every padding octet including the final count octet; 0 means the P bit is clear.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    payload: bytes = b""
    padding_length: int = 0

    def __post_init__(self) -> None:
        _check_range("payload_type", self.payload_type, 7)
        _check_range("sequence", self.sequence, 16)
        _check_range("timestamp", self.timestamp, 32)
        _check_range("ssrc", self.ssrc, 32)
        if len(self.csrcs) > 15:  # the 4-bit CC field
            raise RtpError(f"at most 15 CSRCs fit in an RTP header, got {len(self.csrcs)}")
        for csrc in self.csrcs:
            _check_range("csrc", csrc, 32)
        if self.extension_profile is None:
            if self.extension:
                raise RtpError("extension data needs an extension_profile")
        else:
            _check_range("extension_profile", self.extension_profile, 16)
            if len(self.extension) % 4 or len(self.extension) > 4 * _U16:
                raise RtpError("extension data must be a multiple of 4 octets, at most 65535 words")
        _check_range("padding_length", self.padding_length, 8)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet (RFC 3550 §5.1). Raises only RtpParseError."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpParseError(
                f"RTP packet is too short ({len(data)} bytes, the fixed header is 12)"
            )
        first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version must be 2, not {first >> 6}")
        csrc_count = first & 0x0F
        pos = RTP_HEADER_SIZE + 4 * csrc_count
        if len(data) < pos:
            raise RtpParseError(f"RTP packet is too short for its {csrc_count} CSRCs")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_SIZE)
        extension_profile: int | None = None
        extension = b""
        if first & 0x10:  # §5.3.1: profile (16) | length in 32-bit words (16) | data
            if len(data) < pos + 4:
                raise RtpParseError("RTP packet is too short for its header extension")
            extension_profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpParseError("RTP packet is too short for its header extension")
            extension = bytes(data[pos : pos + 4 * words])
            pos += 4 * words
        end = len(data)
        padding_length = 0
        if first & 0x20:  # §5.1: the last octet counts the padding octets, itself included
            padding_length = data[-1]
            available = len(data) - pos
            if padding_length == 0 or padding_length > available:
                raise RtpParseError(
                    f"RTP padding length {padding_length} is invalid with {available} octets after the header"
                )
            end -= padding_length
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            csrcs=csrcs,
            extension_profile=extension_profile,
            extension=extension,
            payload=bytes(data[pos:end]),
            padding_length=padding_length,
        )

    def __bytes__(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrcs)
        if self.padding_length:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            _FIXED.pack(
                first,
                self.marker << 7 | self.payload_type,
                self.sequence,
                self.timestamp,
                self.ssrc,
            ),
            struct.pack(f"!{len(self.csrcs)}I", *self.csrcs),
        ]
        if self.extension_profile is not None:
            parts.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_length:
            parts.append(b"\x00" * (self.padding_length - 1) + bytes([self.padding_length]))
        return b"".join(parts)


def plain_rtp_bytes(
    *, payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool, payload: bytes
) -> bytes:
    """``bytes(RtpPacket(...))`` for a packet with no CSRC, extension or padding (what a call
    sends 50 times a second), without building the packet: the same checks, the same octets.
    A phone with 80 calls up sends 4,000 of these a second."""
    if not (0 <= payload_type <= 0x7F and 0 <= sequence <= _U16):
        _check_range("payload_type", payload_type, 7)
        _check_range("sequence", sequence, 16)
    if not (0 <= timestamp <= _U32 and 0 <= ssrc <= _U32):
        _check_range("timestamp", timestamp, 32)
        _check_range("ssrc", ssrc, 32)
    # §5.1: V=2, P=0, X=0, CC=0 | M, PT | sequence | timestamp | SSRC
    header = _FIXED.pack(RTP_VERSION << 6, marker << 7 | payload_type, sequence, timestamp, ssrc)
    return header + payload


# --- RTCP (RFC 3550 §6.4-§6.6) -------------------------------------------------------------------
def _rtcp_header(count: int, packet_type: int, body: bytes) -> bytes:
    """Common header (RFC 3550 §6.4.1): length is the packet size in 32-bit words minus one."""
    return _RTCP_HEADER.pack(
        RTP_VERSION << 6 | count, packet_type, (len(body) + RTCP_HEADER_SIZE) // 4 - 1
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1).

    ``fraction_lost`` is the 8-bit fixed-point fraction (lost/expected * 256) since the previous
    report; ``packets_lost`` is the signed 24-bit cumulative count; ``jitter`` is in timestamp
    units; ``lsr`` is the middle 32 bits of the last SR's NTP timestamp and ``dlsr`` the delay
    since then in 1/65536 s (both 0 when no SR was received).
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    def __post_init__(self) -> None:
        _check_range("ssrc", self.ssrc, 32)
        _check_range("fraction_lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.packets_lost < 1 << 23:
            raise RtpError(
                f"packets_lost must fit in a signed 24-bit field, got {self.packets_lost}"
            )
        for name in ("highest_sequence", "jitter", "lsr", "dlsr"):
            _check_range(name, getattr(self, name), 32)

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> RtcpReportBlock:
        ssrc, loss, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = loss & 0xFF_FFFF
        if lost & 0x80_0000:  # two's complement, 24 bits
            lost -= 1 << 24
        return cls(
            ssrc=ssrc,
            fraction_lost=loss >> 24,
            packets_lost=lost,
            highest_sequence=highest,
            jitter=jitter,
            lsr=lsr,
            dlsr=dlsr,
        )

    def __bytes__(self) -> bytes:
        loss = self.fraction_lost << 24 | (self.packets_lost & 0xFF_FFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, loss, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[RtcpReportBlock, ...]:
    return tuple(RtcpReportBlock.parse(body, offset + i * REPORT_BLOCK_SIZE) for i in range(count))


def _check_extension(extension: bytes) -> None:
    if len(extension) % 4:
        raise RtpError("a profile-specific extension must be a multiple of 4 octets")


def _parse_extension(name: str, body: bytes, end: int) -> bytes:
    if (len(body) - end) % 4:
        raise RtpParseError(f"RTCP {name} extension is not a multiple of 4 octets")
    return bytes(body[end:])


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSenderReport:
    """SR (RFC 3550 §6.4.1). ``ntp_timestamp`` is the full 64-bit NTP time (32.32 fixed point)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[RtcpReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific extension, kept opaque

    def __post_init__(self) -> None:
        _check_range("ssrc", self.ssrc, 32)
        _check_range("ntp_timestamp", self.ntp_timestamp, 64)
        for name in ("rtp_timestamp", "packet_count", "octet_count"):
            _check_range(name, getattr(self, name), 32)
        _check_count("report blocks", len(self.reports))
        _check_extension(self.extension)

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpSenderReport:
        if len(body) < _SENDER_INFO.size + count * REPORT_BLOCK_SIZE:
            raise RtpParseError(f"RTCP SR is too short for {count} report blocks")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        end = _SENDER_INFO.size + count * REPORT_BLOCK_SIZE
        return cls(
            ssrc=ssrc,
            ntp_timestamp=ntp,
            rtp_timestamp=rtp_ts,
            packet_count=packets,
            octet_count=octets,
            reports=_parse_blocks(body, _SENDER_INFO.size, count),
            extension=_parse_extension("SR", body, end),
        )

    def __bytes__(self) -> bytes:
        body = b"".join(
            [
                _SENDER_INFO.pack(
                    self.ssrc,
                    self.ntp_timestamp,
                    self.rtp_timestamp,
                    self.packet_count,
                    self.octet_count,
                ),
                *map(bytes, self.reports),
                self.extension,
            ]
        )
        return _rtcp_header(len(self.reports), RtcpPacketType.SR, body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[RtcpReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        _check_range("ssrc", self.ssrc, 32)
        _check_count("report blocks", len(self.reports))
        _check_extension(self.extension)

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpReceiverReport:
        if len(body) < 4 + count * REPORT_BLOCK_SIZE:
            raise RtpParseError(f"RTCP RR is too short for {count} report blocks")
        (ssrc,) = struct.unpack_from("!I", body)
        end = 4 + count * REPORT_BLOCK_SIZE
        return cls(
            ssrc=ssrc,
            reports=_parse_blocks(body, 4, count),
            extension=_parse_extension("RR", body, end),
        )

    def __bytes__(self) -> bytes:
        body = b"".join([struct.pack("!I", self.ssrc), *map(bytes, self.reports), self.extension])
        return _rtcp_header(len(self.reports), RtcpPacketType.RR, body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSdesItem:
    """One SDES item (RFC 3550 §6.5): type, then up to 255 octets of (UTF-8) text."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.type <= 255:
            raise RtpError(f"SDES item type must be 1-255, got {self.type}")
        if len(self.value) > 255:
            raise RtpError(f"SDES item is too long ({len(self.value)} octets, at most 255)")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSdesChunk:
    """The items describing one SSRC/CSRC (RFC 3550 §6.5)."""

    ssrc: int
    items: tuple[RtcpSdesItem, ...] = ()

    def __post_init__(self) -> None:
        _check_range("ssrc", self.ssrc, 32)

    @property
    def cname(self) -> str | None:
        """The CNAME item (RFC 3550 §6.5.1), decoded; None when the chunk has none."""
        for item in self.items:
            if item.type == SdesItemType.CNAME:
                return item.value.decode("utf-8", errors="replace")
        return None

    def __bytes__(self) -> bytes:
        # §6.5: the item list ends with one or more null octets, up to the next 32-bit boundary.
        items = b"".join(bytes([item.type, len(item.value)]) + item.value for item in self.items)
        return _pad4(struct.pack("!I", self.ssrc) + items + b"\x00")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpSourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[RtcpSdesChunk, ...] = ()

    def __post_init__(self) -> None:
        _check_count("SDES chunks", len(self.chunks))

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpSourceDescription:
        chunks: list[RtcpSdesChunk] = []
        pos = 0
        for index in range(count):
            if pos + 4 > len(body):
                raise RtpParseError(f"RTCP SDES chunk {index} is truncated")
            (ssrc,) = struct.unpack_from("!I", body, pos)
            pos += 4
            items: list[RtcpSdesItem] = []
            while True:
                if pos >= len(body):
                    raise RtpParseError(f"RTCP SDES chunk {index} is not terminated")
                item_type = body[pos]
                if item_type == SdesItemType.END:
                    pos = min(len(body), (pos + 4) & ~3)  # skip the null octets to the boundary
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtpParseError(f"RTCP SDES item in chunk {index} is truncated")
                length = body[pos + 1]
                items.append(
                    RtcpSdesItem(type=item_type, value=bytes(body[pos + 2 : pos + 2 + length]))
                )
                pos += 2 + length
            chunks.append(RtcpSdesChunk(ssrc=ssrc, items=tuple(items)))
        return cls(chunks=tuple(chunks))

    def __bytes__(self) -> bytes:
        body = b"".join(map(bytes, self.chunks))
        return _rtcp_header(len(self.chunks), RtcpPacketType.SDES, body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpBye:
    """BYE (RFC 3550 §6.6): the sources leaving, and an optional reason (UTF-8, <= 255 octets)."""

    sources: tuple[int, ...]
    reason: str = ""

    def __post_init__(self) -> None:
        _check_count("BYE sources", len(self.sources))
        for ssrc in self.sources:
            _check_range("ssrc", ssrc, 32)
        if len(self.reason.encode()) > 255:
            raise RtpError("a BYE reason is at most 255 octets")

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpBye:
        if len(body) < 4 * count:
            raise RtpParseError(f"RTCP BYE is too short for {count} sources")
        sources = struct.unpack_from(f"!{count}I", body)
        pos = 4 * count
        reason = ""
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise RtpParseError("RTCP BYE reason overruns the packet")
            raw = body[pos + 1 : pos + 1 + length]
            try:
                reason = raw.decode()
            except UnicodeDecodeError:  # keep what is readable; never longer than the original
                reason = raw.decode("utf-8", errors="ignore")
        return cls(sources=sources, reason=reason)

    def __bytes__(self) -> bytes:
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            text = self.reason.encode()
            body = _pad4(body + bytes([len(text)]) + text)
        return _rtcp_header(len(self.sources), RtcpPacketType.BYE, body) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpUnknown:
    """Any other RTCP packet (APP, RTPFB, PSFB, XR, ...), kept as its header fields and body."""

    packet_type: int
    count: int
    body: bytes

    def __post_init__(self) -> None:
        _check_range("packet_type", self.packet_type, 8)
        _check_range("count", self.count, 5)
        if len(self.body) % 4 or len(self.body) > 4 * _U16:
            raise RtpError(
                "an RTCP packet body must be a multiple of 4 octets, at most 65535 words"
            )

    def __bytes__(self) -> bytes:
        return _rtcp_header(self.count, self.packet_type, self.body) + self.body


RtcpPacket: TypeAlias = (
    RtcpSenderReport | RtcpReceiverReport | RtcpSourceDescription | RtcpBye | RtcpUnknown
)


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RtcpPacketType.SR:
        return RtcpSenderReport.parse_body(count, body)
    if packet_type == RtcpPacketType.RR:
        return RtcpReceiverReport.parse_body(count, body)
    if packet_type == RtcpPacketType.SDES:
        return RtcpSourceDescription.parse_body(count, body)
    if packet_type == RtcpPacketType.BYE:
        return RtcpBye.parse_body(count, body)
    return RtcpUnknown(packet_type=packet_type, count=count, body=_pad4(body))


def parse_rtcp(data: bytes, *, reduced_size: bool = False) -> list[RtcpPacket]:
    """Parse a compound RTCP packet with the validity checks of RFC 3550 §A.2.

    Version 2 everywhere; the first packet is an SR or RR (unless ``reduced_size``, RFC 5506 §3.1,
    was negotiated); only the last packet may carry padding; the length fields add up to the
    datagram. Padding is removed: ``bytes()`` of the result is the unpadded compound.
    Raises only RtpParseError.
    """
    if len(data) < RTCP_HEADER_SIZE:
        raise RtpParseError(f"RTCP packet is too short ({len(data)} bytes)")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < RTCP_HEADER_SIZE:
            raise RtpParseError(f"RTCP packet at offset {pos} is truncated")
        first, packet_type, length = _RTCP_HEADER.unpack_from(data, pos)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTCP version must be 2, not {first >> 6} (offset {pos})")
        if (
            pos == 0
            and not reduced_size
            and packet_type not in (RtcpPacketType.SR, RtcpPacketType.RR)
        ):
            raise RtpParseError(
                f"a compound RTCP packet must start with SR or RR, not type {packet_type}"
            )
        end = pos + 4 * (length + 1)
        if end > len(data):
            raise RtpParseError(f"RTCP length field overruns the datagram (offset {pos})")
        body = data[pos + RTCP_HEADER_SIZE : end]
        if first & 0x20:
            if end != len(data):
                raise RtpParseError(
                    f"RTCP padding is allowed only on the last packet (offset {pos})"
                )
            padding = body[-1] if body else 0
            if padding == 0 or padding > len(body):
                raise RtpParseError(f"RTCP padding length {padding} is invalid (offset {pos})")
            body = body[:-padding]
        packets.append(_parse_one(packet_type, first & 0x1F, bytes(body)))
        pos = end
    return packets


def is_rtcp(data: bytes) -> bool:
    """RTP/RTCP demultiplexing on one port (RFC 5761 §4).

    RTCP packet types 192-223 occupy the octet where RTP has the marker bit and a payload type of
    64-95, which is why those payload types must not be used with rtcp-mux.
    """
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223
