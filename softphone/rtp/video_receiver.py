"""The receiving end of one video stream: packets in, pictures to decode and RTCP feedback out
(sans-IO: packets, ``now`` and the RTT in; access units and bytes out).

It strings together what rtp/ has for video: the NACK generator sees packets as they arrive,
the reorder buffer puts them in order (holding a hole long enough for a retransmission to fill
it), the depacketiser makes frames and drops damaged ones until a key frame, and
:meth:`rtcp_to_send` asks the sender for what is missing with the feedback negotiated in SDP
(sdp/video.py ``NegotiatedVideoCodec.feedback``; RFC 4585 §4.2: only what was negotiated):

- ``nack``: Generic NACK for lost packets (RFC 4585 §6.2.1), once per RTT each, bounded;
- ``nack pli``: a PLI (§6.3.1) while the depacketiser waits for a key frame, after the decoder
  failed on a frame (:meth:`decode_failed`), or when NACKs were given up; at most one every
  ``keyframe_interval_s``, a key frame in between or not;
- ``ccm fir``: a FIR (RFC 5104 §4.3.1) instead when PLI was not negotiated; a new request gets
  a new command sequence number (§4.3.1.1), a repeat of the same request keeps it.

Feedback goes out as a compound packet headed by an empty RR (RFC 4585 §3.1, rtp/feedback.py)
from our SSRC; the session's regular reports are its own business.

Reorder delay: without NACK, FFmpeg's 100 ms; with NACK it must also cover the repair (a NACK
round trip), so ``max_delay_s`` defaults to 300 ms there, a latency the caller may trade down.
"""

from __future__ import annotations

from typing import Final

from softphone.rtp.depacketize import AccessUnit, Depacketizer
from softphone.rtp.feedback import empty_receiver_report
from softphone.rtp.nack import NackGenerator
from softphone.rtp.packet import RtpPacket
from softphone.rtp.reorder import ReorderBuffer
from softphone.rtp.video_feedback import Fir, Nack, Pli

KEYFRAME_INTERVAL_S: Final = 0.5
REORDER_DELAY_S: Final = 0.1
REORDER_DELAY_NACK_S: Final = 0.3
MAX_NACKS_PER_PACKET: Final = 17 * 16  # 16 NACK entries: enough for any burst worth repairing


class VideoReceiver:
    """One received video stream (see the module docstring). Counters: ``nacks_sent`` (NACK
    packets), ``keyframe_requests`` (PLIs or FIRs sent), ``units`` (access units out)."""

    def __init__(
        self,
        depacketizer: Depacketizer,
        *,
        our_ssrc: int,
        feedback: frozenset[str] = frozenset(),
        max_delay_s: float | None = None,
        keyframe_interval_s: float = KEYFRAME_INTERVAL_S,
    ) -> None:
        self.depacketizer = depacketizer
        self.our_ssrc = our_ssrc
        self.feedback = frozenset(" ".join(f.lower().split()) for f in feedback)
        self.use_nack = "nack" in self.feedback
        self.use_pli = "nack pli" in self.feedback
        self.use_fir = "ccm fir" in self.feedback and not self.use_pli
        if max_delay_s is None:
            max_delay_s = REORDER_DELAY_NACK_S if self.use_nack else REORDER_DELAY_S
        self._reorder = ReorderBuffer(max_delay_s=max_delay_s, capacity=512)
        self._nack = NackGenerator() if self.use_nack else None
        self.keyframe_interval_s = keyframe_interval_s
        self.media_ssrc: int | None = None
        self._decode_failed = False
        self._keyframe_asked_at: float | None = None
        self._fir_seq = 0
        self._fir_pending = False  # a FIR request not yet answered by a key frame
        self.nacks_sent = 0
        self.keyframe_requests = 0
        self.units = 0

    def receive(self, packet: RtpPacket, now: float) -> list[AccessUnit]:
        """A packet of the stream as it arrived (any order, duplicates, retransmissions)."""
        if self.media_ssrc is not None and packet.ssrc != self.media_ssrc and self._nack:
            self._nack = NackGenerator()  # a new source: its numbers are a new space
        self.media_ssrc = packet.ssrc
        if self._nack is not None:
            self._nack.received(packet.sequence, now)
        return self._through(self._reorder.push(packet, now))

    def poll(self, now: float) -> list[AccessUnit]:
        """Packets the reorder buffer stopped waiting for a hole for (call at
        :meth:`next_deadline`)."""
        return self._through(self._reorder.poll(now))

    def decode_failed(self) -> None:
        """The decoder rejected a unit this receiver gave out: ask for a key frame."""
        self._decode_failed = True

    def request_keyframe(self) -> None:
        """Something new starts from here (a recording): ask for a key frame, as after a
        failed decode."""
        self._decode_failed = True

    @property
    def keyframe_needed(self) -> bool:
        nack_gave_up = self._nack is not None and self._nack.keyframe_needed
        return self.depacketizer.waiting_for_keyframe or self._decode_failed or nack_gave_up

    def next_deadline(self, rtt_s: float | None = None) -> float | None:
        times = [self._reorder.next_deadline()]
        if self._nack is not None:
            times.append(self._nack.next_due(rtt_s))
        if self.keyframe_needed and self._keyframe_asked_at is not None:
            times.append(self._keyframe_asked_at + self.keyframe_interval_s)
        return min((t for t in times if t is not None), default=None)

    def rtcp_to_send(self, now: float, rtt_s: float | None = None) -> bytes | None:
        """The compound feedback packet due now, or None."""
        if self.media_ssrc is None:
            return None
        items: list[bytes] = []
        if self._nack is not None:
            lost = self._nack.poll(now, rtt_s).nack[:MAX_NACKS_PER_PACKET]
            if lost:
                items.append(bytes(Nack(self.our_ssrc, self.media_ssrc, lost)))
                self.nacks_sent += 1
        if self.keyframe_needed and (self.use_pli or self.use_fir):
            due = (
                self._keyframe_asked_at is None
                or now - self._keyframe_asked_at >= self.keyframe_interval_s
            )
            if due:
                items.append(self._keyframe_request())
                self._keyframe_asked_at = now
                self._decode_failed = False
                if self._nack is not None:
                    self._nack.keyframe_needed = False
                self.keyframe_requests += 1
        if not items:
            return None
        return empty_receiver_report(self.our_ssrc) + b"".join(items)

    # --- internals -------------------------------------------------------------------------
    def _keyframe_request(self) -> bytes:
        assert self.media_ssrc is not None
        if self.use_pli:
            return bytes(Pli(self.our_ssrc, self.media_ssrc))
        if not self._fir_pending:  # RFC 5104 §4.3.1.1: a new request, a new number
            self._fir_seq = (self._fir_seq + 1) & 0xFF
            self._fir_pending = True
        return bytes(Fir(self.our_ssrc, ((self.media_ssrc, self._fir_seq),)))

    def _through(self, released: list[tuple[RtpPacket, int]]) -> list[AccessUnit]:
        units: list[AccessUnit] = []
        for packet, lost_before in released:
            units += self.depacketizer.push(packet, lost_before=lost_before)
        if any(u.keyframe for u in units):
            # Answered. The interval still runs from the last request: a peer whose key frames
            # arrive broken (each one a decode failure) gets one request per interval, not one
            # per key frame, which would let it set our feedback's rate.
            self._fir_pending = False
        self.units += len(units)
        return units
