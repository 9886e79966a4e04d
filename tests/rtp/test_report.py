"""RTCP reception reports (RFC 3550 §6.4, §A.3): the loss figures of a report block, and SR/RR
compound heads that the RTCP parser reads back field for field and byte for byte."""

from __future__ import annotations

import pytest

from softphone.rtp.packet import (
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpPacket,
    parse_rtcp,
)
from softphone.rtp.report import (
    delay_since_last_sr,
    fraction_lost,
    receiver_report,
    report_block,
    sender_report,
)
from softphone.rtp.source import Source, SourceState

OURS = 0x0A0B0C0D
PEER = 0x0B0B0B0B


@pytest.mark.parametrize(
    ("expected", "received", "fraction"),
    [
        (0, 0, 0),  # nothing expected: nothing lost
        (100, 100, 0),
        (100, 90, 25),  # 10 % -> 25.6/256, truncated (§A.3: lost << 8 / expected)
        (100, 110, 0),  # duplicates: more arrived than expected
        (10, 0, 255),  # all lost: 256/256 does not fit in 8 bits
        (3, 2, 85),
    ],
)
def test_fraction_lost_in_the_interval(expected: int, received: int, fraction: int) -> None:
    assert fraction_lost(expected, received) == fraction


def test_dlsr_is_the_delay_since_the_last_sr_in_65536ths() -> None:
    assert delay_since_last_sr(10.0, 10.0) == 0
    assert delay_since_last_sr(10.0, 11.5) == 98304
    assert delay_since_last_sr(0.0, 1e9) == 0xFFFF_FFFF  # clamped to the 32-bit field


def source_with(*, first_seq: int, highest_seq: int, received: int) -> Source:
    """A valid source (§A.1 probation passed) that has seen ``received`` packets up to
    ``highest_seq``."""
    first = RtpPacket(payload_type=0, sequence=first_seq, timestamp=0, ssrc=PEER, payload=b"")
    source = Source(PEER, first, ("127.0.0.1", 4000), 0.0)
    source.state = SourceState.VALID
    source.init_seq(first_seq + 1, held=1)
    source.max_seq = highest_seq
    source.received = received
    return source


def test_a_report_block_over_an_interval_and_in_total() -> None:
    source = source_with(first_seq=65500, highest_seq=65535, received=30)  # 36 expected
    source.jitter = 123.9
    block = report_block(source, lsr=0x12345678, dlsr=65536)
    assert block == RtcpReportBlock(
        ssrc=PEER,
        fraction_lost=6 * 256 // 36,
        packets_lost=6,
        highest_sequence=65535,
        jitter=123,
        lsr=0x12345678,
        dlsr=65536,
    )
    # the next interval starts at the marks the caller moves on: 10 more expected, 10 received
    source.expected_prior, source.received_prior = source.expected, source.received
    source.cycles, source.max_seq = 1 << 16, 9  # wrapped past 65535
    source.received += 10
    block = report_block(source)
    assert (block.fraction_lost, block.packets_lost) == (0, 6)
    assert block.highest_sequence == (1 << 16) + 9  # extended: cycles in the high 16 bits
    assert (block.lsr, block.dlsr) == (0, 0)  # no SR from the source yet


def test_duplicates_make_the_cumulative_loss_negative() -> None:
    source = source_with(first_seq=100, highest_seq=109, received=12)  # 10 expected
    block = report_block(source)
    assert (block.fraction_lost, block.packets_lost) == (0, -2)


def test_a_receiver_report_with_cname_round_trips_through_the_parser() -> None:
    block = report_block(source_with(first_seq=1, highest_seq=100, received=95))
    packets = receiver_report(OURS, (block,), cname="softphone-0a0b0c0d")
    data = b"".join(bytes(p) for p in packets)
    parsed = parse_rtcp(data)
    assert parsed == packets
    rr, sdes = parsed
    assert isinstance(rr, RtcpReceiverReport) and rr.ssrc == OURS and rr.reports == (block,)
    assert isinstance(sdes, RtcpSourceDescription)
    assert [(c.ssrc, c.cname) for c in sdes.chunks] == [(OURS, "softphone-0a0b0c0d")]
    assert b"".join(bytes(p) for p in parsed) == data


def test_a_sender_report_wraps_its_counts_and_round_trips() -> None:
    packets = sender_report(
        OURS,
        (),
        cname="alice@example.test",
        ntp_timestamp=0xE8A1B2C3_80000000,
        rtp_timestamp=(1 << 32) + 160,
        packet_count=(1 << 32) + 5,
        octet_count=800,
    )
    data = b"".join(bytes(p) for p in packets)
    sr, _sdes = parse_rtcp(data)
    assert sr == RtcpSenderReport(
        ssrc=OURS,
        ntp_timestamp=0xE8A1B2C3_80000000,
        rtp_timestamp=160,
        packet_count=5,
        octet_count=800,
        reports=(),
    )
