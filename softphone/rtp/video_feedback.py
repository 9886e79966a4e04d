"""RTCP feedback for video: NACK, PLI, FIR, TMMBR/TMMBN and REMB, built and parsed (sans-IO).

- Generic NACK (RFC 4585 §6.2.1): RTPFB, FMT 1; FCI entries of a packet id (PID) and a bitmask
  of the 16 sequence numbers after it (BLP) that are lost too.
- TMMBR / TMMBN (RFC 5104 §4.2.1, §4.2.2): RTPFB, FMT 3 / 4; per SSRC a maximum bitrate
  (exponent 6 bits, mantissa 17) and the per-packet overhead it counts (9 bits).
- PLI (RFC 4585 §6.3.1): PSFB, FMT 1, no FCI.
- FIR (RFC 5104 §4.3.1): PSFB, FMT 4, media source SSRC 0; FCI entries of the SSRC asked for a
  key frame and a command sequence number (a new number for a new request, §4.3.1.1).
- REMB (draft-alvestrand-rmcat-remb-03 §2.2): PSFB, FMT 15 (application layer feedback), media
  source SSRC 0; FCI "REMB", the SSRC count, the bitrate (exponent 6 bits, mantissa 18) and the
  SSRCs it applies to.

rtp/packet.py keeps RTPFB (205) and PSFB (206) packets as ``RtcpUnknown`` (the FMT in ``count``);
:func:`parse_feedback` reads one of those; :meth:`to_rtcp` gives one to put in a compound
packet, ``bytes()`` the packet alone. Contract: :func:`parse_feedback` raises only
:class:`FeedbackError` (an RtpParseError) and returns None for a packet that is not feedback
or feedback we do not know (RFC 4585 §6.1: ignore unknown FMTs).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from softphone.rtp.errors import RtpError, RtpParseError
from softphone.rtp.packet import RtcpPacket, RtcpPacketType, RtcpUnknown

NACK_FMT: Final = 1  # RTPFB
TMMBR_FMT: Final = 3  # RTPFB
TMMBN_FMT: Final = 4  # RTPFB
PLI_FMT: Final = 1  # PSFB
FIR_FMT: Final = 4  # PSFB
AFB_FMT: Final = 15  # PSFB: application layer feedback (REMB)
REMB_ID: Final = b"REMB"
MAX_NACK_ENTRIES: Final = 64  # 64 x 17 sequence numbers: far beyond what a NACK list should say

_SSRCS: Final = struct.Struct("!II")  # sender SSRC, media source SSRC (RFC 4585 §6.1)
_U32: Final = 0xFFFF_FFFF


class FeedbackError(RtpParseError):
    """A transport- or payload-specific feedback packet that does not parse."""


def _check_ssrc(name: str, value: int) -> None:
    if not 0 <= value <= _U32:
        raise RtpError(f"{name} {value} is not a 32-bit SSRC")


def _encode_bitrate(bitrate: int, mantissa_bits: int) -> tuple[int, int]:
    """(exponent, mantissa) with mantissa << exponent <= bitrate, as close as the bits allow
    (RFC 5104 §4.2.1.1: round down, never ask for more than meant)."""
    if bitrate < 0:
        raise RtpError(f"negative bitrate {bitrate}")
    exponent = max(0, bitrate.bit_length() - mantissa_bits)
    if exponent > 63:
        raise RtpError(f"bitrate {bitrate} does not fit the feedback field")
    return exponent, bitrate >> exponent


@dataclass(frozen=True, slots=True)
class Nack:
    """Generic NACK (RFC 4585 §6.2.1): the sequence numbers ``lost`` of ``media_ssrc``."""

    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]

    def to_rtcp(self) -> RtcpUnknown:
        _check_ssrc("sender_ssrc", self.sender_ssrc)
        _check_ssrc("media_ssrc", self.media_ssrc)
        body = _SSRCS.pack(self.sender_ssrc, self.media_ssrc)
        for pid, blp in nack_entries(self.lost):
            body += struct.pack("!HH", pid, blp)
        return RtcpUnknown(packet_type=RtcpPacketType.RTPFB, count=NACK_FMT, body=body)

    def __bytes__(self) -> bytes:
        return bytes(self.to_rtcp())


def nack_entries(lost: Iterable[int]) -> list[tuple[int, int]]:
    """(PID, BLP) entries for sequence numbers (RFC 4585 §6.2.1): each entry covers its PID and
    the 16 after it (bit i of BLP: PID + i + 1 is lost). The numbers are sorted in sequence order
    around the first one given (modulo 2^16, as far as 32,767 either side), duplicates merged.
    Raises RtpError beyond MAX_NACK_ENTRIES entries."""
    seqs = list(dict.fromkeys(seq & 0xFFFF for seq in lost))
    if not seqs:
        return []
    first = seqs[0]
    seqs.sort(key=lambda seq: ((seq - first + 0x8000) & 0xFFFF) - 0x8000)
    entries: list[list[int]] = []
    for seq in seqs:
        offset = (seq - entries[-1][0]) & 0xFFFF if entries else 0
        if entries and 1 <= offset <= 16:
            entries[-1][1] |= 1 << (offset - 1)
        else:
            entries.append([seq, 0])
    if len(entries) > MAX_NACK_ENTRIES:
        raise RtpError(f"{len(entries)} NACK entries; ask for a key frame instead")
    return [(pid, blp) for pid, blp in entries]


@dataclass(frozen=True, slots=True)
class TmmbrEntry:
    """One SSRC's limit in a TMMBR or TMMBN (RFC 5104 §4.2.1.1)."""

    ssrc: int
    bitrate: int  # bits per second (rounded down to what the field holds)
    overhead: int  # bytes per packet the bitrate counts (IP/UDP/RTP headers), 0-511


