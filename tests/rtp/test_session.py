"""RtpSession: sequence/timestamp wrap, loss, jitter, burst ratio, RTT, latching, mux, RTCP timing.

Two sessions talk over a fake network (``Loopback``) whose clock moves by argument from one
event to the next; single-session tests feed hand-built packets with scripted arrival times.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.rtp.errors import RtpError
from softphone.rtp.packet import (
    RtcpBye,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpPacket,
    parse_rtcp,
)
from softphone.rtp.session import (
    LATCH_WINDOW_S,
    LINK_TRANSITIONS,
    Address,
    ByeReceived,
    LinkInput,
    LinkState,
    RtcpReportReceived,
    RtpEvent,
    RtpPacketReceived,
    RtpSession,
)

A_RTP: Address = ("127.0.0.1", 40000)
A_RTCP: Address = ("127.0.0.1", 40001)
B_RTP: Address = ("127.0.0.1", 50000)
B_RTCP: Address = ("127.0.0.1", 50001)
PEER: Address = ("127.0.0.1", 42000)  # where hand-built packets come from
PCMU = {0: 8000}
FRAME = b"\xff" * 160
PEER_SSRC = 0x0B0B0B0B


def make_session(seed: int = 1, **kwargs: object) -> RtpSession:
    options: dict[str, object] = {
        "rng": random.Random(seed),
        "cname": f"user{seed}@127.0.0.1",
        "remote_rtp": PEER,
        "remote_rtcp": None,
        "rtcp_mux": False,
        "clock_rates": PCMU,
    }
    options.update(kwargs)
    return RtpSession(**options)  # type: ignore[arg-type]


def rtp(seq: int, ts: int | None = None, *, ssrc: int = PEER_SSRC, pt: int = 0) -> bytes:
    timestamp = (seq * 160 if ts is None else ts) % 2**32
    return bytes(
        RtpPacket(
            payload_type=pt, sequence=seq % 65536, timestamp=timestamp, ssrc=ssrc, payload=FRAME
        )
    )


def feed(session: RtpSession, seqs: list[int], *, start: float = 0.0, **kw: int) -> list[RtpEvent]:
    """Packets with the given sequence numbers, arriving 20 ms apart in list order."""
    events: list[RtpEvent] = []
    for i, seq in enumerate(seqs):
        events += session.receive_datagram(rtp(seq, **kw), PEER, start + 0.02 * i)
    return events


def sequences(events: list[RtpEvent]) -> list[int]:
    return [e.packet.sequence for e in events if isinstance(e, RtpPacketReceived)]


def report_block(session: RtpSession, now: float) -> RtcpReportBlock:
    """Fire the RTCP timer and return the one report block of the compound it sends."""
    session.handle_timer(max(now, session.get_timer() or now))
    [(data, _, _)] = session.datagrams_to_send()
    head = parse_rtcp(data)[0]
    assert isinstance(head, RtcpSenderReport | RtcpReceiverReport)
    [block] = head.reports
    return block


# --- a fake network between two sessions -------------------------------------------------------------
@dataclass
class Loopback:
    """A and B on 127.0.0.1 with per-direction delays; ``drop_ab(i)`` drops A's i-th RTP packet."""

    a: RtpSession
    b: RtpSession
    delay_ab: float = 0.0
    delay_ba: float = 0.0
    drop_ab: Callable[[int], bool] = lambda i: False
    events_a: list[RtpEvent] = field(default_factory=list)
    events_b: list[RtpEvent] = field(default_factory=list)
    sent_ab: list[tuple[float, bytes, bool]] = field(default_factory=list)
    _flight: list[tuple[float, int, str, bytes, Address, bool]] = field(default_factory=list)
    _count: int = 0
    _rtp_from_a: int = 0

    def _collect(self, now: float) -> None:
        for name, session in (("a", self.a), ("b", self.b)):
            for data, dest, via_rtcp in session.datagrams_to_send():
                if name == "a":
                    assert dest in (B_RTP, B_RTCP)
                    source, delay, to = (A_RTCP if via_rtcp else A_RTP), self.delay_ab, "b"
                    self.sent_ab.append((now, data, via_rtcp))
                    if not via_rtcp and dest == B_RTP and data[1] < 192:
                        self._rtp_from_a += 1
                        if self.drop_ab(self._rtp_from_a - 1):
                            continue
                else:
                    assert dest in (A_RTP, A_RTCP)
                    source, delay, to = (B_RTCP if via_rtcp else B_RTP), self.delay_ba, "a"
                self._count += 1
                on_rtcp_port = dest in (A_RTCP, B_RTCP)
                heapq.heappush(
                    self._flight, (now + delay, self._count, to, data, source, on_rtcp_port)
                )

    def run(self, until: float, *, media: bool = True, ptime: float = 0.02) -> None:
        tick = 0
        while True:
            times = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            if media:
                times.append(tick * ptime)
            if self._flight:
                times.append(self._flight[0][0])
            now = min(times)
            if now > until:
                return
            if media and tick * ptime <= now:
                for session in (self.a, self.b):
                    session.send_rtp(
                        FRAME, payload_type=0, media_ticks=tick * 160, clock_rate=8000, now=now
                    )
                tick += 1
            for session in (self.a, self.b):
                if (at := session.get_timer()) is not None and at <= now:
                    session.handle_timer(now)
            while self._flight and self._flight[0][0] <= now:
                _, _, to, data, source, on_rtcp_port = heapq.heappop(self._flight)
                target, sink = (self.a, self.events_a) if to == "a" else (self.b, self.events_b)
                sink += target.receive_datagram(data, source, now, on_rtcp_port=on_rtcp_port)
            self._collect(now)


