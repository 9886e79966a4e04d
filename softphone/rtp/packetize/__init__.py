"""RTP packetisers for video: one encoded frame in, the RTP payloads that carry it out (sans-IO).

The inverse of rtp/depacketize/: a packetiser takes a frame as the encoder wrote it (VP8, VP9:
the frame or superframe; H.264: an Annex-B access unit) with its RTP timestamp and returns the
payloads, each at most ``max_payload`` bytes, with the payload descriptors of the codec's RTP
format. The marker bit is set on the last payload of the frame (RFC 7741 §4.1, RFC 9628 §4.1,
RFC 6184 §5.1). Sequence numbers, SSRC and the RTP header are the RTP session's business.

Fragments are as even as the budget allows (a frame of 2,500 bytes at 1,200 goes out as three
of ~834, not 1,200 + 1,200 + 100), which keeps packets of one frame alike for pacing and loss.

Errors: :class:`PacketizeError` (an RtpError: API misuse) for an empty frame, a budget too small
for the descriptor, or a NAL unit that does not fit a packetization-mode 0 packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.rtp.errors import RtpError


@dataclass(frozen=True, slots=True)
class RtpPayload:
    """One RTP payload of a frame, with the header fields the frame decides."""

    payload: bytes
    timestamp: int
    marker: bool


class PacketizeError(RtpError):
    """A frame or setting the packetiser cannot turn into packets (a bug or a misconfiguration
    on our side, never the network's doing)."""


def even_chunks(data: bytes, budget: int) -> list[bytes]:
    """``data`` cut into the fewest pieces of at most ``budget`` bytes, their sizes differing
    by at most one byte."""
    if budget < 1:
        raise PacketizeError(f"no room for data in a packet ({budget} bytes)")
    count = max(1, -(-len(data) // budget))
    base, extra = divmod(len(data), count)
    chunks, pos = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def mark_last(payloads: list[bytes], timestamp: int) -> list[RtpPayload]:
    """The payloads of one frame, the marker on the last."""
    last = len(payloads) - 1
    return [RtpPayload(p, timestamp & 0xFFFF_FFFF, i == last) for i, p in enumerate(payloads)]


__all__ = ["PacketizeError", "RtpPayload", "even_chunks", "mark_last"]
