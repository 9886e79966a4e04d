"""What the sender of one video stream does with the RTCP its receiver sends (sans-IO: RTCP
packets, ``now`` and the RTT in; actions out).

- Report blocks about our SSRC (RFC 3550 §6.4): the fraction lost feeds the rate controller
  (rtp/send_rate.py).
- NACK (RFC 4585 §6.2.1): the packets asked for, from the send history (rtp/nack.py), to send
  again as they were.
- PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1): a key frame, at most one per
  ``min_keyframe_interval_s`` (receivers repeat their request every RTT or so until the key
  frame arrives; each one honoured would send a train of key frames). A FIR repeating the
  command sequence number of the last one is the same request (§4.3.1.1) and changes nothing.
- REMB (draft-alvestrand-rmcat-remb) naming our SSRC: a cap on the rate.
- TMMBR (RFC 5104 §4.2.1) for our SSRC: a cap on the rate, acknowledged with a TMMBN (§4.2.2:
  the media sender answers every request) in a compound packet headed by an empty RR.

Only what SDP negotiated is acted on (``feedback``, as in sdp/video.py): a peer that sends a
NACK it never offered gets nothing resent. Malformed feedback (FeedbackError) is counted in
``malformed`` and skipped; the rest of the compound still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from softphone.rtp.feedback import empty_receiver_report
from softphone.rtp.nack import SendHistory
from softphone.rtp.packet import RtcpPacket, RtcpReceiverReport, RtcpSenderReport, RtpPacket
from softphone.rtp.send_rate import SendRateController
from softphone.rtp.video_feedback import (
    FeedbackError,
    Fir,
    Nack,
    Pli,
    Remb,
    Tmmbr,
    TmmbrEntry,
    parse_feedback,
)

MIN_KEYFRAME_INTERVAL_S: Final = 0.3


@dataclass(frozen=True, slots=True)
class SenderActions:
    """What to do after a compound RTCP packet from the receiver."""

    resend: tuple[RtpPacket, ...] = ()
    keyframe: bool = False
    bitrate_bps: int | None = None  # the rate target when it changed
    rtcp: bytes | None = None  # to send back (a TMMBN)


class VideoSenderFeedback:
    """The sender's side of one video stream's feedback (see the module docstring)."""

    def __init__(
        self,
        *,
        ssrc: int,
        rate: SendRateController,
        feedback: frozenset[str] = frozenset(),
        history: SendHistory | None = None,
        min_keyframe_interval_s: float = MIN_KEYFRAME_INTERVAL_S,
    ) -> None:
        self.ssrc = ssrc
        self.rate = rate
        self.feedback = frozenset(" ".join(f.lower().split()) for f in feedback)
        self.history = history if history is not None else SendHistory()
        self.min_keyframe_interval_s = min_keyframe_interval_s
        self._keyframe_at: float | None = None
        self._fir_seq: int | None = None
        self.keyframes_asked = 0
        self.malformed = 0

    def sent(self, packet: RtpPacket, now: float) -> None:
        """A packet of ours just went out: kept for NACKs when ``nack`` was negotiated."""
        if "nack" in self.feedback:
            self.history.add(packet, now)

    def receive_rtcp(
        self, packets: Sequence[RtcpPacket], now: float, rtt_s: float | None = None
    ) -> SenderActions:
        before = self.rate.target_bps
        resend: list[RtpPacket] = []
        keyframe = False
        tmmbn: bytes | None = None
        for packet in packets:
            if isinstance(packet, RtcpSenderReport | RtcpReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.rate.on_loss(block.fraction_lost, now)
                continue
            try:
                item = parse_feedback(packet)
            except FeedbackError:
                self.malformed += 1
                continue
            match item:
                case Nack() if item.media_ssrc == self.ssrc and "nack" in self.feedback:
                    resend += self.history.resend(item.lost, now, rtt_s)
                case Pli() if item.media_ssrc == self.ssrc and "nack pli" in self.feedback:
                    keyframe = True
                case Fir() if "ccm fir" in self.feedback:
                    for ssrc, seq in item.entries:
                        if ssrc == self.ssrc and seq != self._fir_seq:
                            self._fir_seq = seq
                            keyframe = True
                case Remb() if self.ssrc in item.ssrcs and "goog-remb" in self.feedback:
                    self.rate.on_remb(item.bitrate)
                case Tmmbr() if not item.notification and "ccm tmmbr" in self.feedback:
                    for entry in item.entries:
                        if entry.ssrc == self.ssrc:
                            self.rate.on_tmmbr(entry.bitrate)
                            note = Tmmbr(
                                self.ssrc,
                                (TmmbrEntry(item.sender_ssrc, entry.bitrate, entry.overhead),),
                                notification=True,
                            )
                            tmmbn = empty_receiver_report(self.ssrc) + bytes(note)
                case _:
                    pass  # not ours, not negotiated, or not feedback we know
        if keyframe:
            keyframe = self._keyframe_due(now)
        after = self.rate.target_bps
        return SenderActions(
            resend=tuple(resend),
            keyframe=keyframe,
            bitrate_bps=after if after != before else None,
            rtcp=tmmbn,
        )

    def _keyframe_due(self, now: float) -> bool:
        if self._keyframe_at is not None and now - self._keyframe_at < self.min_keyframe_interval_s:
            return False
        self._keyframe_at = now
        self.keyframes_asked += 1
        return True
