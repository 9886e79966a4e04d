"""RTCP feedback: the Picture Loss Indication (RFC 4585 §6.3.1) in a compound packet, byte for byte,
read back by the RTCP parser of rtp/packet.py; its pace on a clock walked by argument."""

from __future__ import annotations

import subprocess
import sys

from softphone.rtp.feedback import (
    PLI_INTERVAL_S,
    KeyframeRequester,
    picture_loss_indication,
    pli_compound,
)
from softphone.rtp.packet import RtcpPacketType, RtcpReceiverReport, RtcpUnknown, parse_rtcp

OURS = 0x0A0B0C0D
CAMERA = 0x11223344


def test_the_pli_compound_is_an_empty_rr_then_the_pli() -> None:
    data = pli_compound(sender_ssrc=OURS, media_ssrc=CAMERA)
    rr = "80c90001 0a0b0c0d"  # RR, RC 0, length 1: our SSRC, no report blocks
    pli = "81ce0002 0a0b0c0d 11223344"  # PSFB (206), FMT 1, length 2: sender, media source
    assert data == bytes.fromhex(f"{rr} {pli}")
    packets = parse_rtcp(data)  # a valid compound (RFC 3550 §A.2): it starts with the RR
    assert packets == [
        RtcpReceiverReport(ssrc=OURS, reports=()),
        RtcpUnknown(packet_type=RtcpPacketType.PSFB, count=1, body=data[12:]),
    ]
    assert b"".join(bytes(p) for p in packets) == data


def test_a_pli_alone_is_only_valid_as_reduced_size_rtcp() -> None:
    data = picture_loss_indication(sender_ssrc=OURS, media_ssrc=CAMERA)
    (pli,) = parse_rtcp(data, reduced_size=True)  # RFC 5506: feedback without the RR head
    assert pli == RtcpUnknown(packet_type=206, count=1, body=bytes.fromhex("0a0b0c0d11223344"))


def test_key_frames_are_asked_for_at_most_every_interval() -> None:
    requester = KeyframeRequester(OURS)
    sent = {now: requester.request(CAMERA, now) for now in (10.0, 10.1, 10.49, 10.5, 10.7, 11.2)}
    assert [now for now, data in sent.items() if data is not None] == [10.0, 10.5, 11.2]
    assert sent[10.0] == pli_compound(sender_ssrc=OURS, media_ssrc=CAMERA)
    assert requester.sent == 3
    assert PLI_INTERVAL_S == 0.5


def test_another_camera_ssrc_goes_in_the_pli() -> None:
    requester = KeyframeRequester(OURS, interval_s=0.0)
    first = requester.request(CAMERA, 0.0)
    second = requester.request(0x55667788, 0.0)
    assert first is not None and second is not None
    assert first[-4:] == CAMERA.to_bytes(4, "big") and second[-4:] == bytes.fromhex("55667788")


def test_the_pli_is_built_without_loading_the_rtp_packet_module() -> None:
    """The first PLI goes out as PLAY is answered, before the RTP modules load (their import
    would hold it up)."""
    code = (
        "import sys\n"
        "from softphone.rtp.feedback import pli_compound\n"
        "pli_compound(sender_ssrc=1, media_ssrc=2)\n"
        "print('softphone.rtp.packet' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
