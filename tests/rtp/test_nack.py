"""NACK generation (which packets to ask for, when, how often) and the send history that
answers NACKs: clocks walked by argument."""

from __future__ import annotations

from softphone.rtp.nack import NackGenerator, SendHistory
from softphone.rtp.packet import RtpPacket


def test_a_gap_is_nacked_after_the_reorder_wait_then_once_per_rtt() -> None:
    gen = NackGenerator(reorder_wait_s=0.01, min_resend_s=0.02)
    for seq in (10, 11, 14):
        gen.received(seq, 0.0)
    assert gen.missing == (12, 13)
    assert gen.poll(0.005, rtt_s=0.1).nack == ()  # maybe only reordered
    assert gen.poll(0.01, rtt_s=0.1).nack == (12, 13)
    assert gen.poll(0.05, rtt_s=0.1).nack == ()  # the retransmission is still on its way
    assert gen.next_due(rtt_s=0.1) == 0.11
    assert gen.poll(0.11, rtt_s=0.1).nack == (12, 13)
    gen.received(12, 0.12)  # the retransmission came
    assert gen.missing == (13,) and gen.recovered == 1
    assert gen.poll(0.22, rtt_s=0.1).nack == (13,)
    assert gen.nacked == 5 and not gen.keyframe_needed


def test_a_reordered_packet_is_never_nacked() -> None:
    gen = NackGenerator()
    gen.received(1, 0.0)
    gen.received(3, 0.0)
    gen.received(2, 0.002)
    assert gen.poll(1.0).nack == () and gen.missing == ()
    assert gen.recovered == 1


def test_retries_are_bounded_then_a_key_frame_is_needed() -> None:
    gen = NackGenerator(max_retries=3, min_resend_s=0.02, reorder_wait_s=0.0)
    gen.received(0, 0.0)
    gen.received(2, 0.0)
    asked = [gen.poll(t / 100, rtt_s=0.02).nack for t in range(0, 12, 2)]
    assert asked == [(1,), (1,), (1,), (), (), ()]
    assert gen.missing == () and gen.keyframe_needed


def test_old_packets_are_given_up() -> None:
    gen = NackGenerator(max_age_s=0.5)
    gen.received(0, 0.0)
    gen.received(5, 0.0)
    gen.poll(0.1)
    result = gen.poll(0.6)
    assert result.gave_up == (1, 2, 3, 4) and result.nack == ()
    assert gen.keyframe_needed and gen.next_due() is None


def test_a_wide_gap_asks_for_a_key_frame_instead() -> None:
    gen = NackGenerator(max_missing=100)
    gen.received(65500, 0.0)
    gen.received(65500 + 102 & 0xFFFF, 0.0)  # 101 missing, across the wrap
    assert gen.missing == () and gen.keyframe_needed
    gen.keyframe_needed = False
    gen.received(65500 + 105 & 0xFFFF, 0.0)
    assert gen.missing == (65500 + 103 & 0xFFFF, 65500 + 104 & 0xFFFF)
    assert not gen.keyframe_needed


def test_the_missing_list_is_bounded() -> None:
    gen = NackGenerator(max_missing=10)
    gen.received(0, 0.0)
    for seq in range(5, 60, 5):
        gen.received(seq, 0.0)
    assert len(gen.missing) == 10 and gen.missing[-1] == 54 and gen.keyframe_needed


def packet(seq: int) -> RtpPacket:
    return RtpPacket(
        payload_type=96, sequence=seq, timestamp=0, ssrc=1, payload=bytes([seq & 0xFF])
    )


def test_the_history_resends_what_it_has_once_per_rtt() -> None:
    history = SendHistory(max_packets=100, min_resend_s=0.02)
    for seq in range(65530, 65536):
        history.add(packet(seq), 0.0)
    for seq in range(0, 4):
        history.add(packet(seq), 0.0)
    assert [p.sequence for p in history.resend((65535, 2, 2, 40), 0.1, rtt_s=0.05)] == [65535, 2]
    assert history.missed == 1
    assert history.resend((2,), 0.12, rtt_s=0.05) == []  # sent again 20 ms ago
    assert [p.sequence for p in history.resend((2,), 0.16, rtt_s=0.05)] == [2]
    assert history.resent == 3


def test_the_history_is_bounded_by_count_and_age() -> None:
    history = SendHistory(max_packets=5, max_age_s=1.0)
    for seq in range(20):
        history.add(packet(seq), seq * 0.01)
    assert len(history) == 5 and history.resend((14,), 0.2) == []
    assert [p.sequence for p in history.resend((15,), 0.2)] == [15]
    assert history.resend((19,), 1.5) == [] and len(history) == 0
