"""H.264 depacketiser (RFC 6184) and the NAL-unit machinery shared with H.265 (sans-IO).

Packets -> NAL units (RFC 6184 §5.6 single NAL unit, §5.7.1 STAP-A, §5.8 FU-A; packetization-mode
0 and 1, §6.2-§6.3) -> access units -> Annex-B (ITU-T H.264 Annex B, 4-byte start codes).

Access units (RFC 6184 §5.1): all NAL units with one RTP timestamp. A unit ends at the marker bit
or, for cameras that never set it, when the timestamp changes. A unit made only of parameter sets,
SEI or delimiters (cameras that put SPS/PPS under their own timestamp or marker) is carried into
the next unit instead of coming out alone.

Key frames and loss: a unit is a key frame when it holds an IDR slice (H.264) / IRAP (H.265). At
the start and after any damage (``lost_before`` > 0, an FU that never ends, a malformed STAP),
nothing comes out until a key frame whose parameter sets are known (``waiting_for_keyframe``).
A unit whose first slice is not the first of its picture (first_mb_in_slice != 0: we joined in
the middle of a picture, or its first packets are gone) is dropped the same way.

Parameter sets: from ``sprop-parameter-sets`` (RFC 6184 §8.1; invalid base64 or non-SPS/PPS
content is ignored and the in-band ones are waited for) and from the stream; kept per id and put
in band before every key frame (after an access unit delimiter if there is one), so a decoder can
start at any key frame.

Camera quirks handled here (seen in the field):
- Annex-B start codes inside single-NAL, STAP-A and FU-A payloads and inside sprop: split.
- FU with both S and E set: a complete NAL unit. Empty FU fragments: nothing to append.
- FU reserved bit set: ignored. NAL type changing between FU fragments: the unit is dropped.
- Marker bit never set: units split by timestamp change. Marker or timestamp change after
  SPS/PPS/SEI: carried into the next unit.
- A stray trailing byte after the SPS: only the id at its start is parsed; it is passed on as is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from softphone.rtp.depacketize import AccessUnit, BitReader, UnsupportedCodec

if TYPE_CHECKING:  # the RTP packet module loads with the RTP session, after PLAY
    from softphone.rtp.packet import RtpPacket

START_CODE: Final = b"\x00\x00\x00\x01"
MAX_ACCESS_UNIT_BYTES: Final = 16 << 20  # a 4K intra frame is a few MB; more is junk
MAX_CARRIED_NALS: Final = 16  # non-VCL units held for the next picture

# H.264 NAL unit types (ITU-T H.264 Table 7-1) and RTP payload structures (RFC 6184 §5.4).
NAL_IDR: Final = 5
NAL_SEI: Final = 6
NAL_SPS: Final = 7
NAL_PPS: Final = 8
NAL_AUD: Final = 9
STAP_A: Final = 24
STAP_B: Final = 25
MTAP16: Final = 26
MTAP24: Final = 27
FU_A: Final = 28
FU_B: Final = 29


def split_annex_b(nal: bytes) -> list[bytes]:
    """The NAL units in ``nal``: itself, or the pieces between Annex-B start codes when a sender
    wrongly left them in (emulation prevention keeps 00 00 01 out of a real NAL unit, H.264
    §7.4.1). Zero bytes before a start code (4-byte codes, trailing_zero_8bits) are dropped."""
    if b"\x00\x00\x01" not in nal:
        return [nal] if nal else []
    pieces = (piece.rstrip(b"\x00") for piece in nal.split(b"\x00\x00\x01"))
    return [piece for piece in pieces if piece]


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00, H.264 §7.4.1)."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def decode_sprop(text: str) -> list[bytes] | None:
    """Comma-separated base64 NAL units (RFC 6184 §8.1 sprop-parameter-sets, RFC 7798 §7.1
    sprop-vps/sps/pps), start codes inside split. None when any of it is not base64."""
    nals: list[bytes] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            raw = base64.b64decode(item + "=" * (-len(item) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
        nals.extend(split_annex_b(raw))
    return nals


class NalDepacketizer:
    """Access-unit assembly, loss handling and parameter sets for NAL-unit codecs.

    Subclasses give the NAL header layout and the RTP payload structures (``_unpack``).
    Counters: ``dropped_units`` (access units not output: damaged, or waiting for a key frame).
    """

    codec: ClassVar[str]
    header_size: ClassVar[int]
    parameter_set_types: ClassVar[tuple[int, ...]]  # in the order they go before a key frame
    delimiter_type: ClassVar[int]  # the access unit delimiter, which stays first

    def __init__(self, parameter_sets: Iterable[bytes] = ()) -> None:
        self._params: dict[int, dict[int, bytes]] = {t: {} for t in self.parameter_set_types}
        for nal in parameter_sets:
            if nal and not nal[0] & 0x80 and self.nal_type(nal) in self._params:
                self._store_parameter_set(nal)
        self._nals: list[bytes] = []
        self._size = 0
        self._au_ts: int | None = None
        self._has_vcl = False
        self._clean_start = False
        self._keyframe = False
        self._carried: list[bytes] = []
        self._damaged_ts: int | None = None
        self._fragment: bytearray | None = None
        self._fragment_type = -1
        self._waiting = True
        self.dropped_units = 0

    # --- codec hooks -----------------------------------------------------------------------
    def nal_type(self, nal: bytes) -> int:
        raise NotImplementedError

    def is_vcl(self, nal_type: int) -> bool:
        raise NotImplementedError

    def is_keyframe(self, nal_type: int) -> bool:
        raise NotImplementedError

    def starts_picture(self, nal: bytes) -> bool:
        """Whether this VCL NAL unit is the first slice of its picture."""
        raise NotImplementedError

    def parameter_set_id(self, nal: bytes) -> int:
        """The id of a parameter set (raises EOFError when truncated)."""
        raise NotImplementedError

    def _unpack(self, payload: bytes) -> list[bytes] | None:
        """The complete NAL units in one RTP payload; None when it shows damage."""
        raise NotImplementedError

    # --- Depacketizer ----------------------------------------------------------------------
    @property
    def extradata(self) -> bytes | None:
        if not self._have_parameter_sets():
            return None
        return b"".join(START_CODE + nal for nal in self._parameter_sets())

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        ts = packet.timestamp
        if lost_before > 0:
            partial_ts = self._au_ts
            self._discard()
            if partial_ts == ts:  # the lost packets were part of this very access unit
                self._damaged_ts = ts
        if self._damaged_ts is not None and self._damaged_ts != ts:
            self._damaged_ts = None
        if self._au_ts is not None and self._au_ts != ts:  # RFC 6184 §5.1: new timestamp
            if self._fragment is not None:  # its last FU fragment never came
                self._discard()
            else:
                out.extend(self._finish())
        if self._damaged_ts == ts:
            if packet.marker:
                self._damaged_ts = None
            return out
        self._au_ts = ts
        nals = self._unpack(packet.payload)
        if nals is None:
            self._damage(ts, packet.marker)
            return out
        for nal in nals:
            for piece in split_annex_b(nal):
                if not self._add(piece):
                    self._damage(ts, packet.marker)
                    return out
        if packet.marker:  # RFC 6184 §5.1: the last packet of the access unit
            if self._fragment is not None:
                self._damage(ts, marker=True)
            else:
                out.extend(self._finish())
        return out

    def flush(self) -> list[AccessUnit]:
        if self._fragment is not None:
            self._discard()
            return []
        return self._finish()

    # --- internals -------------------------------------------------------------------------
    def _fragment_unit(
        self, *, start: bool, end: bool, nal_type: int, header: bytes, data: bytes
    ) -> list[bytes] | None:
        """One fragment of a fragmented NAL unit (RFC 6184 §5.8 FU-A, RFC 7798 §4.4.3 FU)."""
        if start:
            if self._fragment is not None:  # the previous one never ended
                return None
            self._fragment = bytearray(header)
            self._fragment_type = nal_type
        elif self._fragment is None or nal_type != self._fragment_type:
            return None  # its start is missing, or the type changed mid-unit
        self._fragment += data
        if len(self._fragment) > MAX_ACCESS_UNIT_BYTES:
            return None
        if not end:
            return []
        nal = bytes(self._fragment)
        self._fragment = None
        return [nal]

    def _add(self, nal: bytes) -> bool:
        if len(nal) < self.header_size:
            return True
        nal_type = self.nal_type(nal)
        if nal_type in self._params:
            self._store_parameter_set(nal)
        if self.is_vcl(nal_type):
            if not self._has_vcl:
                self._clean_start = self.starts_picture(nal)
                self._has_vcl = True
            self._keyframe = self._keyframe or self.is_keyframe(nal_type)
        self._nals.append(nal)
        self._size += len(nal)
        return self._size <= MAX_ACCESS_UNIT_BYTES

    def _store_parameter_set(self, nal: bytes) -> None:
        try:
            ps_id = self.parameter_set_id(nal)
        except EOFError:
            return
        self._params[self.nal_type(nal)][ps_id] = nal

    def _have_parameter_sets(self) -> bool:
        return all(self._params.values())

    def _parameter_sets(self) -> list[bytes]:
        return [nal for t in self.parameter_set_types for nal in self._params[t].values()]

    def _reset_unit(self) -> None:
        self._nals = []
        self._size = 0
        self._au_ts = None
        self._has_vcl = False
        self._clean_start = False
        self._keyframe = False
        self._fragment = None

    def _discard(self) -> None:
        """Drop the unit being assembled; wait for a key frame."""
        if self._has_vcl or self._fragment is not None:
            self.dropped_units += 1
        self._reset_unit()
        self._carried = []
        self._waiting = True

    def _damage(self, ts: int, marker: bool) -> None:
        """This unit is broken: drop it and the rest of its packets (up to its marker)."""
        if not (self._has_vcl or self._fragment is not None):
            self.dropped_units += 1  # nothing of it assembled yet; _discard would not count it
        self._discard()
        self._damaged_ts = None if marker else ts

    def _finish(self) -> list[AccessUnit]:
        nals, ts = self._nals, self._au_ts
        has_vcl, clean, keyframe = self._has_vcl, self._clean_start, self._keyframe
        self._reset_unit()
        if ts is None or not nals:
            return []
        if not has_vcl:  # SPS/PPS/SEI on their own: they belong to the next picture
            self._carried = (self._carried + nals)[-MAX_CARRIED_NALS:]
            return []
        carried, self._carried = self._carried, []
        if not clean:  # its first slices are missing
            self._waiting = True
            self.dropped_units += 1
            return []
        if self._waiting:
            if not (keyframe and self._have_parameter_sets()):
                self.dropped_units += 1
                return []
            self._waiting = False
        data = self._annex_b(carried + nals, keyframe=keyframe)
        return [AccessUnit(data=data, timestamp=ts, keyframe=keyframe, codec=self.codec)]

    def _annex_b(self, nals: list[bytes], *, keyframe: bool) -> bytes:
        if keyframe:  # parameter sets in band before every key frame, after a delimiter
            body = [n for n in nals if self.nal_type(n) not in self._params]
            lead = [body.pop(0)] if body and self.nal_type(body[0]) == self.delimiter_type else []
            nals = lead + self._parameter_sets() + body
        return b"".join(START_CODE + nal for nal in nals)


class H264Depacketizer(NalDepacketizer):
    """RFC 6184 packetization-mode 0 and 1 (single NAL unit, STAP-A, FU-A)."""

    codec = "h264"
    header_size = 1
    parameter_set_types = (NAL_SPS, NAL_PPS)
    delimiter_type = NAL_AUD

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> H264Depacketizer:
        mode = fmtp.get("packetization-mode", "") or "0"
        if mode not in ("0", "1"):  # mode 2 (interleaved, STAP-B/MTAP/FU-B) needs DON ordering
            raise UnsupportedCodec("H264", f"packetization-mode={mode}")
        return cls(decode_sprop(fmtp.get("sprop-parameter-sets", "")) or ())

    def nal_type(self, nal: bytes) -> int:
        return nal[0] & 0x1F  # H.264 §7.3.1: forbidden_zero_bit, nal_ref_idc, nal_unit_type

    def is_vcl(self, nal_type: int) -> bool:
        return 1 <= nal_type <= NAL_IDR

    def is_keyframe(self, nal_type: int) -> bool:
        return nal_type == NAL_IDR

    def starts_picture(self, nal: bytes) -> bool:
        # H.264 §7.3.3: first_mb_in_slice ue(v) comes first; ue(v) == 0 is the single bit 1.
        return len(nal) > 1 and bool(nal[1] & 0x80)

    def parameter_set_id(self, nal: bytes) -> int:
        rbsp = unescape_rbsp(nal[1:16])
        reader = BitReader(rbsp)
        if self.nal_type(nal) == NAL_SPS:
            reader.skip(24)  # H.264 §7.3.2.1.1: profile_idc, constraint flags, level_idc
        return reader.ue()  # seq_parameter_set_id / pic_parameter_set_id

    def _unpack(self, payload: bytes) -> list[bytes] | None:
        if not payload:
            return []
        if payload.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
            return [payload]  # quirk: Annex-B where a NAL unit belongs; split by the caller
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:  # RFC 6184 §5.6: single NAL unit packet
            return [payload]
        if kind == STAP_A:  # §5.7.1: (16-bit size, NAL unit)*
            return aggregated_units(payload, 1, donl=False)
        if kind == FU_A:  # §5.8: FU indicator, FU header (S E R Type), fragment
            if len(payload) < 2:
                return None
            fu_header = payload[1]
            nal_type = fu_header & 0x1F  # the R bit (0x20) is ignored: cameras set it
            return self._fragment_unit(
                start=bool(fu_header & 0x80),
                end=bool(fu_header & 0x40),
                nal_type=nal_type,
                header=bytes([payload[0] & 0xE0 | nal_type]),
                data=payload[2:],
            )
        if kind in (STAP_B, MTAP16, MTAP24, FU_B):  # interleaved mode only: data we can't place
            return None
        return []  # 0, 30, 31: unspecified (§5.4), ignored


def aggregated_units(payload: bytes, pos: int, *, donl: bool) -> list[bytes] | None:
    """Units of an aggregation packet: RFC 6184 §5.7.1 STAP-A (16-bit size + NAL unit)*, or
    RFC 7798 §4.4.2 AP (with DONL before the first and DOND before each next when ``donl``)."""
    nals: list[bytes] = []
    if donl:
        pos += 2
    while len(payload) - pos >= 2:  # a stray padding byte at the end is ignored
        size = int.from_bytes(payload[pos : pos + 2], "big")
        pos += 2
        if pos + size > len(payload):
            return None
        if size:
            nals.append(payload[pos : pos + size])
        pos += size + (1 if donl else 0)
    return nals