def pair(**kwargs: object) -> Loopback:
    mux = bool(kwargs.pop("rtcp_mux", False))
    a = make_session(1, remote_rtp=B_RTP, remote_rtcp=None if mux else B_RTCP, rtcp_mux=mux)
    b = make_session(2, remote_rtp=A_RTP, remote_rtcp=None if mux else A_RTCP, rtcp_mux=mux)
    return Loopback(a, b, **kwargs)  # type: ignore[arg-type]


# --- sending ---------------------------------------------------------------------------------------
def test_sender_randomises_bases_and_wraps_sequence_and_timestamp() -> None:
    # Find a seed whose random first sequence number is just below the wrap.
    for seed in range(100_000):
        session = make_session(seed)
        session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=0.0)
        first = RtpPacket.parse(session.datagrams_to_send()[0][0])
        if first.sequence >= 65533:
            break
    base_ts = first.timestamp
    ticks = [
        0,
        2**32 - base_ts - 160,
        2**32 - base_ts,
        2**32 - base_ts + 160,
        2**32 - base_ts + 320,
    ]
    for ticks_i in ticks[1:]:
        session.send_rtp(FRAME, payload_type=0, media_ticks=ticks_i, clock_rate=8000, now=0.02)
    packets = [RtpPacket.parse(d) for d, _, _ in session.datagrams_to_send()]
    assert [p.sequence for p in packets] == [(first.sequence + i) % 65536 for i in range(1, 5)]
    assert 0 in [p.sequence for p in packets]  # it wrapped
    assert [p.timestamp for p in packets] == [2**32 - 160, 0, 160, 320]
    assert {p.ssrc for p in packets} == {first.ssrc} == {session.ssrc}
    stats = session.stats(0.02)
    assert (stats.packets_sent, stats.octets_sent) == (5, 5 * 160)


def test_two_seeds_give_different_ssrc_and_bases() -> None:
    firsts = []
    for seed in (1, 2):
        session = make_session(seed)
        session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=0.0)
        firsts.append(RtpPacket.parse(session.datagrams_to_send()[0][0]))
    assert firsts[0].ssrc != firsts[1].ssrc
    assert (firsts[0].sequence, firsts[0].timestamp) != (firsts[1].sequence, firsts[1].timestamp)


def test_nothing_is_sent_without_a_destination() -> None:
    session = make_session(remote_rtp=None)
    session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=0.0)
    assert session.datagrams_to_send() == []
    assert session.stats(0.0).packets_sent == 0


# --- receiving: A.1 sequence tracking --------------------------------------------------------------
def test_first_packet_is_held_until_the_second_confirms_the_source() -> None:
    session = make_session()
    assert session.receive_datagram(rtp(10), PEER, 1.0) == []  # probation
    events = session.receive_datagram(rtp(11), PEER, 1.02)
    assert [(sequences([e]), e.now) for e in events if isinstance(e, RtpPacketReceived)] == [
        ([10], 1.0),
        ([11], 1.02),
    ]
    stats = session.stats(1.02)
    assert (stats.packets_received, stats.packets_expected, stats.packets_lost) == (2, 2, 0)
    assert stats.remote_ssrc == PEER_SSRC


