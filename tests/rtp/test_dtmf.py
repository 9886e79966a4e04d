"""RFC 4733 DTMF: payload bytes, the sender's packet schedule, the receiver's once-only digits."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softphone.rtp.dtmf import (
    END_COPIES,
    MAX_DURATION,
    DtmfDigitReceived,
    DtmfReceiver,
    DtmfSender,
    ReceiverInput,
    ReceiverState,
    TelephoneEvent,
    TelephoneEventError,
    digit_to_event,
    event_to_digit,
)
from softphone.rtp.errors import RtpParseError

# ----------------------------------------------------------------------------------- payload


def test_payload_bytes_match_rfc_4733_layout() -> None:
    # event 11 (#), E=1, R=0, volume 10, duration 800 = 0x0320
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert bytes(event) == b"\x0b\x8a\x03\x20"
    assert TelephoneEvent.parse(b"\x0b\x8a\x03\x20") == event
    assert (
        bytes(TelephoneEvent(event=0, end=False, volume=63, duration=0xFFFF)) == b"\x00\x3f\xff\xff"
    )


def test_payload_parse_reads_the_reserved_bit_without_mixing_it_into_volume() -> None:
    event = TelephoneEvent.parse(b"\x05\x4a\x01\x90")  # R set, volume 10
    assert (event.event, event.end, event.reserved, event.volume, event.duration) == (
        5,
        False,
        True,
        10,
        400,
    )


@pytest.mark.parametrize("data", [b"", b"\x01\x8a\x03", b"\x01\x8a\x03\x20\x00"])
def test_payload_parse_rejects_wrong_length(data: bytes) -> None:
    with pytest.raises(TelephoneEventError, match=f"must be 4 bytes, got {len(data)}"):
        TelephoneEvent.parse(data)
    with pytest.raises(RtpParseError):  # part of the rtp error tree
        TelephoneEvent.parse(data)


def test_payload_fields_are_range_checked() -> None:
    with pytest.raises(ValueError, match="volume 64"):
        TelephoneEvent(event=1, end=False, volume=64, duration=0)
    with pytest.raises(ValueError, match="duration 65536"):
        TelephoneEvent(event=1, end=False, volume=0, duration=0x10000)
    with pytest.raises(ValueError, match="event code 256"):
        TelephoneEvent(event=256, end=False, volume=0, duration=0)


def test_digit_event_codes_follow_rfc_4733_table() -> None:
    expected = dict(zip("0123456789*#ABCD", range(16), strict=True))
    assert {d: digit_to_event(d) for d in expected} == expected
    assert {code: event_to_digit(code) for code in range(16)} == {v: k for k, v in expected.items()}
    assert digit_to_event("d") == 15
    with pytest.raises(ValueError, match="'E'"):
        digit_to_event("E")
    with pytest.raises(ValueError, match="event 16"):
        event_to_digit(16)


# ------------------------------------------------------------------------------------ sender


@dataclass(frozen=True)
class Sent:
    at: float
    event: int
    end: bool
    duration: int
    offset: int
    marker: bool


def run_sender(sender: DtmfSender) -> list[Sent]:
    """Walk the clock from deadline to deadline, as the transport would."""
    sent: list[Sent] = []
    while (at := sender.next_deadline()) is not None:
        for packet in sender.poll(at):
            event = TelephoneEvent.parse(packet.payload)
            sent.append(
                Sent(
                    round(at, 6),
                    event.event,
                    event.end,
                    event.duration,
                    packet.timestamp_offset_ticks,
                    packet.marker,
                )
            )
    return sent


def test_sender_packets_for_1_hash_with_scripted_clock() -> None:
    sender = DtmfSender()  # 8 kHz, 50 ms updates, 100 ms digits, 50 ms gap, volume 10
    assert not sender.busy and sender.next_deadline() is None
    sender.start("1#", now=10.0)
    assert sender.busy
    assert sender.poll(10.0) == []  # the first update reports 50 ms of tone
    assert sender.poll(10.049) == []
    sent = run_sender(sender)
    assert sent == [
        # digit "1": timestamp offset 0; marker on the first packet only
        Sent(10.05, 1, False, 400, 0, True),
        Sent(10.1, 1, True, 800, 0, False),
        Sent(10.125, 1, True, 800, 0, False),
        Sent(10.15, 1, True, 800, 0, False),
        # digit "#": starts after 100 ms tone + 50 ms gap = 150 ms = 1200 ticks
        Sent(10.2, 11, False, 400, 1200, True),
        Sent(10.25, 11, True, 800, 1200, False),
        Sent(10.275, 11, True, 800, 1200, False),
        Sent(10.3, 11, True, 800, 1200, False),
    ]
    assert sum(s.end for s in sent if s.event == 1) == END_COPIES
    assert not sender.busy and sender.next_deadline() is None


def test_sender_polled_late_returns_everything_due_in_order() -> None:
    sender = DtmfSender()
    sender.start("1#", now=0.0)
    late = sender.poll(0.2)
    assert [(p.timestamp_offset_ticks, p.marker) for p in late] == [
        (0, True),
        (0, False),
        (0, False),
        (0, False),
        (1200, True),
    ]
    assert sender.next_deadline() == pytest.approx(0.25)


def test_sender_start_while_busy_appends_to_the_run() -> None:
    sender = DtmfSender()
    sender.start("1", now=0.0)
    sender.poll(0.05)
    sender.start("2", now=0.06)
    offsets = {(s.event, s.offset) for s in run_sender(sender)}
    assert offsets == {(1, 0), (2, 1200)}
    sender.start("3", now=5.0)  # idle again: a new run, offsets restart at 0
    assert {s.offset for s in run_sender(sender)} == {0}


def test_sender_rejects_bad_digits_naming_the_character() -> None:
    sender = DtmfSender()
    with pytest.raises(ValueError, match=r"'x' at position 2 of '12x4'"):
        sender.start("12x4", now=0.0)
    assert not sender.busy  # nothing was queued
    with pytest.raises(ValueError, match="no DTMF digits"):
        sender.start("", now=0.0)


def test_sender_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="volume"):
        DtmfSender(volume=64)
    with pytest.raises(ValueError, match="packet_ms"):
        DtmfSender(packet_ms=0)


def test_sender_splits_events_longer_than_0xffff_ticks_into_segments() -> None:
    # 3 s at 48 kHz = 144000 ticks = 65535 + 65535 + 12930 (RFC 4733 §2.5.1.3)
    sender = DtmfSender(clock_rate=48000, duration_ms=3000, packet_ms=500)
    sender.start("5", now=0.0)
    sent = run_sender(sender)
    assert [s.marker for s in sent].count(True) == 1 and sent[0].marker
    assert sorted({s.offset for s in sent}) == [0, MAX_DURATION, 2 * MAX_DURATION]
    boundary = [s for s in sent if s.duration == MAX_DURATION]
    assert len(boundary) == 2 * END_COPIES and not any(s.end for s in boundary)
    ends = [s for s in sent if s.end]
    assert len(ends) == END_COPIES
    assert {(s.offset, s.duration) for s in ends} == {(2 * MAX_DURATION, 12930)}
    assert all(s.duration <= MAX_DURATION for s in sent)
    # durations grow within each segment
    for offset in (0, MAX_DURATION, 2 * MAX_DURATION):
        durations = [s.duration for s in sent if s.offset == offset]
        assert durations == sorted(durations)


# ---------------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class Wire:
    """One packet on the wire: arrival time, RTP timestamp, payload."""

    at: float
    timestamp: int
    payload: bytes

    @property
    def event(self) -> TelephoneEvent:
        return TelephoneEvent.parse(self.payload)


def wire_packets(
    digits: str, *, base: int = 160_000, clock_rate: int = 8000, **kw: int
) -> list[Wire]:
    sender = DtmfSender(clock_rate=clock_rate, **kw)
    sender.start(digits, now=0.0)
    out: list[Wire] = []
    while (at := sender.next_deadline()) is not None:
        for packet in sender.poll(at):
            ts = (base + packet.timestamp_offset_ticks) % (1 << 32)
            out.append(Wire(at, ts, packet.payload))
    return out


def feed(
    receiver: DtmfReceiver, packets: list[Wire], *, until: float = 10.0
) -> list[DtmfDigitReceived]:
    got: list[DtmfDigitReceived] = []
    for p in packets:
        got += receiver.receive(p.payload, p.timestamp, p.at)
    got += receiver.poll(until)
    return got


def test_receiver_reports_each_digit_once_when_its_end_arrives() -> None:
    receiver = DtmfReceiver()
    got = feed(receiver, wire_packets("1#"))
    assert [(d.digit, d.duration_ms, round(d.now, 6)) for d in got] == [
        ("1", 100, 0.1),  # reported when the first end packet arrives
        ("#", 100, 0.25),
    ]
    assert receiver.duplicates == 2 * (END_COPIES - 1)
    assert receiver.state is ReceiverState.IDLE and receiver.next_deadline() is None


def test_receiver_with_the_start_of_each_digit_lost() -> None:
    packets = [p for p in wire_packets("1#") if p.event.end]
    got = feed(DtmfReceiver(), packets)
    assert [(d.digit, d.duration_ms) for d in got] == [("1", 100), ("#", 100)]


def test_receiver_with_every_end_packet_lost() -> None:
    packets = [p for p in wire_packets("1#") if not p.event.end]
    receiver = DtmfReceiver(end_timeout_s=0.5)
    got: list[DtmfDigitReceived] = []
    for p in packets:
        got += receiver.receive(p.payload, p.timestamp, p.at)
    # "1" is reported when "#" starts; "#" is still open
    assert [(d.digit, d.duration_ms, round(d.now, 6)) for d in got] == [("1", 50, 0.2)]
    deadline = receiver.next_deadline()
    assert deadline is not None and deadline == pytest.approx(0.2 + 0.5)
    assert receiver.poll(deadline - 0.001) == []
    assert receiver.poll(deadline) == [DtmfDigitReceived(digit="#", duration_ms=50, now=deadline)]
    assert receiver.poll(deadline + 1.0) == []  # once only


def test_receiver_with_reordering_and_duplication() -> None:
    packets = wire_packets("1#")
    swapped = packets[:]
    for i in range(0, len(swapped) - 1, 2):  # swap every adjacent pair
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    doubled = [p for p in swapped for _ in range(2)]
    got = feed(DtmfReceiver(), doubled)
    assert [d.digit for d in got] == ["1", "#"]


def test_receiver_late_digit_arriving_after_the_next_one_is_reported_once() -> None:
    packets = wire_packets("12")
    first = [p for p in packets if p.event.event == 1]
    second = [p for p in packets if p.event.event == 2]
    got = feed(DtmfReceiver(), second[:1] + first + second[1:])
    # "1" is reported as soon as it shows up (from its first packet); "2" stays open to its end
    assert [(d.digit, d.duration_ms) for d in got] == [("1", 50), ("2", 100)]


def test_receiver_repeated_digit_is_two_presses() -> None:
    got = feed(DtmfReceiver(), wire_packets("55"))
    assert [d.digit for d in got] == ["5", "5"]


def test_receiver_across_rtp_timestamp_wrap() -> None:
    packets = wire_packets("19", base=(1 << 32) - 1000)
    assert packets[-1].timestamp < packets[0].timestamp  # the second digit wrapped
    got = feed(DtmfReceiver(), packets)
    assert [(d.digit, d.duration_ms) for d in got] == [("1", 100), ("9", 100)]


def test_receiver_long_event_split_in_segments_is_one_digit() -> None:
    # updates every 200 ms keep the event alive (end_timeout_s 0.5)
    packets = wire_packets("7", clock_rate=48000, duration_ms=3000, packet_ms=200)
    got = feed(DtmfReceiver(clock_rate=48000), packets)
    assert [(d.digit, d.duration_ms) for d in got] == [("7", 3000)]
    # and with every segment-boundary packet lost
    no_boundary = [p for p in packets if p.event.duration != MAX_DURATION]
    got = feed(DtmfReceiver(clock_rate=48000), no_boundary)
    assert [(d.digit, d.duration_ms) for d in got] == [("7", 3000)]


def test_receiver_drops_junk_non_dtmf_events_and_stale_packets_without_raising() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(b"\x01\x02", 1000, 0.0) == []
    assert receiver.malformed == 1
    flash = bytes(TelephoneEvent(event=16, end=True, volume=10, duration=800))
    assert receiver.receive(flash, 1000, 0.0) == []
    assert receiver.ignored == 1
    got = feed(receiver, wire_packets("3", base=1_000_000))
    assert [d.digit for d in got] == ["3"]
    # a packet 10 s older than the newest event is stale, not a new digit
    stale = bytes(TelephoneEvent(event=4, end=True, volume=10, duration=800))
    assert receiver.receive(stale, 1_000_000 - 80_000, 11.0) == []


def test_receiver_transition_table_covers_every_reachable_pair() -> None:
    from softphone.rtp.dtmf import RECEIVER_TRANSITIONS

    needs_open = {
        ReceiverInput.UPDATE,
        ReceiverInput.END,
        ReceiverInput.TIMEOUT,
        ReceiverInput.NEXT_SEGMENT,
        ReceiverInput.NEXT_SEGMENT_END,
    }
    for state in ReceiverState:
        for what in ReceiverInput:
            listed = (state, what) in RECEIVER_TRANSITIONS
            assert listed == (state is ReceiverState.IN_EVENT or what not in needs_open)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_receiver_property_each_digit_exactly_once(data: st.DataObject) -> None:
    digits = data.draw(st.text(alphabet="0123456789*#ABCD", min_size=1, max_size=4), "digits")
    packets = wire_packets(digits)
    by_digit: dict[int, list[Wire]] = {}
    for p in packets:
        by_digit.setdefault(p.timestamp, []).append(p)
    # lose any packets, but keep at least one of each digit; duplicate some; reorder locally
    kept: list[Wire] = []
    for group in by_digit.values():
        keep = data.draw(st.lists(st.booleans(), min_size=len(group), max_size=len(group)))
        survivors = [p for p, k in zip(group, keep, strict=True) if k] or [group[-1]]
        kept += survivors
    kept.sort(key=lambda p: p.at)
    seed = data.draw(st.integers(0, 2**32 - 1), "seed")
    rng = random.Random(seed)
    jittered = sorted(
        (
            Wire(p.at + rng.uniform(0.0, 0.12), p.timestamp, p.payload)
            for p in kept
            for _ in range(rng.choice((1, 1, 2)))
        ),
        key=lambda p: p.at,
    )
    got = feed(DtmfReceiver(), jittered)
    assert sorted(d.digit for d in got) == sorted(digits)
