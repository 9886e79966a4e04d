"""RTCP feedback from a receiver: the Picture Loss Indication that asks a video sender for a key
frame (RFC 4585 §6.3.1), sent as a compound RTCP packet (sans-IO, bytes out).

A receiver that joins a live stream, or loses part of a picture, otherwise waits for the next
natural key frame, up to a whole group of pictures. The PLI asks the encoder for one now;
senders that do not know it ignore it.

Built with ``struct`` alone, not through rtp/packet.py: the first PLI goes out as soon as PLAY
is answered, before the RTP modules are loaded (phone/preload.py), because its round trip to the
encoder is the longest wait before the first picture. rtp/packet.py parses what comes out
(tests/rtp/test_feedback.py).
"""

from __future__ import annotations

import struct
from typing import Final

RTCP_VERSION_BITS: Final = 0x80  # version 2, no padding (RFC 3550 §6.4.1)
RTCP_RR: Final = 201  # RFC 3550 §12.1
RTCP_PSFB: Final = 206  # payload-specific feedback (RFC 4585 §6.1)
PLI_FMT: Final = 1  # RFC 4585 §6.3.1
PLI_INTERVAL_S: Final = 0.5  # while waiting for a key frame, ask again at most this often

_HEADER_AND_SSRC: Final = struct.Struct("!BBHI")  # V P RC/FMT | PT | length | SSRC
_PLI: Final = struct.Struct("!BBHII")  # ... | sender SSRC | media source SSRC


def empty_receiver_report(ssrc: int) -> bytes:
    """An RR without report blocks (RFC 3550 §6.4.2): the head every compound packet needs
    (§6.1), for a receiver with nothing to report yet. Length 1: one 32-bit word after the
    header."""
    return _HEADER_AND_SSRC.pack(RTCP_VERSION_BITS, RTCP_RR, 1, ssrc)


def picture_loss_indication(*, sender_ssrc: int, media_ssrc: int) -> bytes:
    """A PLI (RFC 4585 §6.3.1): PSFB with FMT 1, the sender's and the media source's SSRC and
    no feedback control information, so length 2."""
    return _PLI.pack(RTCP_VERSION_BITS | PLI_FMT, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


def pli_compound(*, sender_ssrc: int, media_ssrc: int) -> bytes:
    """A compound packet asking ``media_ssrc`` for a key frame (RFC 3550 §6.1, RFC 4585 §3.1):
    an empty RR, then the PLI."""
    return empty_receiver_report(sender_ssrc) + picture_loss_indication(
        sender_ssrc=sender_ssrc, media_ssrc=media_ssrc
    )


class KeyframeRequester:
    """The PLIs of one received video stream, at most one every ``interval_s`` (RFC 4585 §3.4
    leaves the pace to the application; a key frame takes a round trip and more to come, so
    asking faster only loads the encoder). ``sender_ssrc`` is ours (RFC 3550 §8.1: random);
    ``sent`` counts the PLIs handed out."""

    def __init__(self, sender_ssrc: int, *, interval_s: float = PLI_INTERVAL_S) -> None:
        self.sender_ssrc = sender_ssrc
        self.interval_s = interval_s
        self.sent = 0
        self._last_at: float | None = None

    def request(self, media_ssrc: int, now: float) -> bytes | None:
        """The compound PLI to send now for ``media_ssrc``, or None when one went out less than
        ``interval_s`` ago."""
        if self._last_at is not None and now - self._last_at < self.interval_s:
            return None
        self._last_at = now
        self.sent += 1
        return pli_compound(sender_ssrc=self.sender_ssrc, media_ssrc=media_ssrc)