def test_probation_restarts_on_a_gap() -> None:
    session = make_session()
    assert feed(session, [10, 12]) == []  # 10 is never confirmed
    assert sequences(feed(session, [13, 14], start=1.0)) == [12, 13, 14]


def test_sequence_wrap_extends_the_highest_sequence() -> None:
    session = make_session()
    seqs = [65530, 65531, 65532, 65533, 65535, 0, 1, 3, 4, 5]  # 65534 and 2 lost
    assert sequences(feed(session, seqs)) == seqs
    stats = session.stats(1.0)
    assert (stats.packets_expected, stats.packets_received, stats.packets_lost) == (12, 10, 2)
    block = report_block(session, 1.0)
    assert block.highest_sequence == 65536 + 5  # one cycle
    assert (block.packets_lost, block.fraction_lost) == (2, 2 * 256 // 12)


def test_duplicates_and_reordering_are_delivered_and_not_losses() -> None:
    session = make_session()
    seqs = [100, 101, 103, 102, 104, 104, 106, 105]
    assert sequences(feed(session, seqs)) == seqs
    stats = session.stats(1.0)
    assert (stats.packets_expected, stats.packets_lost) == (7, 0)  # the duplicate offsets nothing
    assert report_block(session, 1.0).packets_lost == -1  # RFC 3550: duplicates make it negative


def test_peer_restart_with_a_big_jump_resyncs_after_two_packets() -> None:
    session = make_session()
    assert sequences(feed(session, [100, 101, 102])) == [100, 101, 102]
    assert feed(session, [9000], start=1.0) == []  # a jump alone is dropped (bad_seq)
    assert sequences(feed(session, [9001, 9002], start=1.1)) == [9001, 9002]
    stats = session.stats(2.0)
    # 100-102 then a fresh start at 9001: the jump is not counted as 8898 lost packets.
    assert (stats.packets_expected, stats.packets_received, stats.packets_lost) == (5, 5, 0)


def test_a_skip_announced_after_an_rtsp_pause_is_not_reported_lost() -> None:
    """PLAY after PAUSE on a live stream goes on at RTP-Info's seq: announced, the skipped
    numbers are neither in the stats nor in the receiver report; unannounced, they would be."""
    for announced in (True, False):
        session = make_session()
        feed(session, list(range(100, 110)))
        if announced:
            session.restart_sequence(700)
        feed(session, list(range(700, 710)), start=5.0)
        stats = session.stats(6.0)
        lost = 0 if announced else 590
        assert (stats.packets_received, stats.packets_lost) == (20, lost)
        assert stats.packets_expected == 20 + lost
        assert report_block(session, 6.0).packets_lost == lost


def test_new_ssrc_from_the_latched_address_restarts_tracking() -> None:
    session = make_session()
    feed(session, [1, 2, 3, 5])  # one lost
    assert session.stats(0.1).latched_address == PEER
    assert session.receive_datagram(rtp(7000, ssrc=0xC0FFEE), PEER, 1.0) == []  # probation
    assert sequences(session.receive_datagram(rtp(7001, ssrc=0xC0FFEE), PEER, 1.02)) == [7000, 7001]
    stats = session.stats(1.1)
    assert stats.remote_ssrc == 0xC0FFEE
    assert stats.latched_address == PEER and stats.dropped_foreign_source == 0
    assert (stats.packets_expected, stats.packets_received, stats.packets_lost) == (7, 6, 1)


# --- loss per interval, jitter, burst ratio --------------------------------------------------------
def test_fraction_lost_is_per_report_interval_and_loss_percent_cumulative() -> None:
    session = make_session()
    first = [s for s in range(1000, 1100) if s % 10 != 5]  # 10 of 100 lost
    feed(session, first)
    block = report_block(session, 2.0)
    assert (block.fraction_lost, block.packets_lost) == (10 * 256 // 100, 10)
    assert session.stats(2.0).fraction_lost == pytest.approx(25 / 256)
    feed(session, list(range(1100, 1200)), start=2.0)  # a clean interval
    block = report_block(session, 10.0)
    assert (block.fraction_lost, block.packets_lost) == (0, 10)
    stats = session.stats(10.0)
    assert stats.fraction_lost == 0.0
    assert stats.loss_percent == pytest.approx(100 * 10 / 200)


def a8_jitter(arrivals_s: list[float], timestamps: list[int], rate: int) -> float:
    """RFC 3550 §A.8 as written there: integer transit in timestamp units, J += (|D| - J)/16."""
    jitter = 0.0
    previous: int | None = None
    for arrival, ts in zip(arrivals_s, timestamps, strict=True):
        transit = round(arrival * rate) - ts
        if previous is not None:
            jitter += (abs(transit - previous) - jitter) / 16
        previous = transit
    return jitter


def test_interarrival_jitter_matches_rfc3550_a8() -> None:
    session = make_session()
    rng = random.Random(7)
    delays_ticks = [rng.randrange(0, 400) for _ in range(200)]  # 0-50 ms network delay at 8 kHz
    timestamps = [(4_294_960_000 + 160 * i) % 2**32 for i in range(200)]  # crosses the 2^32 wrap
    arrivals = [(160 * i + d) / 8000 for i, d in enumerate(delays_ticks)]
    for i, (ts, at) in enumerate(zip(timestamps, arrivals, strict=True)):
        session.receive_datagram(rtp(500 + i, ts), PEER, 10.0 + at)
    unwrapped = [4_294_960_000 + 160 * i for i in range(200)]
    expected = a8_jitter([10.0 + a for a in arrivals], unwrapped, 8000)
    assert expected > 50  # the scenario really has jitter
    assert session.stats(20.0).jitter_ms == pytest.approx(expected / 8, rel=1e-6)
    assert report_block(session, 20.0).jitter == int(expected)


def test_jitter_converges_to_the_alternating_delay() -> None:
    # Delay alternates 0 / 10 ms: |D| = 80 ticks every packet, so J = 80 (1 - (15/16)^(n-1)).
    session = make_session()
    for i in range(60):
        session.receive_datagram(rtp(i), PEER, 0.02 * i + (0.01 if i % 2 else 0.0))
    assert session.stats(2.0).jitter_ms == pytest.approx(80 * (1 - (15 / 16) ** 59) / 8)


def test_jitter_ignores_payload_types_without_a_clock_rate() -> None:
    session = make_session(clock_rates={0: 8000})
    for i in range(20):
        pt = 101 if 5 <= i < 10 else 0  # telephone-event packets repeat a timestamp
        ts = 800 if pt == 101 else 160 * i
        session.receive_datagram(rtp(i, ts, pt=pt), PEER, 0.02 * i)
    assert session.stats(1.0).jitter_ms == pytest.approx(0.0, abs=1e-9)


def gilbert_burst_ratio(received: list[bool]) -> float:
    counts = {(a, b): 0 for a in (True, False) for b in (True, False)}
    for before, after in itertools.pairwise(received):
        counts[(before, after)] += 1
    p = counts[(True, False)] / (counts[(True, True)] + counts[(True, False)])
    q = counts[(False, True)] / (counts[(False, True)] + counts[(False, False)])
    return 1 / (p + q)


def test_burst_ratio_from_bursty_loss() -> None:
    pattern = [True] * 1000
    for start in (100, 300, 500, 700, 900):
        pattern[start : start + 4] = [False] * 4  # five bursts of four
    session = make_session()
    feed(session, [2000 + i for i, ok in enumerate(pattern) if ok])
    stats = session.stats(30.0)
    assert stats.packets_lost == 20
    assert stats.burst_ratio == pytest.approx(gilbert_burst_ratio(pattern))
    assert stats.burst_ratio > 3.5  # p ~ 0.005, q = 0.25


def test_burst_ratio_is_one_for_isolated_losses_and_ignores_reordering() -> None:
    session = make_session()
    seqs = list(range(300))
    seqs[50], seqs[51] = seqs[51], seqs[50]  # reordered, not lost
    feed(session, seqs)
    assert session.stats(10.0).burst_ratio == 1.0
    rng = random.Random(5)
    random_loss = [rng.random() >= 0.2 for _ in range(5000)] + [True]  # independent 20 % loss
    session = make_session()
    feed(session, [i for i, ok in enumerate(random_loss) if ok])
    burst_ratio = session.stats(200.0).burst_ratio
    assert burst_ratio == pytest.approx(gilbert_burst_ratio(random_loss))
    assert burst_ratio == pytest.approx(1.0, abs=0.1)  # p + q = 1 for random loss
    isolated = [i % 4 != 3 for i in range(400)] + [True]  # never two in a row: q = 1
    session = make_session()
    feed(session, [i for i, ok in enumerate(isolated) if ok])
    assert session.stats(10.0).burst_ratio == pytest.approx(1 / (1 / 3 + 1))


# --- two sessions: RTT, remote view, latching, mux -------------------------------------------------
def test_rtt_from_sr_rr_exchange_with_known_delays() -> None:
    link = pair(delay_ab=0.030, delay_ba=0.050)
    link.run(until=20.0)
    for session in (link.a, link.b):
        rtt = session.stats(20.0).rtt_ms
        assert rtt == pytest.approx(80.0, abs=0.05)  # NTP middle-32 resolution is 15 us
    reports = [e for e in link.events_a if isinstance(e, RtcpReportReceived)]
    assert reports and all(e.sender_report and e.ssrc == link.b.ssrc for e in reports)
    assert any(e.rtt_ms is not None for e in reports)
    assert link.a.stats(20.0).jitter_ms == pytest.approx(0.0, abs=1e-3)
    assert (link.a.remote_cname, link.b.remote_cname) == ("user2@127.0.0.1", "user1@127.0.0.1")


def test_peer_reports_our_loss_back_to_us() -> None:
    link = pair(delay_ab=0.01, delay_ba=0.01, drop_ab=lambda i: i % 10 == 5)
    link.run(until=30.0)
    a, b = link.a.stats(30.0), link.b.stats(30.0)
    assert b.loss_percent == pytest.approx(10.0, abs=0.3)
    assert a.remote_fraction_lost == pytest.approx(0.1, abs=0.01)
    assert a.remote_packets_lost == pytest.approx(b.packets_lost, abs=30)  # B reported a while ago
    # what B expected of ours at its report: A's cumulative loss % is the peer's count over it
    assert a.remote_packets_expected == pytest.approx(b.packets_expected, abs=300)
    assert a.remote_cumulative_loss_percent == pytest.approx(10.0, abs=0.5)
    assert b.remote_cumulative_loss_percent == 0.0  # nothing of B's was dropped
    assert replace(a, remote_packets_lost=-2).remote_cumulative_loss_percent == 0.0
    before_any_report = replace(a, remote_packets_lost=None, remote_packets_expected=None)
    assert before_any_report.remote_cumulative_loss_percent is None
    assert a.remote_jitter_ms == pytest.approx(0.0, abs=0.2)
    assert a.packets_lost == 0 and a.remote_ssrc == link.b.ssrc


def test_latching_sends_to_the_real_source_and_drops_others() -> None:
    signalled: Address = ("127.0.0.1", 60000)  # what SDP said; packets come from PEER instead
    session = make_session(remote_rtp=signalled, remote_rtcp=None)
    session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=0.0)
    assert session.datagrams_to_send()[0][1] == signalled
    other: Address = ("127.0.0.1", 42002)
    # Before latching, any address is accepted.
    assert session.receive_datagram(rtp(1, ssrc=7), other, 0.0) == []
    assert len(feed(session, [10, 11], start=0.1)) == 2  # PEER: two in sequence -> latched
    assert session.stats(0.2).latched_address == PEER
    session.send_rtp(FRAME, payload_type=0, media_ticks=160, clock_rate=8000, now=0.2)
    session.handle_timer(session.get_timer() or 0.0)
    destinations = [(dest, via_rtcp) for _, dest, via_rtcp in session.datagrams_to_send()]
    assert destinations == [(PEER, False), (("127.0.0.1", 42001), True)]  # RTCP to port + 1
    # From now on, other sources are dropped and counted; the latched one still flows.
    assert session.receive_datagram(rtp(12), other, 0.3) == []
    assert sequences(session.receive_datagram(rtp(12), PEER, 0.3)) == [12]
    stats = session.stats(0.4)
    assert stats.dropped_foreign_source == 1 and stats.packets_received == 3


def test_rtcp_goes_back_where_the_peer_sends_it_from() -> None:
    session = make_session()
    feed(session, [1, 2])
    peer_rtcp: Address = ("127.0.0.1", 43999)  # a NAT picked another port
    rr = bytes(RtcpReceiverReport(ssrc=PEER_SSRC)) + bytes(RtcpSourceDescription())
    events = session.receive_datagram(rr, peer_rtcp, 0.5, on_rtcp_port=True)
    assert [type(e) for e in events] == [RtcpReportReceived]
    session.handle_timer(session.get_timer() or 0.0)
    assert [dest for _, dest, _ in session.datagrams_to_send()] == [peer_rtcp]
    foreign = session.receive_datagram(rr, ("127.0.0.2", 43999), 0.6, on_rtcp_port=True)
    assert foreign == [] and session.stats(1.0).dropped_foreign_source == 1


def test_set_remote_unlatches_for_a_moved_peer() -> None:
    session = make_session()
    feed(session, [1, 2])
    moved: Address = ("127.0.0.1", 44000)
    assert session.receive_datagram(rtp(3), moved, 0.1) == []
    session.set_remote(remote_rtp=moved, remote_rtcp=None, rtcp_mux=False)
    assert session.stats(0.2).latched_address is None
    assert sequences(session.receive_datagram(rtp(4), moved, 0.2)) == [4]


def test_rtcp_mux_uses_the_rtp_port_both_ways() -> None:
    link = pair(rtcp_mux=True, delay_ab=0.02, delay_ba=0.02)
    link.run(until=12.0)
    assert link.sent_ab and not any(via_rtcp for _, _, via_rtcp in link.sent_ab)
    rtcp = [data for _, data, _ in link.sent_ab if data[1] >= 192]
    assert rtcp, "A sent RTCP on its RTP socket"
    assert [type(e) for e in link.events_b if not isinstance(e, RtpPacketReceived)] == [
        RtcpReportReceived
    ] * len(rtcp)
    assert sum(isinstance(e, RtpPacketReceived) for e in link.events_b) > 500
    assert link.b.stats(12.0).rtt_ms == pytest.approx(40.0, abs=0.05)


# --- RTCP timing, compound contents, BYE -------------------------------------------------------------
def test_rtcp_interval_is_randomised_and_the_first_comes_at_half() -> None:
    firsts, gaps = [], []
    for seed in range(40):
        session = make_session(seed, now=100.0, rtcp_interval_s=5.0)
        first = session.get_timer()
        assert first is not None
        firsts.append(first - 100.0)
        now = first
        for _ in range(5):
            session.handle_timer(now)
            nxt = session.get_timer()
            assert nxt is not None
            gaps.append(nxt - now)
            now = nxt
    assert all(1.25 <= f <= 3.75 for f in firsts)  # half of 0.5-1.5 x 5 s
    assert all(2.5 <= g <= 7.5 for g in gaps)
    assert min(gaps) < 3.5 and max(gaps) > 6.5  # really spread, not a constant
    assert 4.5 < sum(gaps) / len(gaps) < 5.5


def test_early_timer_call_sends_nothing() -> None:
    session = make_session(now=0.0)
    at = session.get_timer()
    assert at is not None
    assert session.handle_timer(at - 0.001) == [] and session.datagrams_to_send() == []
    assert session.get_timer() == at


def test_compound_is_sr_when_we_sent_else_rr_then_sdes_cname() -> None:
    session = make_session(3, now=0.0, ntp_offset_s=1_700_000_000.0)
    session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=0.0)
    session.send_rtp(FRAME, payload_type=0, media_ticks=160, clock_rate=8000, now=0.02)
    session.datagrams_to_send()
    at = session.get_timer()
    assert at is not None
    session.handle_timer(at)
    [(data, dest, via_rtcp)] = session.datagrams_to_send()
    assert (dest, via_rtcp) == (("127.0.0.1", 42001), True)
    sr, sdes = parse_rtcp(data)
    assert isinstance(sr, RtcpSenderReport) and isinstance(sdes, RtcpSourceDescription)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (session.ssrc, 2, 320)
    assert sr.ntp_timestamp >> 32 == int(1_700_000_000 + at) + 2_208_988_800
    # The SR's RTP timestamp is the media clock at the SR's own instant (RFC 3550 §6.4.1).
    first_ts = (sr.rtp_timestamp - round(at * 8000)) % 2**32
    session.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=at)
    assert RtpPacket.parse(session.datagrams_to_send()[0][0]).timestamp == first_ts
    assert [(c.ssrc, c.cname) for c in sdes.chunks] == [(session.ssrc, "user3@127.0.0.1")]
    session.handle_timer(session.get_timer() or 0.0)  # sent since? yes (the packet above): SR
    session.handle_timer(session.get_timer() or 0.0)  # nothing sent since: RR
    kinds = [type(parse_rtcp(d)[0]) for d, _, _ in session.datagrams_to_send()]
    assert kinds == [RtcpSenderReport, RtcpReceiverReport]


