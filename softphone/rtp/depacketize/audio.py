"""Audio payloads that are one frame per packet: PCMU, PCMA, L16 and Opus (sans-IO).

- PCMU / PCMA: RFC 3551 §4.5.14 (G.711 μ-law / A-law), any number of samples per packet.
- L16: RFC 3551 §4.5.11, 16-bit signed big-endian samples (FFmpeg's ``pcm_s16be``), channels
  interleaved.
- Opus: RFC 7587 §4.2, exactly one Opus packet per RTP payload.

The unit is the RTP payload as it is; an empty payload (a keep-alive some senders use) gives none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from softphone.rtp.depacketize import AccessUnit

if TYPE_CHECKING:  # the RTP packet module loads with the RTP session, after PLAY
    from softphone.rtp.packet import RtpPacket


class PayloadDepacketizer:
    """One AccessUnit per RTP packet, the payload untouched."""

    def __init__(self, codec: str) -> None:
        self.codec = codec

    @classmethod
    def pcmu(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> PayloadDepacketizer:
        return cls("pcm_mulaw")

    @classmethod
    def pcma(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> PayloadDepacketizer:
        return cls("pcm_alaw")

    @classmethod
    def l16(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> PayloadDepacketizer:
        return cls("pcm_s16be")

    @classmethod
    def opus(cls, clock_rate: int, fmtp: Mapping[str, str], channels: int) -> PayloadDepacketizer:
        return cls("opus")

    def push(self, packet: RtpPacket, *, lost_before: int = 0) -> list[AccessUnit]:
        if not packet.payload:
            return []
        return [
            AccessUnit(
                data=packet.payload, timestamp=packet.timestamp, keyframe=True, codec=self.codec
            )
        ]

    def flush(self) -> list[AccessUnit]:
        return []

    @property
    def extradata(self) -> bytes | None:
        return None

    @property
    def waiting_for_keyframe(self) -> bool:
        return False
