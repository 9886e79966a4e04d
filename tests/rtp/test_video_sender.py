"""What a video sender does with its receiver's RTCP: resend NACKed packets, key frames on
PLI/FIR (paced, FIR repeats ignored), rate from loss, REMB and TMMBR (answered by TMMBN), only
what was negotiated, malformed feedback skipped."""

from __future__ import annotations

from softphone.rtp.feedback import empty_receiver_report
from softphone.rtp.packet import (
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpUnknown,
    RtpPacket,
    parse_rtcp,
)
from softphone.rtp.send_rate import SendRateController
from softphone.rtp.video_feedback import Fir, Nack, Pli, Remb, Tmmbr, TmmbrEntry, parse_feedback
from softphone.rtp.video_sender import VideoSenderFeedback

OURS = 0x1111
PEER = 0x2222
ALL = frozenset({"nack", "nack pli", "ccm fir", "goog-remb", "ccm tmmbr"})


def sender(feedback: frozenset[str] = ALL) -> VideoSenderFeedback:
    rate = SendRateController(min_bps=100_000, max_bps=2_000_000, start_bps=1_000_000)
    out = VideoSenderFeedback(ssrc=OURS, rate=rate, feedback=feedback)
    for seq in range(10, 20):
        packet = RtpPacket(payload_type=96, sequence=seq, timestamp=0, ssrc=OURS, payload=b"x")
        out.sent(packet, now=0.0)
    return out


def rtcp(*items: object) -> list[RtcpPacket]:
    data = empty_receiver_report(PEER) + b"".join(bytes(i) for i in items)  # type: ignore[call-overload]
    return parse_rtcp(data)


def test_a_nack_resends_what_the_history_holds() -> None:
    actions = sender().receive_rtcp(rtcp(Nack(PEER, OURS, (12, 13, 40))), now=0.1)
    assert [p.sequence for p in actions.resend] == [12, 13]
    assert (
        not sender(frozenset({"nack pli"})).receive_rtcp(rtcp(Nack(PEER, OURS, (12,))), 0.1).resend
    )
    assert not sender().receive_rtcp(rtcp(Nack(PEER, 0x9999, (12,))), now=0.1).resend  # not ours


def test_key_frame_requests_are_paced_and_fir_repeats_ignored() -> None:
    s = sender()
    assert s.receive_rtcp(rtcp(Pli(PEER, OURS)), now=1.0).keyframe
    assert not s.receive_rtcp(rtcp(Pli(PEER, OURS)), now=1.1).keyframe  # within 0.3 s
    assert s.receive_rtcp(rtcp(Fir(PEER, ((OURS, 4),))), now=1.5).keyframe
    assert not s.receive_rtcp(rtcp(Fir(PEER, ((OURS, 4),))), now=2.0).keyframe  # same request
    assert s.receive_rtcp(rtcp(Fir(PEER, ((OURS, 5),))), now=2.5).keyframe
    assert not s.receive_rtcp(rtcp(Fir(PEER, ((0x9999, 6),))), now=3.0).keyframe
    assert s.keyframes_asked == 3
    assert not sender(frozenset()).receive_rtcp(rtcp(Pli(PEER, OURS)), now=1.0).keyframe


def test_loss_remb_and_tmmbr_set_the_rate() -> None:
    s = sender()
    block = RtcpReportBlock(
        ssrc=OURS, fraction_lost=64, packets_lost=5, highest_sequence=20, jitter=0, lsr=0, dlsr=0
    )
    actions = s.receive_rtcp([RtcpReceiverReport(ssrc=PEER, reports=(block,))], now=0.0)
    assert actions.bitrate_bps == 875_000
    assert s.receive_rtcp(rtcp(Remb(PEER, 500_000, (OURS,))), now=0.1).bitrate_bps == 500_000
    assert s.receive_rtcp(rtcp(Remb(PEER, 300_000, (0x9999,))), now=0.2).bitrate_bps is None
    actions = s.receive_rtcp(rtcp(Tmmbr(PEER, (TmmbrEntry(OURS, 256_000, 40),))), now=0.3)
    assert actions.bitrate_bps == 256_000
    assert actions.rtcp is not None
    note = parse_feedback(parse_rtcp(actions.rtcp)[1])
    assert note == Tmmbr(OURS, (TmmbrEntry(PEER, 256_000, 40),), notification=True)


def test_malformed_feedback_is_skipped_and_the_rest_still_counts() -> None:
    s = sender()
    broken = RtcpUnknown(packet_type=205, count=1, body=bytes(8))  # a NACK without entries
    packets = [*rtcp(Pli(PEER, OURS))]
    actions = s.receive_rtcp([packets[0], broken, packets[1]], now=0.0)
    assert actions.keyframe and s.malformed == 1
