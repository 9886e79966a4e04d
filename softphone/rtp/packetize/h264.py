"""H.264 packetiser (RFC 6184), packetization-mode 0 and 1 (sans-IO).

An Annex-B access unit is split into NAL units at its start codes, then:

- mode 1 (non-interleaved, RFC 6184 §6.3): a NAL unit that fits goes out alone (§5.6); runs of
  small ones (SPS, PPS, SEI before a key frame) share a STAP-A (§5.7.1); one too big for a
  packet is cut into FU-A fragments (§5.8), as even as the budget allows;
- mode 0 (single NAL unit, §6.2): one NAL unit per packet; one that does not fit is a
  PacketizeError (the encoder must be told to cut slices, x264's ``slice-max-size``).

The marker is set on the last packet of the access unit (§5.1).
"""

from __future__ import annotations

import struct
from typing import Final

from softphone.rtp.depacketize.h264 import FU_A, STAP_A, split_annex_b
from softphone.rtp.packetize import PacketizeError, RtpPayload, even_chunks, mark_last

FU_HEADER_SIZE: Final = 2  # FU indicator, FU header
STAP_HEADER_SIZE: Final = 1
STAP_LENGTH_SIZE: Final = 2


class H264Packetizer:
    """Access units (Annex-B) -> RFC 6184 payloads in ``packetization_mode`` 0 or 1."""

    def __init__(self, *, max_payload: int = 1200, packetization_mode: int = 1) -> None:
        if packetization_mode not in (0, 1):
            raise PacketizeError(f"packetization-mode {packetization_mode} is not supported")
        if max_payload <= FU_HEADER_SIZE:
            raise PacketizeError(f"max_payload {max_payload} leaves no room for data")
        self.max_payload = max_payload
        self.packetization_mode = packetization_mode

    def packetize(self, access_unit: bytes, timestamp: int) -> list[RtpPayload]:
        nals = split_annex_b(access_unit)
        if not nals:
            raise PacketizeError("H.264: no NAL unit in the access unit")
        payloads: list[bytes] = []
        pending: list[bytes] = []  # small NAL units waiting to share a STAP-A
        for nal in nals:
            if self.packetization_mode == 0:
                if len(nal) > self.max_payload:
                    raise PacketizeError(
                        f"H.264 mode 0: a {len(nal)}-byte NAL unit does not fit "
                        f"{self.max_payload} bytes"
                    )
                payloads.append(nal)
                continue
            if len(nal) > self.max_payload:
                payloads += self._stap(pending)
                payloads += self._fu_a(nal)
                continue
            if pending and self._stap_size([*pending, nal]) > self.max_payload:
                payloads += self._stap(pending)
            pending.append(nal)
        payloads += self._stap(pending)
        return mark_last(payloads, timestamp)

    @staticmethod
    def _stap_size(nals: list[bytes]) -> int:
        return STAP_HEADER_SIZE + sum(STAP_LENGTH_SIZE + len(n) for n in nals)

    @staticmethod
    def _stap(pending: list[bytes]) -> list[bytes]:
        """RFC 6184 §5.7.1: one unit alone as itself; several as a STAP-A whose NRI is the
        highest of theirs."""
        if not pending:
            return []
        nals = pending[:]
        pending.clear()
        if len(nals) == 1:
            return nals
        nri = max(n[0] & 0x60 for n in nals)
        return [bytes([nri | STAP_A]) + b"".join(struct.pack("!H", len(n)) + n for n in nals)]

    def _fu_a(self, nal: bytes) -> list[bytes]:
        """RFC 6184 §5.8: the NAL header's F and NRI in the indicator, its type in the FU header
        with S on the first fragment and E on the last; the header byte itself is not sent."""
        indicator = nal[0] & 0xE0 | FU_A
        chunks = even_chunks(nal[1:], self.max_payload - FU_HEADER_SIZE)
        out = []
        for i, chunk in enumerate(chunks):
            header = nal[0] & 0x1F | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
            out.append(bytes([indicator, header]) + chunk)
        return out
