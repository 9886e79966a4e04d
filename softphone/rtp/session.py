"""The per-call RTP session: one outgoing stream, one remote source, RTCP (sans-IO).

Inputs: ``send_rtp``, ``receive_datagram``, ``handle_timer``, ``bye`` (each with ``now``, monotonic
seconds); outputs: events and ``datagrams_to_send()``. No clock, socket or global random here:
SSRC, initial sequence number, timestamp base and RTCP interval jitter come from an injected
``random.Random``; NTP time is ``now + ntp_offset_s`` (the caller passes wall clock - monotonic).

What it does, and where the RFC says so:
- Sending: RFC 3550 §5.1 (random SSRC, sequence and timestamp bases; 16/32-bit wrap), with the
  packet and octet counts the SR carries (§6.4.1).
- Receiving: source validation with probation and sequence tracking (§A.1), loss per report
  interval (§A.3), interarrival jitter (§A.8), a Gilbert-model burst ratio for the E-model.
- Symmetric RTP and source latching (RFC 4961): the first address that delivers two in-sequence
  packets becomes the only one we accept from, and the one we send RTP (and RTCP) to. Only
  packets that could be the peer's latch or play from an address SDP did not name: a negotiated
  payload type (``payload_types``) and, when SDP said it, the peer's SSRC (``remote_ssrc``); and
  only within ``LATCH_WINDOW_S`` of the first packet. A window that closes without a latch
  leaves the signalled address as the only source: nobody can inject RTP later (RTP bleed).
- RTCP: compound SR or RR + SDES CNAME (§6.1) on a randomised interval (§6.2, §6.3 simplified for
  two parties: 0.5-1.5 x ``rtcp_interval_s``, the first one at half of that), RTT from LSR/DLSR
  (§6.4.1), BYE (§6.6), rtcp-mux demultiplexing (RFC 5761 §4).

The parts live beside it: reception state per remote source in rtp/source.py, report packets in
rtp/report.py, NTP time in rtp/ntp.py.

Simplifications, on purpose: one remote source at a time (a new SSRC replaces the old one, as
after a re-INVITE or a transfer); no SSRC collision handling (§8.2); no timer reconsideration.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING, Final, TypeAlias, assert_never

from softphone.rtp.errors import RtpError, RtpParseError
from softphone.rtp.ntp import ntp_middle, ntp_timestamp
from softphone.rtp.packet import (
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    RtpPacket,
    is_rtcp,
    parse_rtcp,
    plain_rtp_bytes,
)
from softphone.rtp.report import delay_since_last_sr, receiver_report, report_block, sender_report
from softphone.rtp.source import (
    RTP_SEQ_MOD,
    SOURCE_TRANSITIONS,
    Address,
    BurstCounter,
    SequenceInput,
    Source,
    SourceState,
)

if TYPE_CHECKING:
    import random

__all__ = [
    "DEFAULT_RTCP_INTERVAL_S",
    "LINK_TRANSITIONS",
    "Address",
    "ByeReceived",
    "LinkInput",
    "LinkState",
    "RtcpReportReceived",
    "RtpEvent",
    "RtpPacketReceived",
    "RtpSession",
    "SessionEvent",
    "StreamStats",
]

LATCH_PACKETS: Final = 2  # in-sequence packets from one address before we latch it
LATCH_WINDOW_S: Final = 5.0  # latching may happen this long after the first RTP packet
MAX_LATCH_CANDIDATES: Final = 16  # addresses tracked before latching (memory bound)
DEFAULT_RTCP_INTERVAL_S: Final = 5.0  # RFC 3550 §6.2 minimum interval
_U32: Final = 0xFFFF_FFFF


# --- events (past tense, frozen, compared by value) ------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RtpEvent:
    """Base class of RTP session events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacketReceived(RtpEvent):
    """A valid packet from the remote source; ``now`` is when it arrived (for the jitter buffer).

    The first packet of a source is held until the second confirms it (§A.1 probation), then both
    are reported, each with its own arrival time.
    """

    packet: RtpPacket
    address: Address
    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReportReceived(RtpEvent):
    """An SR or RR from the peer; ``rtt_ms`` when one of its blocks about us gave a round trip."""

    ssrc: int
    sender_report: bool
    report: RtcpSenderReport | RtcpReceiverReport
    rtt_ms: float | None
    address: Address
    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ByeReceived(RtpEvent):
    """RTCP BYE (RFC 3550 §6.6) for a source other than ours."""

    ssrc: int
    reason: str