def test_bye_ends_the_session_and_the_peer_hears_it() -> None:
    link = pair(delay_ab=0.01, delay_ba=0.01)
    link.run(until=1.0)
    link.a.bye(1.0, reason="hang up")
    [(data, dest, via_rtcp)] = link.a.datagrams_to_send()
    assert (dest, via_rtcp) == (B_RTCP, True)
    packets = parse_rtcp(data)
    assert [type(p) for p in packets] == [RtcpSenderReport, RtcpSourceDescription, RtcpBye]
    events = link.b.receive_datagram(data, A_RTCP, 1.01, on_rtcp_port=True)
    assert events[-1] == ByeReceived(ssrc=link.a.ssrc, reason="hang up")
    assert link.b.stats(1.01).remote_ssrc is None
    assert link.a.get_timer() is None
    link.a.send_rtp(FRAME, payload_type=0, media_ticks=0, clock_rate=8000, now=1.1)
    link.a.bye(1.2)
    assert link.a.datagrams_to_send() == []


# --- robustness ---------------------------------------------------------------------------------------
def test_malformed_datagrams_are_counted_not_raised() -> None:
    session = make_session()
    feed(session, [1, 2])
    assert session.receive_datagram(b"\x80\x00\x01", PEER, 0.1) == []  # short RTP
    assert session.receive_datagram(b"\x81\xc9\x00\x09junk", PEER, 0.1) == []  # RTCP overrun
    assert session.receive_datagram(rtp(3), PEER, 0.1, on_rtcp_port=True) == []  # RTP on RTCP port
    stats = session.stats(0.2)
    assert stats.dropped_malformed == 3 and stats.packets_received == 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans()), max_size=20))
