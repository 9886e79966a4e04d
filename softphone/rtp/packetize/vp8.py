"""VP8 packetiser (RFC 7741) (sans-IO).

Each payload starts with the descriptor (RFC 7741 §4.2): X = 1, S = 1 on the first packet of the
frame, partition index 0 (the frame is cut without regard to its partitions, §4.4 allows it),
and the extension with a 15-bit picture id (I = 1, M = 1) that goes up by one per frame: a
receiver tells from a gap in it that a whole frame is gone (§4.2, the use the RFC gives).
"""

from __future__ import annotations

from typing import Final

from softphone.rtp.packetize import PacketizeError, RtpPayload, even_chunks, mark_last

DESCRIPTOR_SIZE: Final = 4  # |X|R|N|S|R|PID|, |I|L|T|K|RSV|, |M| PictureID (15 bits)|


class Vp8Packetizer:
    """Frames -> RFC 7741 payloads. ``picture_id`` is the id of the next frame (15 bits; a
    random start is RFC 7741 §4.2's advice, the caller draws it)."""

    def __init__(self, *, max_payload: int = 1200, picture_id: int = 0) -> None:
        if max_payload <= DESCRIPTOR_SIZE:
            raise PacketizeError(f"max_payload {max_payload} leaves no room after the descriptor")
        self.max_payload = max_payload
        self.picture_id = picture_id & 0x7FFF

    def packetize(self, frame: bytes, timestamp: int) -> list[RtpPayload]:
        if not frame:
            raise PacketizeError("VP8: empty frame")
        pid = self.picture_id
        self.picture_id = (pid + 1) & 0x7FFF
        payloads = []
        for i, chunk in enumerate(even_chunks(frame, self.max_payload - DESCRIPTOR_SIZE)):
            first = 0x80 | (0x10 if i == 0 else 0)  # X, S (PID 0)
            payloads.append(bytes([first, 0x80, 0x80 | pid >> 8, pid & 0xFF]) + chunk)
        return mark_last(payloads, timestamp)
