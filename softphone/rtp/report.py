"""RTCP reception reports: what a receiver tells a sender about its stream (RFC 3550 §6.4, §A.3)
(sans-IO, packets out).

The RTP session (rtp/session.py) decides when a report is due and what it has seen; this module
turns that into packets: the report block of one source (loss over the last interval and in
total, the extended highest sequence number, jitter, LSR/DLSR for the sender's round-trip time),
and the head of a compound packet, an SR or an RR followed by the SDES CNAME (§6.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from softphone.rtp.packet import (
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdesChunk,
    RtcpSdesItem,
    RtcpSenderReport,
    RtcpSourceDescription,
    SdesItemType,
)

if TYPE_CHECKING:
    from softphone.rtp.source import Source

_U32: Final = 0xFFFF_FFFF
_MAX_CUMULATIVE_LOST: Final = (1 << 23) - 1  # the field is a signed 24-bit number (§6.4.1)


def fraction_lost(expected_interval: int, received_interval: int) -> int:
    """Packets lost in the interval, in 1/256 (RFC 3550 §A.3); 0 when none were lost, or when
    duplicates made more arrive than were expected."""
    lost_interval = expected_interval - received_interval
    if expected_interval == 0 or lost_interval <= 0:
        return 0
    return min((lost_interval << 8) // expected_interval, 255)


def delay_since_last_sr(arrival: float, now: float) -> int:
    """DLSR (RFC 3550 §6.4.1): seconds since the last SR arrived, in 1/65536 s."""
    return min(int((now - arrival) * 65536), _U32)


def report_block(source: Source, *, lsr: int = 0, dlsr: int = 0) -> RtcpReportBlock:
    """The report block about ``source`` (RFC 3550 §6.4.1) for the interval since its marks
    ``expected_prior`` / ``received_prior`` (§A.3); the caller moves the marks on once it is sent.
    ``lsr`` and ``dlsr`` are 0 until the source has sent an SR."""
    expected = source.expected
    lost = expected - source.received
    return RtcpReportBlock(
        ssrc=source.ssrc,
        fraction_lost=fraction_lost(
            expected - source.expected_prior, source.received - source.received_prior
        ),
        packets_lost=max(-(1 << 23), min(lost, _MAX_CUMULATIVE_LOST)),
        highest_sequence=source.extended_max & _U32,
        jitter=min(int(source.jitter), _U32),
        lsr=lsr,
        dlsr=dlsr,
    )


def cname_description(ssrc: int, cname: str) -> RtcpSourceDescription:
    """SDES with the CNAME item alone (RFC 3550 §6.5.1), which every compound packet carries."""
    item = RtcpSdesItem(type=SdesItemType.CNAME, value=cname.encode()[:255])
    return RtcpSourceDescription(chunks=(RtcpSdesChunk(ssrc=ssrc, items=(item,)),))


def receiver_report(
    ssrc: int, blocks: tuple[RtcpReportBlock, ...], *, cname: str
) -> list[RtcpPacket]:
    """The head of a compound packet from a source that sent nothing since the last report
    (RFC 3550 §6.1, §6.4.2): RR, then SDES CNAME."""
    return [RtcpReceiverReport(ssrc=ssrc, reports=blocks), cname_description(ssrc, cname)]


def sender_report(
    ssrc: int,
    blocks: tuple[RtcpReportBlock, ...],
    *,
    cname: str,
    ntp_timestamp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
) -> list[RtcpPacket]:
    """The head of a compound packet from a source that sent since the last report (RFC 3550
    §6.1, §6.4.1): SR (the RTP timestamp of the same instant as the NTP one), then SDES CNAME.
    The counts wrap at 32 bits."""
    head = RtcpSenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp_timestamp,
        rtp_timestamp=rtp_timestamp & _U32,
        packet_count=packet_count & _U32,
        octet_count=octet_count & _U32,
        reports=blocks,
    )
    return [head, cname_description(ssrc, cname)]
