"""RTCP feedback for video (RFC 4585 NACK/PLI, RFC 5104 FIR/TMMBR/TMMBN, REMB): exact bytes,
round trips through rtp.packet.parse_rtcp, and malformed packets."""

from __future__ import annotations

import struct

import pytest

from softphone.rtp.errors import RtpError, RtpParseError
from softphone.rtp.feedback import empty_receiver_report, picture_loss_indication
from softphone.rtp.packet import RtcpReceiverReport, RtcpUnknown, parse_rtcp
from softphone.rtp.video_feedback import (
    FeedbackError,
    Fir,
    Nack,
    Pli,
    Remb,
    Tmmbr,
    TmmbrEntry,
    nack_entries,
    parse_feedback,
)


def compound(*items: object) -> list[object]:
    """Through the wire: an empty RR, the feedback, parsed back (RFC 4585 §3.1)."""
    data = empty_receiver_report(1) + b"".join(bytes(i) for i in items)  # type: ignore[call-overload]
    packets = parse_rtcp(data)
    assert isinstance(packets[0], RtcpReceiverReport)
    return [parse_feedback(p) for p in packets[1:]]


def test_nack_bytes_follow_rfc4585() -> None:
    nack = Nack(sender_ssrc=0x11111111, media_ssrc=0x22222222, lost=(100, 101, 103, 117, 118))
    data = bytes(nack)
    # V=2 FMT=1 | PT=205 | length 4 | sender | media | PID 100 BLP 0b101 | PID 117 BLP 0b1
    assert data == bytes.fromhex("81cd000411111111222222220064000500750001")
    assert compound(nack) == [nack]


def test_nack_entries_wrap_and_merge() -> None:
    assert nack_entries([65535, 0, 1, 0]) == [(65535, 0b11)]
    assert nack_entries([5, 3]) == [(3, 0b10)]  # sorted first
    assert nack_entries([2, 65534, 40]) == [(65534, 0b1000), (40, 0)]  # around the wrap
    assert nack_entries([]) == []
    with pytest.raises(RtpError, match="key frame"):
        nack_entries(range(0, 65 * 17, 17))


def test_pli_is_the_same_packet_as_the_receiver_pli() -> None:
    pli = Pli(sender_ssrc=5, media_ssrc=9)
    assert bytes(pli) == picture_loss_indication(sender_ssrc=5, media_ssrc=9)
    assert compound(pli) == [pli]


def test_fir_bytes_follow_rfc5104() -> None:
    fir = Fir(sender_ssrc=1, entries=((0xAABBCCDD, 7), (2, 300)))
    data = bytes(fir)
    # FMT 4 | PT 206 | length 6 | sender | media 0 | SSRC, seq 7, reserved | SSRC 2, seq 300%256
    assert data == bytes.fromhex("84ce00060000000100000000aabbccdd07000000000000022c000000")
    assert compound(fir) == [Fir(1, ((0xAABBCCDD, 7), (2, 44)))]


def test_remb_bytes_follow_the_draft() -> None:
    remb = Remb(sender_ssrc=1, bitrate=1_000_000, ssrcs=(0x1234, 0x5678))
    data = bytes(remb)
    # 1,000,000 = 250,000 << 2: exponent 2, mantissa 250,000 (0x3D090)
    exp_mant = (2 << 18 | 250_000).to_bytes(3, "big")
    assert data == bytes.fromhex("8fce00060000000100000000") + b"REMB" + b"\x02" + exp_mant + (
        struct.pack("!II", 0x1234, 0x5678)
    )
    assert compound(remb) == [remb]


def test_bitrates_round_down_to_what_the_field_holds() -> None:
    remb = compound(Remb(1, (1 << 40) + 12345, ()))[0]
    assert isinstance(remb, Remb) and remb.bitrate == (1 << 40)  # 18-bit mantissa
    tmmbr = Tmmbr(1, (TmmbrEntry(ssrc=3, bitrate=1_000_001, overhead=40),))
    back = compound(tmmbr)[0]
    assert back == Tmmbr(1, (TmmbrEntry(3, 1_000_000, 40),))  # 17-bit mantissa: 125,000 << 3
    tmmbn = Tmmbr(1, (TmmbrEntry(3, 64_000, 0),), notification=True)
    assert compound(tmmbn) == [tmmbn]


def test_other_rtcp_and_unknown_fmts_are_not_feedback() -> None:
    rr = parse_rtcp(empty_receiver_report(1))[0]
    assert parse_feedback(rr) is None
    assert parse_feedback(RtcpUnknown(packet_type=206, count=2, body=bytes(12))) is None  # SLI
    assert parse_feedback(RtcpUnknown(packet_type=206, count=15, body=bytes(12))) is None  # !REMB
    assert parse_feedback(RtcpUnknown(packet_type=204, count=1, body=bytes(8))) is None  # APP


@pytest.mark.parametrize(
    ("packet_type", "fmt", "body", "error"),
    [
        (205, 1, bytes(4), "no SSRCs"),
        (205, 1, bytes(8), "NACK with 0 bytes"),
        (205, 1, bytes(8) + bytes(4) * 65, "65 entries"),
        (205, 3, bytes(12), "TMMBR/TMMBN with 4"),
        (206, 4, bytes(12), "FIR with 4"),
        (206, 4, bytes(8), "FIR with 0"),
        (206, 15, bytes(8) + b"REMB", "shorter than its bitrate"),
        (206, 15, bytes(8) + b"REMB\x02\x00\x00\x00" + bytes(4), "2 SSRCs has room for 1"),
    ],
)
def test_malformed_feedback_is_a_feedback_error(
    packet_type: int, fmt: int, body: bytes, error: str
) -> None:
    packet = RtcpUnknown(packet_type=packet_type, count=fmt, body=body)
    with pytest.raises(FeedbackError, match=error) as caught:
        parse_feedback(packet)
    assert isinstance(caught.value, RtpParseError)


@pytest.mark.parametrize(
    "item",
    [
        Nack(1 << 32, 1, (1,)),
        Pli(1, -1),
        Remb(1, -5, ()),
        Remb(1, 1, tuple(range(256))),
        Tmmbr(1, (TmmbrEntry(1, 1, 512),)),
        Fir(1, ((1 << 32, 0),)),
    ],
)
def test_out_of_range_fields_are_api_misuse(item: object) -> None:
    with pytest.raises(RtpError):
        bytes(item)  # type: ignore[call-overload]
