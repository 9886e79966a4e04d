"""RFC 4733 telephone-events: DTMF digits over RTP (sans-IO).

- `TelephoneEvent`: the 4-byte payload of §2.3 (event, E bit, R bit, volume, duration).
- `DtmfSender`: turns a digit string into the packets of §2.5.1, paced by `now` through
  `poll(now)` / `next_deadline()`. Each digit is one event; every packet of an event carries the
  event's RTP timestamp, the first one has the marker bit (§2.5.1.2; RFC 3550 §5.1),
  updates follow every `packet_ms` with growing duration (§2.5.1.2), the final packet has the E bit
  and is sent three times (§2.5.1.4), and events longer than 0xFFFF ticks are split into segments
  (§2.5.1.3, received per §2.5.2.3).
- `DtmfReceiver`: reports each digit exactly once (§2.5.2), whatever is lost, duplicated or
  reordered: when its end is seen, when a newer event starts, or after `end_timeout_s` of silence.

The caller owns the RTP session: it maps `DtmfPacketToSend.timestamp_offset_ticks` onto its own
media timestamps and feeds received payloads of the negotiated telephone-event payload type in.
No clock or randomness is read here; time comes in as `now` (monotonic seconds).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from softphone.rtp.errors import RtpParseError

__all__ = [
    "DTMF_DIGITS",
    "DtmfDigitReceived",
    "DtmfPacketToSend",
    "DtmfReceiver",
    "DtmfSender",
    "ReceiverInput",
    "ReceiverState",
    "TelephoneEvent",
    "TelephoneEventError",
    "digit_to_event",
    "event_to_digit",
]

# RFC 4733 §3.2, Table 7: DTMF named events 0-15, in event-code order.
DTMF_DIGITS: Final = "0123456789*#ABCD"
_EVENT_BY_DIGIT: Final[dict[str, int]] = {d: i for i, d in enumerate(DTMF_DIGITS)}

# RFC 4733 §2.3: duration is an unsigned 16-bit count of timestamp units.
MAX_DURATION: Final = 0xFFFF
# RFC 4733 §2.3: volume is 0..63 (power level, -dBm0).
MAX_VOLUME: Final = 63
# RFC 4733 §2.5.1.4: the final packet of an event (and of each segment) is sent three times.
END_COPIES: Final = 3

_PAYLOAD: Final = struct.Struct("!BBH")
_TS_MODULO: Final = 1 << 32
_TS_HALF: Final = 1 << 31
_EPSILON_S: Final = 1e-9


class TelephoneEventError(RtpParseError):
    """A telephone-event payload that is not a well-formed RFC 4733 §2.3 payload.

    Raised only by `TelephoneEvent.parse`; `DtmfReceiver.receive` counts and drops such payloads.
    Misuse of the API (a bad digit, an out-of-range field or setting) raises ValueError.
    """


def digit_to_event(digit: str) -> int:
    """The RFC 4733 §3.2 event code of a DTMF digit (``0-9 * # A-D``, letters in either case)."""
    code = _EVENT_BY_DIGIT.get(digit.upper()) if len(digit) == 1 else None
    if code is None:
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of 0-9 * # A-D)")
    return code


def event_to_digit(event: int) -> str:
    """The DTMF digit of an RFC 4733 §3.2 event code 0-15; ValueError for any other event."""
    if not 0 <= event < len(DTMF_DIGITS):
        raise ValueError(f"event {event} is not a DTMF digit (0-15)")
    return DTMF_DIGITS[event]


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One RFC 4733 §2.3 payload::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |     event     |E|R| volume    |          duration             |
    """

    event: int
    end: bool
    volume: int
    duration: int
    reserved: bool = False  # R: senders send 0, receivers ignore it (§2.3)

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise ValueError(f"event code {self.event} does not fit in 8 bits")
        if not 0 <= self.volume <= MAX_VOLUME:
            raise ValueError(f"volume {self.volume} is outside 0..{MAX_VOLUME}")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} is outside 0..{MAX_DURATION}")

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        """Parse a payload; raises TelephoneEventError on anything but 4 bytes (§2.3)."""
        if len(data) != _PAYLOAD.size:
            raise TelephoneEventError(
                f"telephone-event payload must be {_PAYLOAD.size} bytes, got {len(data)}"
            )
        event, flags, duration = _PAYLOAD.unpack(data)
        return cls(
            event=event,
            end=bool(flags & 0x80),
            reserved=bool(flags & 0x40),
            volume=flags & 0x3F,
            duration=duration,
        )

    def __bytes__(self) -> bytes:
        flags = (0x80 if self.end else 0) | (0x40 if self.reserved else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)


# --------------------------------------------------------------------------------------- sender


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfPacketToSend:
    """One telephone-event packet the caller sends now.

    ``timestamp_offset_ticks`` is where the event (or segment) starts, in RTP clock ticks, relative
    to the start of the current digit run; RTP timestamp = the caller's media timestamp at the run's
    start + this offset (§2.5.1.2: all packets of an event share the event's start timestamp).
    """

    payload: bytes
    timestamp_offset_ticks: int
    marker: bool


@dataclass(frozen=True, slots=True)
class _Scheduled:
    due_s: float  # relative to the run start
    packet: DtmfPacketToSend


class DtmfSender:
    """Packets for a string of DTMF digits, per RFC 4733 §2.5.1.

    Per digit (an event of ``duration_ms``): an update every ``packet_ms`` reporting the duration
    so far (the first with the marker bit), then the final packet with the E bit and the full
    duration, sent ``END_COPIES`` times. §2.5.1.4 asks for the copies at the update interval; they
    are spaced min(packet_ms, gap_ms / 2) apart instead, so that they are all out before the next
    digit starts ``gap_ms`` after this one ends and never interleave with it. An event longer than
    0xFFFF ticks is split into segments (§2.5.1.3): each segment's last packet has duration 0xFFFF
    and no E bit (sent three times at once), and the next segment's timestamp is 0xFFFF later.

    A run starts at the first `start()` while idle; `start()` while busy appends digits to the run
    (offsets stay relative to the run's start), so a caller records its media timestamp when it
    calls `start()` with `busy` false.
    """

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        packet_ms: int = 50,
        duration_ms: int = 100,
        volume: int = 10,
        gap_ms: int = 50,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, got {clock_rate}")
        if packet_ms <= 0:
            raise ValueError(f"packet_ms must be positive, got {packet_ms}")
        if duration_ms <= 0:
            raise ValueError(f"duration_ms must be positive, got {duration_ms}")
        if gap_ms < 0:
            raise ValueError(f"gap_ms must not be negative, got {gap_ms}")
        if not 0 <= volume <= MAX_VOLUME:
            raise ValueError(f"volume must be 0..{MAX_VOLUME} (-dBm0), got {volume}")
        self.clock_rate = clock_rate
        self.packet_ms = packet_ms
        self.duration_ms = duration_ms
        self.volume = volume
        self.gap_ms = gap_ms
        self._pending: deque[_Scheduled] = deque()
        self._run_start = 0.0
        self._next_digit_ms = 0

    @property
    def busy(self) -> bool:
        """True while packets of the current run remain to be sent."""
        return bool(self._pending)

    def start(self, digits: str, now: float) -> None:
        """Queue ``digits`` (``0-9 * # A-D``, letters in either case) for sending from ``now``.

        Raises ValueError naming the first bad character; nothing is queued then.
        """
        if not digits:
            raise ValueError("no DTMF digits to send")
        codes: list[int] = []
        for position, char in enumerate(digits):
            code = _EVENT_BY_DIGIT.get(char.upper())
            if code is None:
                raise ValueError(
                    f"not a DTMF digit: {char!r} at position {position} of {digits!r} "
                    "(expected 0-9 * # A-D)"
                )
            codes.append(code)
        if not self._pending:
            self._run_start = now
            self._next_digit_ms = 0
        for code in codes:
            self._schedule_digit(code, self._next_digit_ms)
            self._next_digit_ms += self.duration_ms + self.gap_ms

    def poll(self, now: float) -> list[DtmfPacketToSend]:
        """The packets due at ``now`` (all of them, in order, if polled late)."""
        due: list[DtmfPacketToSend] = []
        limit = now - self._run_start + _EPSILON_S
        while self._pending and self._pending[0].due_s <= limit:
            due.append(self._pending.popleft().packet)
        return due

    def next_deadline(self) -> float | None:
        """When the next packet is due (monotonic seconds), or None when idle."""
        if not self._pending:
            return None
        return self._run_start + self._pending[0].due_s

    def _ticks(self, ms: int) -> int:
        return ms * self.clock_rate // 1000

    def _schedule_digit(self, code: int, start_ms: int) -> None:
        """Append the packets of one event starting ``start_ms`` into the run (§2.5.1)."""
        start_ticks = self._ticks(start_ms)
        total = self._ticks(self.duration_ms)
        step = max(1, self._ticks(self.packet_ms))
        copy_gap = self._ticks(min(self.packet_ms, self.gap_ms // 2))
        # Elapsed-tick points at which a packet goes out: regular updates (§2.5.1.2), segment
        # boundaries (§2.5.1.3) and the end.
        points = set(range(step, total, step))
        points.update(range(MAX_DURATION, total, MAX_DURATION))
        points.add(total)
        first = True
        for elapsed in sorted(points):
            segment = (elapsed - 1) // MAX_DURATION
            duration = elapsed - segment * MAX_DURATION
            offset = start_ticks + segment * MAX_DURATION
            is_end = elapsed == total
            packet = DtmfPacketToSend(
                payload=bytes(
                    TelephoneEvent(event=code, end=is_end, volume=self.volume, duration=duration)
                ),
                timestamp_offset_ticks=offset,
                marker=first,
            )
            first = False
            at_s = start_ms / 1000 + elapsed / self.clock_rate
            if is_end:
                for copy in range(END_COPIES):
                    due_s = at_s + copy * copy_gap / self.clock_rate
                    # Only the first copy may carry the marker; retransmissions never do.
                    sent = packet if copy == 0 else _without_marker(packet)
                    self._pending.append(_Scheduled(due_s, sent))
            elif duration == MAX_DURATION:
                # The final packet of a segment, also sent three times (§2.5.1.4).
                self._pending.extend(
                    _Scheduled(at_s, packet if copy == 0 else _without_marker(packet))
                    for copy in range(END_COPIES)
                )
            else:
                self._pending.append(_Scheduled(at_s, packet))


def _without_marker(packet: DtmfPacketToSend) -> DtmfPacketToSend:
    return DtmfPacketToSend(
        payload=packet.payload, timestamp_offset_ticks=packet.timestamp_offset_ticks, marker=False
    )


# ------------------------------------------------------------------------------------- receiver


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigitReceived:
    """A digit the peer sent, reported once; ``now`` is when it was reported."""

    digit: str
    duration_ms: int
    now: float


class ReceiverState(Enum):
    IDLE = auto()  # no event open
    IN_EVENT = auto()  # an event has been seen and its end has not


class ReceiverInput(Enum):
    UPDATE = auto()  # a packet of the open event, E bit clear
    END = auto()  # a packet of the open event with the E bit
    NEW_UPDATE = auto()  # a packet of a newer event (by timestamp), E bit clear
    NEW_END = auto()  # a newer event whose first packet we see has the E bit (start lost)
    NEXT_SEGMENT = auto()  # the open event goes on in its next 0xFFFF segment, E bit clear
    NEXT_SEGMENT_END = auto()  # ... and that packet has the E bit
    LATE = auto()  # an older event never seen before (reordered behind a newer one)
    DUPLICATE = auto()  # a packet of an event already reported (end copies, duplicates)
    STALE = auto()  # older than max_late_s behind the newest event
    TIMEOUT = auto()  # no packet of the open event for end_timeout_s (all its ends lost)


# RFC 4733 §2.5.2. A pair not listed cannot happen (UPDATE/END/TIMEOUT need an open event).
_S, _I = ReceiverState, ReceiverInput
RECEIVER_TRANSITIONS: Final[dict[tuple[ReceiverState, ReceiverInput], ReceiverState]] = {
    (_S.IDLE, _I.NEW_UPDATE): _S.IN_EVENT,  # open it
    (_S.IDLE, _I.NEW_END): _S.IDLE,  # report it at once
    (_S.IDLE, _I.LATE): _S.IDLE,  # report it at once
    (_S.IDLE, _I.DUPLICATE): _S.IDLE,
    (_S.IDLE, _I.STALE): _S.IDLE,
    (_S.IN_EVENT, _I.UPDATE): _S.IN_EVENT,  # grow its duration
    (_S.IN_EVENT, _I.END): _S.IDLE,  # report it
    (_S.IN_EVENT, _I.NEXT_SEGMENT): _S.IN_EVENT,  # §2.5.2.3: long event, next segment
    (_S.IN_EVENT, _I.NEXT_SEGMENT_END): _S.IDLE,  # report it
    (_S.IN_EVENT, _I.NEW_UPDATE): _S.IN_EVENT,  # report the open one (its ends were lost), open new
    (_S.IN_EVENT, _I.NEW_END): _S.IDLE,  # report the open one, then the new one
    (_S.IN_EVENT, _I.LATE): _S.IN_EVENT,  # report the late one at once, keep the open one
    (_S.IN_EVENT, _I.DUPLICATE): _S.IN_EVENT,
    (_S.IN_EVENT, _I.STALE): _S.IN_EVENT,
    (_S.IN_EVENT, _I.TIMEOUT): _S.IDLE,  # report it
}


@dataclass(slots=True)
class _OpenEvent:
    code: int
    timestamp: int  # timestamp of the event's current segment
    segments: int  # completed 0xFFFF segments before the current one (§2.5.2.3)
    duration: int  # longest duration seen in the current segment
    last_seen: float


class DtmfReceiver:
    """Reports each received DTMF digit exactly once (RFC 4733 §2.5.2).

    A new event is told apart by its RTP timestamp (§2.5.2); a packet whose timestamp is
    0xFFFF past the open event's, with the same code, continues it as a new segment (§2.5.2.3).
    The timestamps of the last ``remembered`` reported events are kept (bounded memory) so that
    end retransmissions, duplicates and stragglers are ignored. Non-DTMF events (code > 15) are
    counted in ``ignored``; malformed payloads are counted in ``malformed`` and dropped, so that
    `receive` never raises for the peer's junk. Packets older than ``max_late_s`` (on the RTP
    clock) behind the newest event are dropped as stale.
    """

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        end_timeout_s: float = 0.5,
        max_late_s: float = 5.0,
        remembered: int = 32,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, got {clock_rate}")
        if end_timeout_s <= 0:
            raise ValueError(f"end_timeout_s must be positive, got {end_timeout_s}")
        self.clock_rate = clock_rate
        self.end_timeout_s = end_timeout_s
        self._max_late_ticks = int(max_late_s * clock_rate)
        self.state = ReceiverState.IDLE
        self._open: _OpenEvent | None = None
        self._newest: int | None = None  # newest event timestamp seen
        self._reported: deque[int] = deque(maxlen=remembered)
        self.malformed = 0
        self.ignored = 0
        self.duplicates = 0

    def receive(self, payload: bytes, timestamp: int, now: float) -> list[DtmfDigitReceived]:
        """Feed one telephone-event RTP payload with its RTP timestamp; digits now complete."""
        out = self.poll(now)
        try:
            event = TelephoneEvent.parse(payload)
        except TelephoneEventError:
            self.malformed += 1
            return out
        if event.event >= len(DTMF_DIGITS):
            self.ignored += 1
            return out
        timestamp %= _TS_MODULO
        what = self._classify(event, timestamp)
        self._apply(what, event, timestamp, now, out)
        return out

    def poll(self, now: float) -> list[DtmfDigitReceived]:
        """Report the open event if nothing of it arrived for ``end_timeout_s``."""
        out: list[DtmfDigitReceived] = []
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._apply(ReceiverInput.TIMEOUT, None, 0, now, out)
        return out

    def next_deadline(self) -> float | None:
        """When `poll` would report the open event, or None."""
        if self._open is None:
            return None
        return self._open.last_seen + self.end_timeout_s

    def _classify(self, event: TelephoneEvent, timestamp: int) -> ReceiverInput:
        if timestamp in self._reported:
            return ReceiverInput.DUPLICATE
        current = self._open
        if current is not None:
            if timestamp == current.timestamp:
                return ReceiverInput.END if event.end else ReceiverInput.UPDATE
            continues = (current.timestamp + MAX_DURATION) % _TS_MODULO
            if timestamp == continues and event.event == current.code:
                return ReceiverInput.NEXT_SEGMENT_END if event.end else ReceiverInput.NEXT_SEGMENT
        if self._newest is None:
            return ReceiverInput.NEW_END if event.end else ReceiverInput.NEW_UPDATE
        ahead = (timestamp - self._newest) % _TS_MODULO
        if ahead < _TS_HALF:
            return ReceiverInput.NEW_END if event.end else ReceiverInput.NEW_UPDATE
        if _TS_MODULO - ahead > self._max_late_ticks:
            return ReceiverInput.STALE
        return ReceiverInput.LATE

    def _apply(
        self,
        what: ReceiverInput,
        event: TelephoneEvent | None,
        timestamp: int,
        now: float,
        out: list[DtmfDigitReceived],
    ) -> None:
        self.state = RECEIVER_TRANSITIONS[(self.state, what)]
        match what:
            case ReceiverInput.DUPLICATE | ReceiverInput.STALE:
                self.duplicates += 1
            case ReceiverInput.NEXT_SEGMENT | ReceiverInput.NEXT_SEGMENT_END:
                assert self._open is not None and event is not None
                # §2.5.2.3: the finished segment's timestamp can only bring stragglers now.
                self._reported.append(self._open.timestamp)
                self._open.segments += 1
                self._open.timestamp = self._newest = timestamp
                self._open.duration = event.duration
                self._open.last_seen = now
                if what is ReceiverInput.NEXT_SEGMENT_END:
                    self._report_open(now, out)
            case ReceiverInput.UPDATE | ReceiverInput.END:
                assert self._open is not None and event is not None
                self._open.duration = max(self._open.duration, event.duration)
                self._open.last_seen = now
                if what is ReceiverInput.END:
                    self._report_open(now, out)
            case ReceiverInput.TIMEOUT:
                self._report_open(now, out)
            case ReceiverInput.NEW_UPDATE | ReceiverInput.NEW_END:
                assert event is not None
                self._report_open(now, out)
                self._newest = timestamp
                self._open = _OpenEvent(
                    code=event.event,
                    timestamp=timestamp,
                    segments=0,
                    duration=event.duration,
                    last_seen=now,
                )
                if what is ReceiverInput.NEW_END:
                    self._report_open(now, out)
            case ReceiverInput.LATE:
                assert event is not None
                self._reported.append(timestamp)
                out.append(self._digit(event.event, 0, event.duration, now))

    def _report_open(self, now: float, out: list[DtmfDigitReceived]) -> None:
        current = self._open
        if current is None:
            return
        self._open = None
        self._reported.append(current.timestamp)
        out.append(self._digit(current.code, current.segments, current.duration, now))

    def _digit(self, code: int, segments: int, duration: int, now: float) -> DtmfDigitReceived:
        ticks = segments * MAX_DURATION + duration
        return DtmfDigitReceived(
            digit=DTMF_DIGITS[code],
            duration_ms=round(ticks * 1000 / self.clock_rate),
            now=now,
        )
