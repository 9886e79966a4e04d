"""RTP reorder buffer: order, holes given up by time and by capacity, duplicates, wrap-around,
bogus first sequence numbers and sender restarts. Time moves by argument."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softphone.rtp.errors import RtpError
from softphone.rtp.packet import RtpPacket
from softphone.rtp.reorder import ReorderBuffer


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(
        payload_type=96, sequence=seq & 0xFFFF, timestamp=seq * 10 & 0xFFFF_FFFF, ssrc=ssrc
    )


def seqs(out: list[tuple[RtpPacket, int]]) -> list[int]:
    return [p.sequence for p, _ in out]


def test_in_order_packets_pass_straight_through() -> None:
    buf = ReorderBuffer()
    out = [r for s in range(100, 110) for r in buf.push(pkt(s), now=0.0)]
    assert out == [(pkt(s), 0) for s in range(100, 110)]
    assert buf.next_deadline() is None and buf.received == 10 and buf.lost == 0


def test_a_swapped_pair_is_put_back_in_order() -> None:
    buf = ReorderBuffer()
    assert seqs(buf.push(pkt(1), 0.0)) == [1]
    assert buf.push(pkt(3), 0.01) == []
    assert buf.next_deadline() == pytest.approx(0.11)
    assert seqs(buf.push(pkt(2), 0.02)) == [2, 3]
    assert buf.reordered == 1 and buf.lost == 0


def test_a_hole_is_given_up_after_max_delay_and_reported_on_the_next_packet() -> None:
    buf = ReorderBuffer(max_delay_s=0.1)
    buf.push(pkt(10), 0.0)
    assert buf.push(pkt(13), 1.0) == []
    assert buf.push(pkt(14), 1.05) == []
    assert buf.poll(1.09) == []
    assert buf.next_deadline() == pytest.approx(1.1)
    assert buf.poll(1.1) == [(pkt(13), 2), (pkt(14), 0)]
    assert buf.lost == 2
    assert buf.push(pkt(11), 1.2) == [] and buf.late == 1  # too late: already counted lost


def test_a_full_buffer_gives_up_the_hole_without_waiting() -> None:
    buf = ReorderBuffer(capacity=4, max_delay_s=10.0)
    buf.push(pkt(0), 0.0)
    out = [r for s in range(2, 6) for r in buf.push(pkt(s), 0.0)]
    assert out == [(pkt(2), 1), (pkt(3), 0), (pkt(4), 0), (pkt(5), 0)]
    assert len(buf) == 0 and buf.lost == 1


def test_capacity_one_passes_through_for_tcp() -> None:
    buf = ReorderBuffer(capacity=1)
    out = [r for s in (5, 6, 8, 9, 9) for r in buf.push(pkt(s), 0.0)]
    assert out == [(pkt(5), 0), (pkt(6), 0), (pkt(8), 1), (pkt(9), 0)]
    assert buf.duplicates == 1


def test_duplicates_are_dropped_and_counted() -> None:
    buf = ReorderBuffer()
    out = [r for s in (1, 2, 2, 4, 4, 3, 1) for r in buf.push(pkt(s), 0.0)]
    assert seqs(out) == [1, 2, 3, 4]
    assert buf.duplicates == 3 and buf.received == 7


def test_sequence_numbers_wrap_around() -> None:
    buf = ReorderBuffer()
    order = [65533, 65535, 65534, 1, 0, 2]
    out = [r for s in order for r in buf.push(pkt(s), 0.0)]
    assert seqs(out) == [65533, 65534, 65535, 0, 1, 2]
    assert buf.lost == 0 and buf.reordered == 2


def test_bogus_first_sequence_number_then_a_jump_is_followed_without_loss() -> None:
    buf = ReorderBuffer()
    out = buf.push(pkt(0), 0.0)  # the camera's first packet says 0, then it jumps
    out += buf.push(pkt(41234), 0.01)
    assert seqs(out) == [0]  # one packet from far away is not believed yet
    out += buf.push(pkt(41235), 0.02)
    out += [r for s in range(41236, 41240) for r in buf.push(pkt(s), 0.03)]
    assert seqs(out) == [0, *range(41234, 41240)]
    assert all(lost == 0 for _, lost in out)
    assert buf.lost == 0 and buf.resyncs == 1


def test_sender_restart_resyncs_instead_of_declaring_thousands_lost() -> None:
    buf = ReorderBuffer()
    for s in range(30000, 30010):
        buf.push(pkt(s), 0.0)
    out = [r for s in (100, 102, 101, 103) for r in buf.push(pkt(s, ssrc=2), 1.0)]
    assert seqs(out) == [100, 101, 102, 103]
    assert buf.lost == 0 and buf.resyncs == 1


def test_a_single_stray_packet_changes_nothing() -> None:
    buf = ReorderBuffer()
    out = (
        buf.push(pkt(500), 0.0)
        + buf.push(pkt(9000), 0.0)
        + buf.push(pkt(501), 0.0)
        + buf.push(pkt(502), 0.0)
    )
    assert seqs(out) == [500, 501, 502]
    assert buf.resyncs == 0 and buf.lost == 0


def test_a_second_stream_interleaved_with_this_one_is_ignored() -> None:
    buf = ReorderBuffer()
    out = []
    for i in range(20):  # a stale session's packets between ours
        out += buf.push(pkt(1000 + i), 0.0) + buf.push(pkt(50000 + i, ssrc=9), 0.0)
    assert seqs(out) == list(range(1000, 1020))
    assert buf.resyncs == 0 and buf.lost == 0


def test_memory_is_bounded_under_junk() -> None:
    buf = ReorderBuffer(capacity=16)
    rng = random.Random(4)
    for i in range(5000):
        buf.push(pkt(rng.randrange(65536), ssrc=rng.choice((1, 2))), now=i * 0.001)
        assert len(buf) < 16
    assert len(buf._probation) <= 8 and len(buf._recent) <= 100


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(RtpError):
        ReorderBuffer(capacity=0)


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, 65535),
    count=st.integers(1, 200),
    data=st.data(),
)
def test_any_permutation_within_the_window_comes_out_sorted(
    start: int, count: int, data: st.DataObject
) -> None:
    """Packets displaced by less than the capacity (the first one in place) come out in order,
    whole, each once, with duplicates dropped; across the 16-bit wrap too."""
    window = 16
    keys = [0] + [i + data.draw(st.floats(0, window - 1)) for i in range(1, count)]
    order = [i for _, i in sorted(zip(keys, range(count), strict=True))]
    dups = data.draw(st.lists(st.integers(0, count - 1), max_size=10))
    arrivals = list(order)
    for d in dups:
        arrivals.insert(min(len(arrivals), arrivals.index(d) + 1), d)
    buf = ReorderBuffer(capacity=window + 1, max_delay_s=1.0)
    out = [r for i in arrivals for r in buf.push(pkt(start + i), now=0.0)]
    out += buf.poll(now=5.0)
    assert seqs(out) == [(start + i) & 0xFFFF for i in range(count)]
    assert all(lost == 0 for _, lost in out)
    assert buf.duplicates == len(dups) and buf.lost == 0 and buf.next_deadline() is None


def test_a_skip_announced_after_a_pause_is_not_loss() -> None:
    """RTSP PAUSE then PLAY on a live stream: the server goes on at RTP-Info's seq, hundreds of
    numbers later. Announced with restart(), nothing is lost; unannounced, the gap counts."""
    for announced in (True, False):
        buf = ReorderBuffer(capacity=1, max_delay_s=0.0)  # TCP interleaved
        out = [r for s in range(100, 110) for r in buf.push(pkt(s), now=(s - 100) * 0.02)]
        if announced:
            out += buf.restart(700, now=5.0)
        out += [r for s in range(700, 710) for r in buf.push(pkt(s), now=5.0 + (s - 700) * 0.02)]
        assert seqs(out) == [*range(100, 110), *range(700, 710)]
        assert (buf.lost, sum(lost for _, lost in out)) == ((0, 0) if announced else (590, 590))


def test_a_restart_keeps_packets_that_overtook_the_play_answer_and_drops_stragglers() -> None:
    buf = ReorderBuffer()  # UDP
    out = [r for s in range(10) for r in buf.push(pkt(s), now=s * 0.02)]
    assert buf.push(pkt(501), now=5.0) == []  # the new run, ahead of the PLAY answer
    out += buf.restart(500, now=5.01)
    out += buf.push(pkt(500), now=5.02)
    assert buf.push(pkt(9), now=5.03) == []  # a packet from before the pause, very late
    out += buf.push(pkt(502), now=5.04)
    assert seqs(out) == [*range(10), 500, 501, 502]
    assert buf.lost == 0


def test_a_restart_without_a_sequence_starts_at_the_next_packet() -> None:
    buf = ReorderBuffer()
    out = [r for s in range(3) for r in buf.push(pkt(s), now=0.0)]
    assert buf.push(pkt(5), now=0.01) == []  # held behind a hole sent before the pause
    out += buf.restart(None, now=1.0)  # the held packet goes out, its hole counted lost
    out += [r for s in (2000, 2001) for r in buf.push(pkt(s), now=2.0)]
    assert seqs(out) == [0, 1, 2, 5, 2000, 2001]
    assert [lost for _, lost in out] == [0, 0, 0, 2, 0, 0] and buf.lost == 2