def test_receive_datagram_never_raises(datagrams: list[tuple[bytes, bool]]) -> None:
    session = make_session()
    feed(session, [1, 2])
    for i, (data, rtcp_port) in enumerate(datagrams):
        session.receive_datagram(
            rtp(3 + i) if data == b"" else data, PEER, 1.0 + i, on_rtcp_port=rtcp_port
        )
    session.stats(100.0)
    session.handle_timer(100.0)


@st.composite
def traffic(draw: st.DrawFn) -> list[tuple[bytes, Address, bool]]:
    """Well-formed RTP and RTCP from two addresses and a few SSRCs, in any order."""
    out: list[tuple[bytes, Address, bool]] = []
    for _ in range(draw(st.integers(0, 60))):
        address = draw(st.sampled_from([PEER, ("127.0.0.1", 42002)]))
        ssrc = draw(st.sampled_from([PEER_SSRC, 0xC0FFEE]))
        if draw(st.integers(0, 9)) == 0:
            block = RtcpReportBlock(
                ssrc=draw(st.integers(0, 2**32 - 1)),
                fraction_lost=draw(st.integers(0, 255)),
                packets_lost=draw(st.integers(-(2**23), 2**23 - 1)),
                highest_sequence=draw(st.integers(0, 2**32 - 1)),
                jitter=draw(st.integers(0, 2**32 - 1)),
                lsr=draw(st.integers(0, 2**32 - 1)),
                dlsr=draw(st.integers(0, 2**32 - 1)),
            )
            report = RtcpReceiverReport(ssrc=ssrc, reports=(block,))
            bye = RtcpBye(sources=(ssrc,)) if draw(st.booleans()) else RtcpSourceDescription()
            out.append((bytes(report) + bytes(bye), address, draw(st.booleans())))
        else:
            seq = draw(st.one_of(st.integers(0, 65535), st.integers(100, 110)))
            ts = draw(st.integers(0, 2**32 - 1))
            out.append((rtp(seq, ts, ssrc=ssrc), address, False))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_any_well_formed_traffic_keeps_the_figures_sane(
    datagrams: list[tuple[bytes, Address, bool]],
) -> None:
    session = make_session(now=0.0)
    delivered = 0
    for i, (data, address, rtcp_port) in enumerate(datagrams):
        events = session.receive_datagram(data, address, 0.02 * i, on_rtcp_port=rtcp_port)
        delivered += sum(isinstance(e, RtpPacketReceived) for e in events)
        if i % 7 == 0:
            session.handle_timer(session.get_timer() or 0.0)
    stats = session.stats(10.0)
    assert stats.packets_received == delivered <= len(datagrams)
    assert 0.0 <= stats.fraction_lost < 1.0 and 0.0 <= stats.loss_percent <= 100.0
    assert stats.burst_ratio > 0.0 and stats.jitter_ms >= 0.0
    assert stats.packets_lost <= stats.packets_expected
    for data, _, _ in session.datagrams_to_send():
        assert parse_rtcp(data)  # every report we produced is valid RTCP


