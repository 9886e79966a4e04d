"""Opus in-band FEC in a call: we ask for it in SDP (``useinbandfec=1``, RFC 7587 §6.1), and
our encoder turns it on with the loss the far end reports in RTCP (RFC 3550 §6.4.1): libopus
sends no FEC at a loss percentage of 0, whatever ``useinbandfec`` says."""

from __future__ import annotations

import numpy as np
from call_media_support import PEER, StandInEndpoint, make_call

from softphone.media.codecs import get_codec
from softphone.media.codecs.opus import packet_has_fec
from softphone.rtp.packet import RtcpReceiverReport, RtcpReportBlock
from softphone.sdp.negotiation import NegotiatedCodec

RATE = 48000


def speech_like(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (voiced + 0.05 * np.sin(2 * np.pi * 900 * t)).astype(np.float32)


def test_our_offer_asks_for_opus_fec() -> None:
    assert "useinbandfec=1" in get_codec("opus").fmtp


async def test_the_encoder_sends_fec_once_the_far_end_reports_loss() -> None:
    call, endpoint = make_call(
        NegotiatedCodec(111, "opus", 48000, 2, {"useinbandfec": "1"}),
        engine_rate=RATE,
        endpoint=StandInEndpoint(payload_type=111),
    )
    call.sending_allowed = True
    mic = speech_like(2.0)
    block = RATE // 50

    def talk(start: float) -> list[bytes]:
        endpoint.sent.clear()
        for i in range(len(mic) // block):
            call.capture(mic[i * block : (i + 1) * block], start + i * 0.02)
        return [data[12:] for data in endpoint.sent]

    before = talk(0.0)
    assert before and not any(packet_has_fec(p) for p in before)  # no loss reported: no FEC
    # The far end reports 10 % lost (fraction_lost is lost/expected * 256, RFC 3550 §6.4.1).
    ours = call._session.ssrc
    report = RtcpReceiverReport(
        ssrc=1234,
        reports=(RtcpReportBlock(ssrc=ours, fraction_lost=26, packets_lost=10,
                                 highest_sequence=100, jitter=0, lsr=0, dlsr=0),),
    )  # fmt: skip
    deliver = endpoint.timed_sink
    assert callable(deliver)
    deliver(bytes(report), PEER, False, 2.0)
    after = talk(2.0)
    assert sum(packet_has_fec(p) for p in after) > len(after) // 2