@dataclass(frozen=True, slots=True)
class Tmmbr:
    """Temporary Maximum Media Stream Bit Rate Request (``notification`` False, RFC 5104
    §4.2.1) or its Notification (True, §4.2.2)."""

    sender_ssrc: int
    entries: tuple[TmmbrEntry, ...]
    notification: bool = False

    def to_rtcp(self) -> RtcpUnknown:
        _check_ssrc("sender_ssrc", self.sender_ssrc)
        body = _SSRCS.pack(self.sender_ssrc, 0)  # §4.2.1.2: media source SSRC is 0
        for entry in self.entries:
            _check_ssrc("ssrc", entry.ssrc)
            if not 0 <= entry.overhead < 512:
                raise RtpError(f"TMMBR overhead {entry.overhead} is not 0-511")
            exponent, mantissa = _encode_bitrate(entry.bitrate, 17)
            word = exponent << 26 | mantissa << 9 | entry.overhead
            body += struct.pack("!II", entry.ssrc, word)
        fmt = TMMBN_FMT if self.notification else TMMBR_FMT
        return RtcpUnknown(packet_type=RtcpPacketType.RTPFB, count=fmt, body=body)

    def __bytes__(self) -> bytes:
        return bytes(self.to_rtcp())


@dataclass(frozen=True, slots=True)
class Pli:
    """Picture Loss Indication (RFC 4585 §6.3.1): ``media_ssrc``, send a key frame."""

    sender_ssrc: int
    media_ssrc: int

    def to_rtcp(self) -> RtcpUnknown:
        _check_ssrc("sender_ssrc", self.sender_ssrc)
        _check_ssrc("media_ssrc", self.media_ssrc)
        body = _SSRCS.pack(self.sender_ssrc, self.media_ssrc)
        return RtcpUnknown(packet_type=RtcpPacketType.PSFB, count=PLI_FMT, body=body)

    def __bytes__(self) -> bytes:
        return bytes(self.to_rtcp())


