"""VP9 packetiser (RFC 9628), one spatial layer, non-flexible mode (sans-IO).

Each payload starts with the descriptor (RFC 9628 §4.2): I = 1 with a 15-bit picture id (up by
one per picture), P = 1 unless the frame is a key frame, L = 0 and F = 0 (one layer: no layer
indices, no reference list), B on the first packet and E on the last. The first packet of a key
frame carries the scalability structure (V = 1, §4.2.1) with the picture size (N_S = 0, Y = 1),
which lets a receiver size its output before decoding.

``inter_flag=False`` leaves P at 0 on every picture, as baresip 1.0's own sender does: its
receiver reads a P_DIFF octet whenever P is set, flexible mode or not (RFC 9628 §4.2 has that
octet only with F = 1), so it cannot decode an RFC-conformant inter frame.

A superframe (libvpx's hidden alt-ref frame with the frame that shows, VP9 spec Annex B) goes out
as one frame, index included: receivers that concatenate the payloads of a picture hand their
decoder what the encoder wrote, and ours splits and rebuilds it.
"""

from __future__ import annotations

from typing import Final

from softphone.rtp.depacketize import PayloadError
from softphone.rtp.depacketize.vp9 import parse_frame_header, split_superframe
from softphone.rtp.packetize import PacketizeError, RtpPayload, even_chunks, mark_last

DESCRIPTOR_SIZE: Final = 3  # |I|P|L|F|B|E|V|Z|, |M| PICTURE ID (15 bits)|
SS_SIZE: Final = 5  # | N_S |Y|G|-|-|-|, WIDTH, HEIGHT


class Vp9Packetizer:
    """Frames -> RFC 9628 payloads. ``picture_id`` is the id of the next picture (15 bits)."""

    def __init__(
        self, *, max_payload: int = 1200, picture_id: int = 0, inter_flag: bool = True
    ) -> None:
        if max_payload <= DESCRIPTOR_SIZE + SS_SIZE:
            raise PacketizeError(f"max_payload {max_payload} leaves no room after the descriptor")
        self.max_payload = max_payload
        self.picture_id = picture_id & 0x7FFF
        self.inter_flag = inter_flag

    def packetize(self, frame: bytes, timestamp: int) -> list[RtpPayload]:
        if not frame:
            raise PacketizeError("VP9: empty frame")
        try:
            header = parse_frame_header(split_superframe(frame)[0])
        except PayloadError as exc:
            raise PacketizeError(f"not a VP9 frame: {exc}") from exc
        pid = self.picture_id
        self.picture_id = (pid + 1) & 0x7FFF
        ss = b""
        if header.keyframe and header.width and header.height:
            ss = bytes([0x10]) + header.width.to_bytes(2, "big") + header.height.to_bytes(2, "big")
        # The first packet carries the SS: cut the frame so that it fits there too.
        chunks = even_chunks(frame, self.max_payload - DESCRIPTOR_SIZE - len(ss))
        payloads = []
        for i, chunk in enumerate(chunks):
            inter = self.inter_flag and not header.keyframe
            flags = 0x80 | (0x40 if inter else 0)  # I, P
            flags |= (0x08 if i == 0 else 0) | (0x04 if i == len(chunks) - 1 else 0)  # B, E
            extra = ss if i == 0 else b""
            if extra:
                flags |= 0x02  # V
            payloads.append(bytes([flags, 0x80 | pid >> 8, pid & 0xFF]) + extra + chunk)
        return mark_last(payloads, timestamp)
