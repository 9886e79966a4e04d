"""H.265 / HEVC depacketiser (RFC 7798), sans-IO.

Payload structures (RFC 7798 §4.4): single NAL unit packets (§4.4.1), aggregation packets (AP,
type 48, §4.4.2), fragmentation units (FU, type 49, §4.4.3); PACI packets (type 50, §4.4.4) are
skipped. DONL/DOND fields are present when ``sprop-max-don-diff`` > 0 or
``sprop-depack-buf-nalus`` > 0 (§7.1) and are skipped: units are taken in transmission order.

Access units, loss, key frames and parameter sets follow the H.264 depacketiser (h264.py's
NalDepacketizer): key frame = an IRAP picture (NAL types 16-21, H.265 §7.4.2.2); VPS, SPS and PPS
come from ``sprop-vps``/``sprop-sps``/``sprop-pps`` (§7.1) and the stream, and go in band before
every key frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from softphone.rtp.depacketize import BitReader
from softphone.rtp.depacketize.h264 import (
    NalDepacketizer,
    aggregated_units,
    decode_sprop,
    unescape_rbsp,
)

# H.265 NAL unit types (ITU-T H.265 Table 7-1) and RTP payload types (RFC 7798 §4.4).
IRAP_FIRST: Final = 16  # BLA_W_LP
IRAP_LAST: Final = 21  # CRA_NUT
NAL_VPS: Final = 32
NAL_SPS: Final = 33
NAL_PPS: Final = 34
NAL_AUD: Final = 35
AP: Final = 48
FU: Final = 49
PACI: Final = 50


class H265Depacketizer(NalDepacketizer):
    """RFC 7798 single-stream transmission (SRST)."""

    codec = "hevc"
    header_size = 2
    parameter_set_types = (NAL_VPS, NAL_SPS, NAL_PPS)
    delimiter_type = NAL_AUD

    def __init__(self, parameter_sets: Iterable[bytes] = (), *, donl: bool = False) -> None:
        super().__init__(parameter_sets)
        self.donl = donl

    @classmethod
    def from_sdp(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> H265Depacketizer:
        sets: list[bytes] = []
        for name in ("sprop-vps", "sprop-sps", "sprop-pps"):
            sets.extend(decode_sprop(fmtp.get(name, "")) or ())
        donl = any(
            _int(fmtp.get(name, "")) > 0
            for name in ("sprop-max-don-diff", "sprop-depack-buf-nalus")
        )
        return cls(sets, donl=donl)

    def nal_type(self, nal: bytes) -> int:
        return (nal[0] >> 1) & 0x3F  # H.265 §7.3.1.2: F(1) Type(6) LayerId(6) TID(3)

    def is_vcl(self, nal_type: int) -> bool:
        return nal_type < NAL_VPS

    def is_keyframe(self, nal_type: int) -> bool:
        return IRAP_FIRST <= nal_type <= IRAP_LAST

    def starts_picture(self, nal: bytes) -> bool:
        # H.265 §7.3.6.1: first_slice_segment_in_pic_flag is the first bit of the slice header.
        return len(nal) > 2 and bool(nal[2] & 0x80)

    def parameter_set_id(self, nal: bytes) -> int:
        reader = BitReader(unescape_rbsp(nal[2:40]))
        nal_type = self.nal_type(nal)
        if nal_type == NAL_VPS:
            return reader.u(4)  # §7.3.2.1 vps_video_parameter_set_id
        if nal_type == NAL_PPS:
            return reader.ue()  # §7.3.2.3.1 pps_pic_parameter_set_id
        # §7.3.2.2.1: sps_video_parameter_set_id u(4), sps_max_sub_layers_minus1 u(3),
        # sps_temporal_id_nesting_flag u(1), profile_tier_level(1, max_sub_layers_minus1), id.
        reader.skip(4)
        sub_layers = reader.u(3)
        reader.skip(1)
        reader.skip(88 + 8)  # §7.3.3: general profile (88 bits) and general_level_idc
        present = [(reader.u(1), reader.u(1)) for _ in range(sub_layers)]
        if sub_layers:
            reader.skip(2 * (8 - sub_layers))  # reserved_zero_2bits
        for profile_present, level_present in present:
            reader.skip(88 * profile_present + 8 * level_present)
        return reader.ue()  # sps_seq_parameter_set_id

    def _unpack(self, payload: bytes) -> list[bytes] | None:
        if len(payload) < 2:
            return [] if not payload else None
        if payload.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
            return [payload]  # quirk: Annex-B where a NAL unit belongs; split by the caller
        kind = self.nal_type(payload)
        if kind < AP:  # §4.4.1 single NAL unit packet
            return [payload]
        if kind == AP:  # §4.4.2
            return aggregated_units(payload, 2, donl=self.donl)
        if kind == FU:  # §4.4.3: payload header, FU header (S E FuType), [DONL], fragment
            if len(payload) < 3:
                return None
            fu_header = payload[2]
            start = bool(fu_header & 0x80)
            nal_type = fu_header & 0x3F
            return self._fragment_unit(
                start=start,
                end=bool(fu_header & 0x40),
                nal_type=nal_type,
                header=bytes([payload[0] & 0x81 | nal_type << 1, payload[1]]),
                data=payload[5 if start and self.donl else 3 :],
            )
        return []  # PACI (§4.4.4) and unspecified types (51-63) are skipped


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