# --- latching only what SDP negotiated, only at first -------------------------------------------
SIGNALLED: Address = ("198.51.100.7", 60000)  # what SDP said
NATTED: Address = ("198.51.100.7", 61234)  # where the peer's NAT really sends from
INTRUDER: Address = ("203.0.113.66", 4444)


def test_only_negotiated_payload_types_and_ssrc_latch_or_play_from_elsewhere() -> None:
    session = make_session(remote_rtp=SIGNALLED, payload_types={0, 101}, remote_ssrc=PEER_SSRC)
    # Another payload type, or another SSRC: neither played nor latched.
    assert session.receive_datagram(rtp(1, pt=8), INTRUDER, 0.0) == []
    assert session.receive_datagram(rtp(2, pt=8), INTRUDER, 0.02) == []
    assert session.receive_datagram(rtp(3, ssrc=7), INTRUDER, 0.04) == []
    assert session.receive_datagram(rtp(4, ssrc=7), INTRUDER, 0.06) == []
    assert session.stats(0.1).latched_address is None
    assert session.stats(0.1).dropped_foreign_source == 4
    # The peer's own packets from its NAT's port: played, and latched.
    for i, seq in enumerate((10, 11, 12)):
        session.receive_datagram(rtp(seq), NATTED, 0.1 + 0.02 * i)
    assert session.stats(0.2).latched_address == NATTED
    assert session.link is LinkState.LATCHED