@dataclass(frozen=True, slots=True)
class Fir:
    """Full Intra Request (RFC 5104 §4.3.1): (SSRC, command sequence number) entries."""

    sender_ssrc: int
    entries: tuple[tuple[int, int], ...]

    def to_rtcp(self) -> RtcpUnknown:
        _check_ssrc("sender_ssrc", self.sender_ssrc)
        body = _SSRCS.pack(self.sender_ssrc, 0)  # §4.3.1.2: media source SSRC is 0
        for ssrc, seq in self.entries:
            _check_ssrc("ssrc", ssrc)
            body += struct.pack("!IB3x", ssrc, seq & 0xFF)
        return RtcpUnknown(packet_type=RtcpPacketType.PSFB, count=FIR_FMT, body=body)

    def __bytes__(self) -> bytes:
        return bytes(self.to_rtcp())


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb §2.2): what the
    receiver estimates the path carries, for the streams ``ssrcs``."""

    sender_ssrc: int
    bitrate: int  # bits per second (rounded down to what the field holds)
    ssrcs: tuple[int, ...]

    def to_rtcp(self) -> RtcpUnknown:
        _check_ssrc("sender_ssrc", self.sender_ssrc)
        if len(self.ssrcs) > 255:
            raise RtpError(f"REMB for {len(self.ssrcs)} SSRCs (at most 255)")
        exponent, mantissa = _encode_bitrate(self.bitrate, 18)
        body = _SSRCS.pack(self.sender_ssrc, 0) + REMB_ID
        body += struct.pack(
            "!BBH", len(self.ssrcs), exponent << 2 | mantissa >> 16, mantissa & 0xFFFF
        )
        for ssrc in self.ssrcs:
            _check_ssrc("ssrc", ssrc)
            body += struct.pack("!I", ssrc)
        return RtcpUnknown(packet_type=RtcpPacketType.PSFB, count=AFB_FMT, body=body)

    def __bytes__(self) -> bytes:
        return bytes(self.to_rtcp())


Feedback: TypeAlias = Nack | Tmmbr | Pli | Fir | Remb


def parse_feedback(packet: RtcpPacket) -> Feedback | None:
    """The feedback ``packet`` (one packet of a compound parsed by rtp.packet.parse_rtcp) holds;
    None for other RTCP packets and for FMTs we do not know. Raises FeedbackError when a known
    FMT is malformed (too short, a length that does not fit its FCI)."""
    if not isinstance(packet, RtcpUnknown):
        return None
    body, fmt = packet.body, packet.count
    if packet.packet_type not in (RtcpPacketType.RTPFB, RtcpPacketType.PSFB):
        return None
    if len(body) < _SSRCS.size:
        raise FeedbackError(f"feedback packet of {len(body)} bytes has no SSRCs")
    sender, media = _SSRCS.unpack_from(body)
    fci = body[_SSRCS.size :]
    if packet.packet_type == RtcpPacketType.RTPFB:
        if fmt == NACK_FMT:
            return Nack(sender, media, _parse_nack(fci))
        if fmt in (TMMBR_FMT, TMMBN_FMT):
            return Tmmbr(sender, _parse_tmmbr(fci), notification=fmt == TMMBN_FMT)
        return None
    if fmt == PLI_FMT:
        return Pli(sender, media)  # §6.3.1: no FCI; trailing words are ignored
    if fmt == FIR_FMT:
        if len(fci) % 8 or not fci:
            raise FeedbackError(f"FIR with {len(fci)} bytes of FCI (8 per entry)")
        entries = tuple(
            (ssrc, seq)
            for ssrc, seq in (struct.unpack_from("!IB", fci, i) for i in range(0, len(fci), 8))
        )
        return Fir(sender, entries)
    if fmt == AFB_FMT and fci[:4] == REMB_ID:
        return _parse_remb(sender, fci)
    return None


def _parse_nack(fci: bytes) -> tuple[int, ...]:
    if len(fci) % 4 or not fci:
        raise FeedbackError(f"NACK with {len(fci)} bytes of FCI (4 per entry)")
    if len(fci) // 4 > MAX_NACK_ENTRIES:
        raise FeedbackError(f"NACK with {len(fci) // 4} entries")
    lost: list[int] = []
    for pos in range(0, len(fci), 4):
        pid, blp = struct.unpack_from("!HH", fci, pos)
        lost.append(pid)
        lost.extend((pid + i + 1) & 0xFFFF for i in range(16) if blp >> i & 1)
    return tuple(dict.fromkeys(lost))


def _parse_tmmbr(fci: bytes) -> tuple[TmmbrEntry, ...]:
    if len(fci) % 8:
        raise FeedbackError(f"TMMBR/TMMBN with {len(fci)} bytes of FCI (8 per entry)")
    entries = []
    for pos in range(0, len(fci), 8):
        ssrc, word = struct.unpack_from("!II", fci, pos)
        bitrate = (word >> 9 & 0x1FFFF) << (word >> 26)
        entries.append(TmmbrEntry(ssrc, bitrate, word & 0x1FF))
    return tuple(entries)


def _parse_remb(sender: int, fci: bytes) -> Remb:
    if len(fci) < 8:
        raise FeedbackError("REMB shorter than its bitrate field")
    count, byte, low = struct.unpack_from("!BBH", fci, 4)
    if len(fci) < 8 + 4 * count:
        raise FeedbackError(f"REMB for {count} SSRCs has room for {(len(fci) - 8) // 4}")
    bitrate = ((byte & 3) << 16 | low) << (byte >> 2)
    ssrcs = struct.unpack_from(f"!{count}I", fci, 8)
    return Remb(sender, bitrate, tuple(ssrcs))