# Every event a session reports: consumers match on it and end with assert_never.
SessionEvent: TypeAlias = RtpPacketReceived | RtcpReportReceived | ByeReceived


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats:
    """A snapshot of both directions. Loss counts are cumulative over the call (across SSRC
    changes); ``fraction_lost`` is the last report interval's (0..1), ``loss_percent`` cumulative.
    ``remote_*`` is the peer's view of our stream, from its last report block about us.
    """

    packets_sent: int
    octets_sent: int
    packets_received: int
    octets_received: int
    packets_expected: int
    packets_lost: int
    fraction_lost: float
    loss_percent: float
    jitter_ms: float
    rtt_ms: float | None
    burst_ratio: float
    remote_fraction_lost: float | None
    remote_packets_lost: int | None
    remote_jitter_ms: float | None
    remote_packets_expected: int | None  # of ours, by the peer's last report (§6.4.1, §A.3)
    dropped_foreign_source: int
    dropped_malformed: int
    remote_ssrc: int | None
    latched_address: Address | None

    @property
    def remote_cumulative_loss_percent(self) -> float | None:
        """Of our packets, the share the peer's last report counts lost over the whole call: its
        cumulative number lost (§6.4.1) over the number it expected (§A.3); None before its
        first report. A negative count (duplicates) is no loss."""
        if self.remote_packets_lost is None or not self.remote_packets_expected:
            return None
        return 100.0 * max(self.remote_packets_lost, 0) / self.remote_packets_expected


# --- state machines ----------------------------------------------------------------------------
class LinkState(Enum):
    UNLATCHED = auto()  # the latch window: the signalled address, or any that may latch
    LATCHED = auto()  # accept only from the latched address; send there
    SIGNALLED = auto()  # the window closed unlatched: only the signalled address, for good
    CLOSED = auto()  # we sent BYE: nothing more in or out


class LinkInput(Enum):
    SOURCE_CONFIRMED = auto()  # LATCH_PACKETS in-sequence packets from one address
    WINDOW_CLOSED = auto()  # LATCH_WINDOW_S passed since the first packet
    REMOTE_CHANGED = auto()  # new signalled addresses (re-INVITE)
    BYE_SENT = auto()


L, LI = LinkState, LinkInput
# RFC 4961 symmetric RTP + latching. A pair not listed is a bug and raises RtpError.
LINK_TRANSITIONS: Final[Mapping[tuple[LinkState, LinkInput], LinkState]] = {
    (L.UNLATCHED, LI.SOURCE_CONFIRMED): L.LATCHED,
    (L.UNLATCHED, LI.WINDOW_CLOSED): L.SIGNALLED,
    (L.UNLATCHED, LI.REMOTE_CHANGED): L.UNLATCHED,
    (L.LATCHED, LI.REMOTE_CHANGED): L.UNLATCHED,
    (L.SIGNALLED, LI.REMOTE_CHANGED): L.UNLATCHED,
    (L.UNLATCHED, LI.BYE_SENT): L.CLOSED,
    (L.LATCHED, LI.BYE_SENT): L.CLOSED,
    (L.SIGNALLED, LI.BYE_SENT): L.CLOSED,
}