def test_a_latch_window_that_closes_unlatched_keeps_to_the_signalled_address() -> None:
    session = make_session(remote_rtp=SIGNALLED)
    assert sequences(session.receive_datagram(rtp(1), SIGNALLED, 0.0)) == []  # probation
    later = LATCH_WINDOW_S + 0.1
    # Past the window, a newcomer with perfect packets neither plays nor latches...
    for i, seq in enumerate((100, 101, 102)):
        assert session.receive_datagram(rtp(seq), INTRUDER, later + 0.02 * i) == []
    assert session.link is LinkState.SIGNALLED
    assert session.stats(later + 0.1).latched_address is None
    # ...nor does its RTCP count; the signalled address still flows.
    rr = bytes(RtcpReceiverReport(ssrc=PEER_SSRC)) + bytes(RtcpSourceDescription())
    assert session.receive_datagram(rr, INTRUDER, later + 0.1, on_rtcp_port=True) == []
    assert sequences(session.receive_datagram(rtp(2), SIGNALLED, later + 0.2))[-1] == 2
    assert session.stats(later + 0.3).dropped_foreign_source == 4
    # A re-INVITE naming a new address opens a new window.
    session.set_remote(remote_rtp=NATTED, remote_rtcp=None, rtcp_mux=False)
    assert session.link is LinkState.UNLATCHED


def test_every_link_state_and_input_pair_transitions_or_raises() -> None:
    for state, event in itertools.product(LinkState, LinkInput):
        session = make_session()
        session.link = state
        nxt = LINK_TRANSITIONS.get((state, event))
        if nxt is None:
            with pytest.raises(RtpError):
                session._apply(event)
        else:
            session._apply(event)
            assert session.link is nxt