# --- the session -------------------------------------------------------------------------------
class RtpSession:
    """One call's RTP/RTCP endpoint (see the module docstring).

    ``clock_rates`` maps payload type to RTP clock rate; it is needed for jitter (payload types not
    in it, e.g. telephone-event, do not count towards jitter). ``now``, when given, starts the RTCP
    timer; otherwise the first ``send_rtp`` or ``receive_datagram`` does.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        cname: str,
        remote_rtp: Address | None,
        remote_rtcp: Address | None,
        rtcp_mux: bool,
        clock_rates: Mapping[int, int] | None = None,
        rtcp_interval_s: float = DEFAULT_RTCP_INTERVAL_S,
        ntp_offset_s: float = 0.0,
        now: float | None = None,
        ssrc: int | None = None,
        payload_types: Collection[int] | None = None,
        remote_ssrc: int | None = None,
    ) -> None:
        self._rng = rng
        self.cname = cname
        # RFC 3550 §5.1: SSRC, first sequence number and timestamp base are random (``ssrc``: one
        # drawn already, by a caller that needed it before the session was made).
        self.ssrc: int = rng.getrandbits(32) if ssrc is None else ssrc
        self._next_seq = rng.getrandbits(16)
        self._first_seq = self._next_seq
        self._timestamp_base = rng.getrandbits(32)
        self._remote_rtp = remote_rtp
        self._remote_rtcp = remote_rtcp
        self._rtcp_mux = rtcp_mux
        self._clock_rates: dict[int, int] = dict(clock_rates or {})
        self._rtcp_interval_s = rtcp_interval_s
        self._ntp_offset_s = ntp_offset_s
        self.link = LinkState.UNLATCHED
        self._latched: Address | None = None
        self._rtcp_from: Address | None = None  # where the peer's RTCP comes from (symmetric RTCP)
        self._candidates: dict[Address, tuple[int, int, int]] = {}  # addr -> (ssrc, seq, run)
        # What may latch (module docstring): None is anything
        self._latch_payload_types = None if payload_types is None else frozenset(payload_types)
        self._latch_ssrc = remote_ssrc
        self._window_ends: float | None = None  # set by the first packet after set_remote
        self._outbox: list[tuple[bytes, Address, bool]] = []
        self._timer_at: float | None = None
        # sending
        self._packets_sent = 0
        self._octets_sent = 0
        # (timestamp, the instant it stands for, clock_rate) of the last packet sent
        self._last_sent: tuple[int, float, int] | None = None
        self._sent_since_report = False
        # receiving
        self._source: Source | None = None
        self._packets_received = 0
        self._octets_received = 0
        self._retired_expected = 0
        self._retired_lost = 0
        self._fraction_lost = 0.0
        self._burst = BurstCounter()
        self._peer_sr: tuple[int, int, float] | None = None  # (ssrc, LSR, arrival)
        self.remote_cname: str | None = None
        self._dropped_foreign = 0
        self._dropped_malformed = 0
        # the peer's view of our stream
        self._rtt_s: float | None = None
        self._remote_block: RtcpReportBlock | None = None
        if now is not None:
            self._start_timer(now)

    # --- configuration -------------------------------------------------------------------------
    def set_clock_rates(self, clock_rates: Mapping[int, int]) -> None:
        self._clock_rates = dict(clock_rates)

    def set_latch_filter(
        self, *, payload_types: Collection[int] | None, remote_ssrc: int | None = None
    ) -> None:
        """What SDP negotiated: only such packets may latch (module docstring)."""
        self._latch_payload_types = None if payload_types is None else frozenset(payload_types)
        self._latch_ssrc = remote_ssrc

    def set_remote(
        self, *, remote_rtp: Address | None, remote_rtcp: Address | None, rtcp_mux: bool
    ) -> None:
        """New signalled addresses (re-INVITE): unlatch, so the peer's new address can latch."""
        self._apply(LinkInput.REMOTE_CHANGED)
        self._remote_rtp, self._remote_rtcp, self._rtcp_mux = remote_rtp, remote_rtcp, rtcp_mux
        self._latched = None
        self._rtcp_from = None
        self._candidates.clear()
        self._window_ends = None

    def restart_sequence(self, sequence: int) -> None:
        """The sender goes on at ``sequence`` on purpose (RTSP PLAY after PAUSE: RTP-Info's
        ``seq``, RFC 2326 §12.33; a live source moved on meanwhile). The numbers it skipped were
        never sent: count from ``sequence`` afresh, as §A.1 does when a source restarts, so that
        they are neither reported lost (RR) nor counted in :meth:`stats`."""
        source = self._source
        if source is None or source.state is not SourceState.VALID:
            return  # nothing counted yet: the next packet starts the count anyway
        self._retire(source)
        source.init_seq(sequence % RTP_SEQ_MOD, held=0)
        self._burst.restart(source.extended_max - 1)

    def _apply(self, event: LinkInput) -> None:
        try:
            self.link = LINK_TRANSITIONS[(self.link, event)]
        except KeyError:
            raise RtpError(f"{event.name} is not allowed in link state {self.link.name}") from None

    # --- sending -------------------------------------------------------------------------------
    def send_rtp(
        self,
        payload: bytes,
        *,
        payload_type: int,
        media_ticks: int,
        marker: bool = False,
        clock_rate: int,
        now: float,
        sampled_at: float | None = None,
    ) -> None:
        """Queue one RTP packet; its timestamp is the random base + ``media_ticks`` (mod 2^32).

        ``sampled_at``: the instant (same clock as ``now``) the packet's timestamp stands for,
        when it is not ``now``: a video picture is captured, then encoded and sent tens of
        milliseconds later. Sender reports map timestamps from that instant (RFC 3550 §6.4.1:
        the SR's RTP timestamp is the one of the NTP instant), so the peer lines our audio and
        video up by when they were captured, not by how long the encoder took.
        Nothing is queued when there is nowhere to send yet, or after ``bye``.
        """
        if self.link is LinkState.CLOSED:
            return
        self._start_timer(now)
        destination = self._latched or self._remote_rtp
        if destination is None:
            return
        timestamp = (self._timestamp_base + media_ticks) & _U32
        data = plain_rtp_bytes(
            payload_type=payload_type,
            sequence=self._next_seq,
            timestamp=timestamp,
            ssrc=self.ssrc,
            marker=marker,
            payload=payload,
        )
        self._next_seq = (self._next_seq + 1) % RTP_SEQ_MOD
        self._outbox.append((data, destination, False))
        self._packets_sent += 1
        self._octets_sent += len(payload)  # §6.4.1: payload octets only
        self._last_sent = (timestamp, now if sampled_at is None else sampled_at, clock_rate)
        self._sent_since_report = True

    def send_raw(self, data: bytes, *, rtcp: bool) -> None:
        """Queue a datagram made elsewhere to where this session's RTP (or RTCP) goes: a packet
        of ours sent again for a NACK (RFC 4585 §6.2.1: as it was), or a compound feedback
        packet (RFC 4585 §3.1). Nothing is queued after ``bye`` or with nowhere to send."""
        if self.link is LinkState.CLOSED:
            return
        destination = self._rtcp_destination() if rtcp else self._latched or self._remote_rtp
        if destination is not None:
            self._outbox.append((data, destination, rtcp and not self._rtcp_mux))

    def datagrams_to_send(self) -> list[tuple[bytes, Address, bool]]:
        """Drain the output: (data, destination, via_rtcp_socket). With rtcp-mux it is all False."""
        out, self._outbox = self._outbox, []
        return out

    # --- receiving -----------------------------------------------------------------------------
    def receive_datagram(
        self, data: bytes, addr: Address, now: float, *, on_rtcp_port: bool = False
    ) -> list[SessionEvent]:
        """One datagram from the RTP socket (or the RTCP one with ``on_rtcp_port``). Never raises."""
        if self.link is LinkState.CLOSED:
            return []
        self._start_timer(now)
        if on_rtcp_port or is_rtcp(data):  # RFC 5761 §4
            return self._receive_rtcp(data, addr, now, on_rtcp_port=on_rtcp_port)
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self._dropped_malformed += 1
            return []
        if self.link is LinkState.UNLATCHED:
            if self._window_ends is None:
                self._window_ends = now + LATCH_WINDOW_S
            elif now >= self._window_ends:
                self._apply(LinkInput.WINDOW_CLOSED)
        match self.link:
            case LinkState.LATCHED:
                accepted = addr == self._latched
            case LinkState.SIGNALLED:
                accepted = addr == self._remote_rtp
            case LinkState.UNLATCHED:
                accepted = addr == self._remote_rtp or self._may_latch(packet)
            case LinkState.CLOSED:  # pragma: no cover - returned above
                accepted = False
            case _:
                assert_never(self.link)
        if not accepted:
            self._dropped_foreign += 1
            return []
        events = self._receive_rtp(packet, addr, now)
        if self.link is LinkState.UNLATCHED and self._may_latch(packet):
            self._consider_latching(packet, addr)
        return events

    def _may_latch(self, packet: RtpPacket) -> bool:
        types, ssrc = self._latch_payload_types, self._latch_ssrc
        return (types is None or packet.payload_type in types) and (
            ssrc is None or packet.ssrc == ssrc
        )

    def _consider_latching(self, packet: RtpPacket, addr: Address) -> None:
        previous = self._candidates.get(addr)
        run = 1
        if (
            previous is not None
            and previous[0] == packet.ssrc
            and packet.sequence == (previous[1] + 1) % RTP_SEQ_MOD
        ):
            run = previous[2] + 1
        if run >= LATCH_PACKETS:
            self._apply(LinkInput.SOURCE_CONFIRMED)
            self._latched = addr
            self._candidates.clear()
            return
        if addr not in self._candidates and len(self._candidates) >= MAX_LATCH_CANDIDATES:
            self._candidates.clear()
        self._candidates[addr] = (packet.ssrc, packet.sequence, run)

    def _receive_rtp(self, packet: RtpPacket, addr: Address, now: float) -> list[SessionEvent]:
        source = self._source
        if source is None or source.ssrc != packet.ssrc:
            # A new SSRC (first packet, or the peer re-INVITEd / transferred): restart tracking.
            if source is not None:
                self._retire(source)
            self._source = Source(packet.ssrc, packet, addr, now)
            return []
        seq_input = source.classify(packet.sequence)
        source.state = SOURCE_TRANSITIONS[(source.state, seq_input)]
        events: list[SessionEvent] = []
        match seq_input:
            case SequenceInput.SEQUENTIAL:
                source.init_seq(packet.sequence, held=1)
                assert source.held is not None
                held, held_addr, held_now = source.held
                source.held = None
                self._burst.restart(source.extended_max - 1)
                events.append(self._deliver(source, held, held_addr, held_now))
                source.received += 1
            case SequenceInput.NOT_SEQUENTIAL:
                source.max_seq = packet.sequence
                source.held = (packet, addr, now)  # the older held packet is never confirmed
                return []
            case SequenceInput.IN_ORDER:
                if packet.sequence < source.max_seq:
                    source.cycles += RTP_SEQ_MOD  # wrapped
                source.max_seq = packet.sequence
                source.received += 1
            case SequenceInput.MISORDERED:
                source.received += 1
            case SequenceInput.JUMP:
                source.bad_seq = (packet.sequence + 1) % RTP_SEQ_MOD
                return []
            case SequenceInput.RESTART:  # "assume that the other side restarted without telling us"
                self._retire(source)
                source.init_seq(packet.sequence, held=0)
                source.received += 1
                self._burst.restart(source.extended_max)
        self._burst.received(source.extended(packet.sequence), source.extended_max)
        events.append(self._deliver(source, packet, addr, now))
        return events

    def _deliver(
        self, source: Source, packet: RtpPacket, addr: Address, now: float
    ) -> RtpPacketReceived:
        self._packets_received += 1
        self._octets_received += len(packet.payload)
        source.update_jitter(packet, now, self._clock_rates.get(packet.payload_type))
        return RtpPacketReceived(packet=packet, address=addr, now=now)

    def _retire(self, source: Source) -> None:
        """Fold a source's loss figures into the call totals before it is replaced or re-synced."""
        self._retired_expected += source.expected
        self._retired_lost += (
            source.expected - source.received if source.state is SourceState.VALID else 0
        )

    def _receive_rtcp(
        self, data: bytes, addr: Address, now: float, *, on_rtcp_port: bool
    ) -> list[SessionEvent]:
        try:
            packets = parse_rtcp(data)
        except RtpParseError:
            self._dropped_malformed += 1
            return []
        trusted = self._latched or (self._remote_rtp if self.link is LinkState.SIGNALLED else None)
        if trusted is not None:
            if addr[0] != trusted[0]:  # RTCP may come from another port of the peer's host
                self._dropped_foreign += 1
                return []
            if on_rtcp_port:
                self._rtcp_from = addr
        events: list[SessionEvent] = []
        for packet in packets:
            match packet:
                case RtcpSenderReport() | RtcpReceiverReport() if packet.ssrc == self.ssrc:
                    pass  # our own report reflected back (a loop): nothing to learn
                case RtcpSenderReport():
                    # §6.4.1: keep the middle 32 bits of its NTP time and when it arrived (LSR/DLSR).
                    self._peer_sr = (packet.ssrc, ntp_middle(packet.ntp_timestamp), now)
                    events.append(self._report_received(packet, addr, now))
                case RtcpReceiverReport():
                    events.append(self._report_received(packet, addr, now))
                case RtcpSourceDescription():
                    for chunk in packet.chunks:
                        if self._source is not None and chunk.ssrc == self._source.ssrc:
                            self.remote_cname = chunk.cname
                case RtcpBye():
                    for ssrc in packet.sources:
                        if ssrc == self.ssrc:
                            continue
                        events.append(ByeReceived(ssrc=ssrc, reason=packet.reason))
                        if self._source is not None and self._source.ssrc == ssrc:
                            self._retire(self._source)
                            self._source = None
                case RtcpUnknown():
                    pass  # APP, feedback, XR: parsed, not used
                case _:
                    assert_never(packet)
        return events

    def _report_received(
        self, report: RtcpSenderReport | RtcpReceiverReport, addr: Address, now: float
    ) -> RtcpReportReceived:
        rtt_ms: float | None = None
        for block in report.reports:
            if block.ssrc != self.ssrc:
                continue
            self._remote_block = block
            if block.lsr:
                # §6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s, A = our NTP time of arrival.
                arrival = ntp_middle(ntp_timestamp(now + self._ntp_offset_s))
                rtt = (arrival - block.lsr - block.dlsr) & _U32
                if rtt < 0x8000_0000:  # a negative result means clocks or peers misbehave
                    self._rtt_s = rtt / 65536.0
                    rtt_ms = self._rtt_s * 1000.0
        return RtcpReportReceived(
            ssrc=report.ssrc,
            sender_report=isinstance(report, RtcpSenderReport),
            report=report,
            rtt_ms=rtt_ms,
            address=addr,
            now=now,
        )

    # --- RTCP timer and reports ----------------------------------------------------------------
    def _start_timer(self, now: float) -> None:
        if self._timer_at is None and self.link is not LinkState.CLOSED:
            # §6.3.1: the first report waits half the (randomised) interval.
            self._timer_at = now + 0.5 * self._next_interval_s()

    def _next_interval_s(self) -> float:
        return self._rtcp_interval_s * self._rng.uniform(0.5, 1.5)  # §6.3.1 randomisation

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should run next (the RTCP report), None when nothing is due."""
        return self._timer_at

    def handle_timer(self, now: float) -> list[SessionEvent]:
        if self._timer_at is None or now < self._timer_at:
            return []
        self._queue_rtcp(self._reports(now))
        self._timer_at = now + self._next_interval_s()
        return []

    def bye(self, now: float, reason: str = "") -> None:
        """Queue a final compound SR/RR + SDES + BYE (§6.6) and stop; later calls do nothing."""
        if self.link is LinkState.CLOSED:
            return
        self._queue_rtcp([*self._reports(now), RtcpBye(sources=(self.ssrc,), reason=reason)])
        self._apply(LinkInput.BYE_SENT)
        self._timer_at = None

    def _reports(self, now: float) -> list[RtcpPacket]:
        """The head of a compound packet (§6.1): SR if we sent since the last report, else RR,
        then SDES with our CNAME (rtp/report.py builds them)."""
        blocks: tuple[RtcpReportBlock, ...] = ()
        source = self._source
        if (
            source is not None
            and source.state is SourceState.VALID
            and source.received > source.received_prior
        ):
            blocks = (self._report_block(source, now),)
        sent_since_report, self._sent_since_report = self._sent_since_report, False
        if sent_since_report and self._last_sent is not None:
            timestamp, sent_at, clock_rate = self._last_sent
            return sender_report(
                self.ssrc,
                blocks,
                cname=self.cname,
                ntp_timestamp=ntp_timestamp(now + self._ntp_offset_s),
                # §6.4.1: the RTP timestamp of the same instant as the NTP timestamp
                rtp_timestamp=timestamp + round((now - sent_at) * clock_rate),
                packet_count=self._packets_sent,
                octet_count=self._octets_sent,
            )
        return receiver_report(self.ssrc, blocks, cname=self.cname)

    def _report_block(self, source: Source, now: float) -> RtcpReportBlock:
        """The block about ``source`` (§A.3 loss over the interval, §6.4.1 LSR/DLSR); the
        interval ends here."""
        lsr = dlsr = 0
        if self._peer_sr is not None and self._peer_sr[0] == source.ssrc:
            _, lsr, arrival = self._peer_sr
            dlsr = delay_since_last_sr(arrival, now)
        block = report_block(source, lsr=lsr, dlsr=dlsr)
        source.expected_prior, source.received_prior = source.expected, source.received
        self._fraction_lost = block.fraction_lost / 256.0
        return block

    def _queue_rtcp(self, packets: list[RtcpPacket]) -> None:
        destination = self._rtcp_destination()
        if destination is not None:
            self._outbox.append((b"".join(map(bytes, packets)), destination, not self._rtcp_mux))

    def _rtcp_destination(self) -> Address | None:
        if self._rtcp_mux:
            return self._latched or self._remote_rtp
        if self._latched is not None:
            return self._rtcp_from or (self._latched[0], self._latched[1] + 1)
        if self._remote_rtcp is not None:
            return self._remote_rtcp
        if self._remote_rtp is not None:  # RFC 3550 §11: RTCP on the next higher port
            return (self._remote_rtp[0], self._remote_rtp[1] + 1)
        return None

    # --- statistics ----------------------------------------------------------------------------
    def stats(self, now: float) -> StreamStats:
        """A snapshot; reading it changes nothing (``now`` is accepted for the seam, unused)."""
        source = self._source
        expected = self._retired_expected
        lost = self._retired_lost
        jitter_ms = 0.0
        highest: int | None = None
        if source is not None and source.state is SourceState.VALID:
            expected += source.expected
            lost += source.expected - source.received
            highest = source.extended_max
            if source.jitter_rate:
                jitter_ms = source.jitter / source.jitter_rate * 1000.0
        lost = max(lost, 0)
        block = self._remote_block
        remote_jitter_ms: float | None = None
        if block is not None and self._last_sent is not None:
            remote_jitter_ms = block.jitter / self._last_sent[2] * 1000.0
        # §A.3: expected = extended highest sequence received - base + 1. The peer's extended
        # highest counts its wraps from the first packet it saw, which is our first one unless
        # that was lost (then the count is short by the few lost before it).
        remote_expected = (
            None if block is None else max(0, block.highest_sequence - self._first_seq + 1)
        )
        return StreamStats(
            packets_sent=self._packets_sent,
            octets_sent=self._octets_sent,
            packets_received=self._packets_received,
            octets_received=self._octets_received,
            packets_expected=expected,
            packets_lost=lost,
            fraction_lost=self._fraction_lost,
            loss_percent=100.0 * lost / expected if expected else 0.0,
            jitter_ms=jitter_ms,
            rtt_ms=None if self._rtt_s is None else self._rtt_s * 1000.0,
            burst_ratio=self._burst.burst_ratio(highest),
            remote_fraction_lost=None if block is None else block.fraction_lost / 256.0,
            remote_packets_lost=None if block is None else block.packets_lost,
            remote_jitter_ms=remote_jitter_ms,
            remote_packets_expected=remote_expected,
            dropped_foreign_source=self._dropped_foreign,
            dropped_malformed=self._dropped_malformed,
            remote_ssrc=None if source is None else source.ssrc,
            latched_address=self._latched,
        )
