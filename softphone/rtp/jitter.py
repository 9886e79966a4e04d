"""Adaptive jitter buffer: packet scheduling only, codec-free and sans-IO.

Packets go in with their arrival time (``put(..., now=...)``); the playout asks what to produce
next (``next_frame(now=..., ...)``) whenever its queue of decoded audio runs short, and gets a
:class:`Decision`: play a packet, rebuild a missing frame from the next packet's FEC, conceal for
a while, or play silence before the first packet is due, plus a time-stretch request. Payloads
are opaque objects; nothing here decodes audio, reads a clock or draws random numbers.

Design (and how it differs from WebRTC NetEQ and PJSIP's jbuf):

- **Timeline.** A media cursor (extended RTP timestamp of the next tick to produce) advances with
  every tick produced, concealment included. The *deadline offset* of the frame at the cursor is
  ``D = now - T/clock`` (the packet had to arrive by ``now``), and each arrival has an *arrival
  offset* ``A = arrival - T/clock``: a packet is on time iff ``A <= D``.
- **Target** (estimated in :mod:`softphone.rtp.jitter_target`). Arrivals are grouped into 100 ms intervals of receiver time (so packets that bunch
  behind one slow packet, FIFO, count once, and a delay spike is one event, as NetEQ's 500 ms
  maxima). Each interval's largest ``A`` is taken relative to a baseline: the larger of the
  fastest arrivals in the 0.5 s before and the 0.5 s after it, which follows a step of the base
  delay either way within 0.5 s and absorbs clock drift (the baseline moves with it). The target
  is ``D* = baseline now + the 70 % quantile of those relative maxima over the last 5 s + 1 ms``
  (about the 93rd-97th percentile of single packets): a change of the distribution moves it once
  30 % of intervals show it (fast attack), and it falls as soon as they leave the window (a decay
  of a few seconds, not NetEQ's ~30 s forgetting). Rarer late packets are waited for (below).
- **Missing packets are waited for, not skipped.** When the frame at the cursor is missing and no
  later packet is here, we conceal only up to the end of the playout's block and ask again. If the
  missing packet then arrives it is played (late, "slipped") from its own packet and the extra
  delay is removed afterwards by accelerating; if a later packet arrives instead, the missing frame
  is concealed (or rebuilt from that packet's in-band FEC, RFC 6716 / RFC 7587 §3.3) and playout
  continues at the later packet's time. A reordered packet thus gets until the next packet's time.
  A long wait is costly (the whole timeline slips), so while the recent late rate is under a small
  budget (0.6 %), a packet that turns up more than 40 ms behind the cursor is given up instead
  (late); over budget, it is waited for. A packet older than the cursor after something newer was
  played is late and dropped.
- **Stretch control.** The frame's *play* offset ``P = D + queued`` is kept at ``D* + block``
  (a frame must be here at the pull that starts it, at most a block before it plays). When the
  playout pulls the same block at regular times (the benchmark's 5 ms pump), pulls form a
  lattice and a frame's real deadline is the offset of the last pull before it, one of
  ``D + k * block``: ``P`` is then kept at the lowest such point at or above ``D*`` (the frame
  starts exactly on a pull; ``D* + block`` waited half a block for nothing on average). A call's
  pump pulls what the speaker needs, irregularly, so calls keep ``D* + block``. Pauses take the
  correction: every decision carries ``quiet_ticks`` (P's distance from its target) and the
  playout cuts or pads a quiet frame by that much, inaudibly. Speech is stretched gently: a
  pitch period at most every 120 ms (a refused stretch does not count) when P is 8 ms above its
  target (not in the first second, whose target is a guess) or 2 ms below it, and every frame
  only 60 ms or more off (a spike). The target has a 10 ms floor (pull blocks and event-loop
  hiccups), the start is 20 ms after the fastest packet seen before playout begins. Clock drift
  is absorbed by the same loop: the baseline drifts and ``P`` follows. A governor counts what
  the playout really stretched: above 3 % of recent audio only the large corrections are made.
- **Sequence numbers and timestamps** are extended past their 16/32-bit wrap (RFC 3550 §A.1); a
  jump of the sequence number beyond MAX_DROPOUT/MAX_MISORDER needs a second, consecutive packet to
  be believed (RFC 3550 §A.1 probation) and then restarts the buffer; so does a packet whose
  arrival offset is seconds away from the recent ones (a timestamp jump, a new source).
- **Bounded memory.** At most ``max_packets`` packets are held (the oldest are dropped, counted),
  the statistics keep a fixed number of intervals and the played-sequence memory is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final, Generic, TypeVar

from softphone.rtp.jitter_target import JitterConfig, TargetEstimator

PayloadT = TypeVar("PayloadT")

RTP_SEQ_MOD: Final = 1 << 16
RTP_TS_MOD: Final = 1 << 32
MAX_DROPOUT: Final = 3000  # RFC 3550 §A.1
MAX_MISORDER: Final = 100  # RFC 3550 §A.1
MOVED_TIMELINE_PACKETS: Final = 3  # packets in a row later than max_slip_ms (see put)
PLAYED_MEMORY: Final = 512  # sequence numbers remembered to tell duplicates from late packets


class State(Enum):
    """Where the scheduler is."""

    EMPTY = auto()  # nothing received (or after reset())
    PREFETCHING = auto()  # packets here, the first one is not due yet: silence
    PLAYING = auto()  # the last thing produced was a packet (or its FEC)
    CONCEALING = auto()  # the last thing produced was concealment


class Input(Enum):
    """What happened to the scheduler."""

    PACKET_STORED = auto()
    PACKET_PLAYED = auto()
    FRAME_MISSED = auto()
    RESYNCED = auto()
    RESET = auto()


_S, _I = State, Input
TRANSITIONS: Final[Mapping[tuple[State, Input], State]] = {
    (_S.EMPTY, _I.PACKET_STORED): _S.PREFETCHING,
    (_S.PREFETCHING, _I.PACKET_STORED): _S.PREFETCHING,
    (_S.PLAYING, _I.PACKET_STORED): _S.PLAYING,
    (_S.CONCEALING, _I.PACKET_STORED): _S.CONCEALING,
    (_S.PREFETCHING, _I.PACKET_PLAYED): _S.PLAYING,
    (_S.PLAYING, _I.PACKET_PLAYED): _S.PLAYING,
    (_S.CONCEALING, _I.PACKET_PLAYED): _S.PLAYING,
    (_S.PLAYING, _I.FRAME_MISSED): _S.CONCEALING,
    (_S.CONCEALING, _I.FRAME_MISSED): _S.CONCEALING,
    (_S.PREFETCHING, _I.RESYNCED): _S.PREFETCHING,
    (_S.PLAYING, _I.RESYNCED): _S.PREFETCHING,
    (_S.CONCEALING, _I.RESYNCED): _S.PREFETCHING,
    (_S.EMPTY, _I.RESET): _S.EMPTY,
    (_S.PREFETCHING, _I.RESET): _S.EMPTY,
    (_S.PLAYING, _I.RESET): _S.EMPTY,
    (_S.CONCEALING, _I.RESET): _S.EMPTY,
}


class Action(Enum):
    """What the playout should produce."""

    PLAY = auto()  # decode ``payload`` (the packet at ``sequence``)
    FEC = auto()  # rebuild the last ``ticks`` of the missing frame from ``payload`` (next packet)
    CONCEAL = auto()  # ``ticks`` of concealment (codec PLC or pitch repetition)
    SILENCE = auto()  # ``ticks`` of silence (before the first packet is due)


class Stretch(Enum):
    """Time-stretch to apply to a played frame."""

    NONE = auto()
    ACCELERATE = auto()  # remove a pitch period
    FAST_ACCELERATE = auto()  # remove one or two, lower correlation needed
    EXPAND = auto()  # insert a pitch period


class Arrival(Enum):
    """What ``put`` did with a packet."""

    STORED = auto()
    DUPLICATE = auto()
    LATE = auto()  # its frame was already concealed (or rebuilt) and later audio played
    TOO_OLD = auto()  # far behind (more than MAX_MISORDER), or an unconfirmed sequence jump
    RESYNCED = auto()  # stored, after a restart of the buffer


class FrameKind(Enum):
    """How a frame's first sample was produced."""

    PACKET = auto()
    FEC = auto()
    CONCEALED = auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameStart:
    """A frame whose first tick lies ``offset_ticks`` into a decision's output."""

    sequence: int  # RTP sequence number (16 bits)
    timestamp: int  # RTP timestamp (32 bits)
    offset_ticks: int
    kind: FrameKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision(Generic[PayloadT]):
    """One step of playout. ``ticks`` of media (RTP clock) starting at ``timestamp``."""

    action: Action
    ticks: int
    timestamp: int
    sequence: int | None = None
    payload: PayloadT | None = None
    stretch: Stretch = Stretch.NONE
    quiet_ticks: int = 0
    """If the decoded frame turns out quiet, remove up to this many ticks of it (> 0) or insert
    this many (< 0) instead of applying ``stretch``: the deadline's distance from the target."""
    frame_starts: tuple[FrameStart, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JitterStats:
    """Counters and current delays (ms) of one scheduler."""

    state: State
    target_delay_ms: float  # target deadline over the fastest recent arrival
    buffer_delay_ms: float  # current deadline over the fastest recent arrival
    packets_received: int
    packets_played: int
    late: int
    duplicate: int
    too_old: int
    overflow: int
    frames_concealed: int  # frames skipped over (concealed, not rebuilt from FEC)
    fec_frames: int
    slips: int  # missing packets waited for and played late
    resyncs: int
    buffered_packets: int
    stale: int = 0  # queued before playout started and dropped as a backlog (_drop_backlog)


@dataclass(slots=True)
class _Packet(Generic[PayloadT]):
    sequence: int
    timestamp: int  # extended
    payload: PayloadT


class JitterBuffer(Generic[PayloadT]):
    """Packet scheduling for one stream. See the module docstring."""

    def __init__(
        self,
        *,
        clock_rate: int,
        frame_ticks: int,
        config: JitterConfig | None = None,
        granule_ticks: int = 1,
        use_fec: bool = True,
    ) -> None:
        if clock_rate <= 0 or frame_ticks <= 0 or granule_ticks <= 0:
            raise ValueError("clock_rate, frame_ticks and granule_ticks must be positive")
        self.clock_rate = clock_rate
        self.frame_ticks = frame_ticks
        self.granule_ticks = granule_ticks
        self.use_fec = use_fec
        self.config = config or JitterConfig()
        self.state = State.EMPTY
        self._packets: dict[int, _Packet[PayloadT]] = {}
        # Extended sequence numbers played lately, with their timestamps: a packet that comes
        # again with the same number and timestamp is a duplicate; with another timestamp, the
        # stream has restarted (a PBX replaying a prompt on the same SSRC).
        self._played: dict[int, int] = {}
        self._delay = TargetEstimator(self.config)  # D* and the baseline (jitter_target.py)
        self._counts = dict.fromkeys(
            (
                "received",
                "played",
                "skipped",
                "late",
                "duplicate",
                "too_old",
                "overflow",
                "stale",
                "fec",
                "slips",
                "resyncs",
            ),
            0,
        )
        self._last_stretch = -math.inf
        self._spacing_from: float | None = None  # _last_stretch before a request not yet answered
        self._regular_pulls = False  # as told by the latest next_frame()
        self._late_rate = 0.0
        self._stretch_rate = 0.0
        self._late_decay = 1.0 - 1.0 / max(1, self.config.late_memory_packets)
        self._last_deadline = 0.0
        self._restart_timeline()

    # -- state machine -------------------------------------------------------------------------

    def _apply(self, event: Input) -> None:
        self.state = TRANSITIONS[(self.state, event)]

    def _restart_timeline(self) -> None:
        self._highest: int | None = None  # extended sequence number of the newest packet
        self._highest_ts = 0  # its extended timestamp
        self._next_seq = 0  # extended sequence number of the frame at the cursor
        self._next_ts = 0  # its expected extended timestamp
        self._slot_seq = 0  # next sequence whose first tick has not been reported
        self._cursor = 0  # extended timestamp of the next tick to produce
        # the first packet of an unconfirmed jump: (sequence, timestamp, payload, arrival)
        self._probation: tuple[int, int, PayloadT, float] | None = None
        self._anchor_offset = math.inf  # arrival offset the start of playout was timed on
        # Packets in a row given up as later than max_slip_ms: the stream's timeline has moved
        # (a sender rewinding its timestamps, a delay step of seconds), not a spike; a few in a
        # row, and the next packet starts the buffer afresh instead of every packet being late.
        self._beyond_slip = 0
        self._started = False
        self._settled_at: float | None = None  # when the target first came from statistics

    def reset(self) -> None:
        """Forget everything (e.g. a new SSRC): the next packet starts afresh."""
        self._packets.clear()
        self._played.clear()
        self._delay.reset()
        self._restart_timeline()
        self._apply(Input.RESET)

    # -- input -----------------------------------------------------------------------------------

    def put(
        self, *, sequence: int, timestamp: int, payload: PayloadT, now: float, marker: bool = False
    ) -> Arrival:
        """Take one received packet (``marker``: start of a talkspurt, RFC 3551 §4.1; the
        timeline follows timestamps, so it needs no special handling)."""
        del marker
        sequence &= RTP_SEQ_MOD - 1
        timestamp &= RTP_TS_MOD - 1
        self._counts["received"] += 1
        self._late_rate *= self._late_decay
        if self._highest is None:
            self._start(sequence, timestamp, payload, now)
            return Arrival.STORED
        resynced = False
        if self._probation is not None:
            # RFC 3550 §A.1: a jump is believed when the next packet follows it. The packet on
            # probation starts the new timeline (its audio is not lost), this one follows.
            pseq, pts, ppayload, pnow = self._probation
            self._probation = None
            if (sequence - pseq) % RTP_SEQ_MOD == 1 and 0 < (timestamp - pts) % RTP_TS_MOD <= (
                self.clock_rate
            ):
                self._resync(pseq, pts, ppayload, pnow)
                resynced = True
        if not resynced and self._beyond_slip >= MOVED_TIMELINE_PACKETS:
            self._resync(sequence, timestamp, payload, now)
            return Arrival.RESYNCED
        assert self._highest is not None
        ext = self._extend_sequence(sequence)
        ext_ts = self._extend_timestamp(timestamp)
        if not resynced and self._restarted(ext, ext_ts):
            self._probation = (sequence, timestamp, payload, now)
            self._counts["too_old"] += 1
            return Arrival.TOO_OLD
        arrival = self._accept(ext, ext_ts, sequence, timestamp, payload, now)
        return Arrival.RESYNCED if resynced else arrival

    def _restarted(self, ext: int, ext_ts: int) -> bool:
        """Whether this packet belongs to another timeline than the one playing: a sequence jump
        too large for loss or reordering (RFC 3550 §A.1), a sequence number reused with another
        timestamp, or a newer sequence number with an older timestamp (time running backwards,
        which a continuous stream never does; silence suppression only moves it forward)."""
        assert self._highest is not None
        jump = ext - self._highest
        if jump > MAX_DROPOUT or (jump < -MAX_MISORDER and ext not in self._played):
            return True
        stored = self._packets.get(ext)
        seen_ts = stored.timestamp if stored is not None else self._played.get(ext)
        if seen_ts is not None and seen_ts != ext_ts:
            return True
        return ext > self._highest and ext_ts < self._highest_ts

    def _accept(
        self, ext: int, ext_ts: int, sequence: int, timestamp: int, payload: PayloadT, now: float
    ) -> Arrival:
        """A packet of the timeline playing (or of one just started)."""
        assert self._highest is not None
        offset = now - ext_ts / self.clock_rate
        if ext in self._packets or ext in self._played:
            self._counts["duplicate"] += 1
            return Arrival.DUPLICATE
        if (
            self._delay.baseline is not None
            and ext >= self._next_seq
            and abs(offset - self._delay.baseline) > self.config.resync_s
        ):
            self._resync(sequence, timestamp, payload, now)
            return Arrival.RESYNCED
        self._delay.observe(now, offset)
        if self.state is State.PREFETCHING and offset < self._anchor_offset:
            self._reanchor(offset, now)
        if ext > self._highest:
            self._highest, self._highest_ts = ext, ext_ts
        if self._started and ext < self._next_seq:
            if self._next_seq - ext > MAX_MISORDER:
                self._counts["too_old"] += 1
                return Arrival.TOO_OLD
            self._count_late()
            return Arrival.LATE
        self._store(_Packet(ext, ext_ts, payload))
        self._apply(Input.PACKET_STORED)
        return Arrival.STORED

    def _start(self, sequence: int, timestamp: int, payload: PayloadT, now: float) -> None:
        """The first packet (or the first after a restart) anchors the timeline."""
        ext = sequence + RTP_SEQ_MOD  # keep room below for late, reordered packets
        ext_ts = timestamp + RTP_TS_MOD
        self._highest, self._highest_ts = ext, ext_ts
        offset = now - ext_ts / self.clock_rate
        self._delay.observe(now, offset)
        self._next_seq = self._slot_seq = ext
        self._next_ts = ext_ts
        wait_s = self.config.initial_delay_ms / 1000.0
        if self._delay.target is not None and self._delay.baseline is not None:
            wait_s = max(0.0, self._delay.target - offset)
        # The cursor sits before the packet by the wait, so silence fills it (PREFETCHING).
        self._cursor = ext_ts - round(wait_s * self.clock_rate)
        self._anchor_offset = offset
        self._packets[ext] = _Packet(ext, ext_ts, payload)
        self._apply(Input.PACKET_STORED)

    def _reanchor(self, offset: float, now: float) -> None:
        """Before playout starts, a packet faster than the one the start was timed on moves the
        start earlier: the first packet of a stream is often the slowest (the sender's start-up),
        and removing that excess later would mean cutting or stretching audio."""
        first = self._earliest()
        if first is None:
            return
        shift = round((self._anchor_offset - offset) * self.clock_rate)
        moved = max(0, min(shift, first.timestamp - self._cursor))
        self._cursor += moved
        # What the cursor could not take (it reached the first packet) stays owed: the anchor
        # moves only by what was applied, so a backlog adds up over the packets that show it.
        self._anchor_offset -= moved / self.clock_rate
        backlog = shift - moved
        if backlog * 1000 > self.config.start_backlog_ms * self.clock_rate:
            target = self._cursor + backlog
            self._drop_backlog(target)
            self._anchor_offset = offset + (target - self._cursor) / self.clock_rate
            # The backlog's spread of arrival offsets is no jitter of the path: the target
            # starts again from this (the fastest) arrival.
            self._delay.reset()
            self._delay.observe(now, offset)

    def _drop_backlog(self, cursor: int) -> None:
        """Before playout starts, drop the packets wholly older than ``cursor``: they queued up
        while the receiver was not reading (a call's media set up after the far end began to
        send, an event loop busy at the start), and playing them would start the call that
        much late, a delay that only seconds of fast time-stretching of speech remove (it cost
        up to 0.9 of WB-PESQ on a clean call). The first words are lost instead, as they are
        when the call is answered a moment before the listener's ear is there."""
        stale = [
            seq for seq, p in self._packets.items() if p.timestamp + self.frame_ticks <= cursor
        ]
        for seq in stale:
            del self._packets[seq]
        self._counts["stale"] += len(stale)
        first = self._earliest()
        if first is None:  # never drop everything: the newest packet starts the playout
            return
        self._cursor = min(cursor, first.timestamp)
        self._next_seq = self._slot_seq = first.sequence
        self._next_ts = first.timestamp

    def _resync(self, sequence: int, timestamp: int, payload: PayloadT, now: float) -> None:
        self._counts["resyncs"] += 1
        self._packets.clear()
        self._played.clear()
        self._delay.reset()
        state = self.state
        self._restart_timeline()
        if state is not State.EMPTY:
            self._apply(Input.RESYNCED)
        self._start(sequence, timestamp, payload, now)

    def _count_late(self) -> None:
        self._counts["late"] += 1
        self._late_rate += 1.0 - self._late_decay

    def _store(self, packet: _Packet[PayloadT]) -> None:
        self._packets[packet.sequence] = packet
        if len(self._packets) > self.config.max_packets:
            oldest = min(self._packets)
            del self._packets[oldest]
            self._counts["overflow"] += 1

    def _extend_sequence(self, sequence: int) -> int:
        """RFC 3550 §A.1: the extended number closest to the newest one seen."""
        assert self._highest is not None
        diff = (sequence - self._highest) % RTP_SEQ_MOD
        if diff >= RTP_SEQ_MOD // 2:
            diff -= RTP_SEQ_MOD
        return self._highest + diff

    def _extend_timestamp(self, timestamp: int) -> int:
        """The extended timestamp closest to the newest packet's (RFC 3550 §5.1 wrap)."""
        diff = (timestamp - self._highest_ts) % RTP_TS_MOD
        if diff >= RTP_TS_MOD // 2:
            diff -= RTP_TS_MOD
        return self._highest_ts + diff

    # -- output ----------------------------------------------------------------------------------

    def pulled(self, ticks: int) -> None:
        """The playout is filling a block of ``ticks`` (once per pull): the target's floor
        follows the block size (``JitterConfig.pull_margin_ms``)."""
        self._delay.pulled(ticks / self.clock_rate)

    def next_frame(
        self,
        *,
        now: float,
        needed_ticks: int,
        queued_ticks: int = 0,
        quantum_ticks: int = 0,
        regular_pulls: bool = False,
    ) -> Decision[PayloadT]:
        """What to produce next. ``needed_ticks``: how much more the playout needs for the block
        it is filling (a hint for how long to conceal or stay silent); ``queued_ticks``: decoded
        audio queued before the next decision's output and not yet handed over; ``quantum_ticks``:
        the playout's block size (the step in which the deadline can move); ``regular_pulls``:
        the playout pulls ``quantum_ticks`` every ``quantum_ticks`` of time, so pulls form a
        lattice that frame starts can be aligned to."""
        self._regular_pulls = regular_pulls
        needed = max(1, needed_ticks)
        if self.state is State.EMPTY:
            return Decision(action=Action.SILENCE, ticks=needed, timestamp=0)
        while True:
            packet = self._earliest()
            if packet is not None and packet.timestamp <= self._cursor:
                slip = self._cursor - packet.timestamp
                limit_ms = self.config.max_slip_ms
                if self._late_rate < self.config.late_budget:
                    limit_ms = min(limit_ms, self.config.skip_after_ms)
                if slip * 1000 > limit_ms * self.clock_rate:
                    del self._packets[packet.sequence]
                    self._count_late()
                    if slip * 1000 > self.config.max_slip_ms * self.clock_rate:
                        self._beyond_slip += 1
                    continue
                return self._play(packet, now, queued_ticks, quantum_ticks, slip)
            break
        if self.state is State.PREFETCHING:
            due = packet.timestamp if packet is not None else self._cursor + needed
            ticks = max(1, min(needed, due - self._cursor))
            decision: Decision[PayloadT] = Decision(
                action=Action.SILENCE, ticks=ticks, timestamp=self._cursor % RTP_TS_MOD
            )
            self._cursor += ticks
            return decision
        gap = None if packet is None else packet.timestamp - self._cursor
        if (
            self.use_fec
            and packet is not None
            and gap is not None
            and gap <= self.frame_ticks
            and packet.sequence - 1 >= self._next_seq
            and packet.sequence - 1 not in self._packets
        ):
            return self._fec(packet, gap)
        ticks = needed if gap is None else min(needed, gap)
        ticks = -(-ticks // self.granule_ticks) * self.granule_ticks
        return self._conceal(ticks, None if packet is None else packet.sequence)

    def _earliest(self) -> _Packet[PayloadT] | None:
        if not self._packets:
            return None
        for seq in range(self._next_seq, self._next_seq + 8):
            found = self._packets.get(seq)
            if found is not None:
                return found
        candidates = [seq for seq in self._packets if seq >= self._next_seq]
        if not candidates:
            return None
        return self._packets[min(candidates)]

    def _slots_until(
        self, end_ts: int, limit_seq: int | None, kind: FrameKind, start_ts: int
    ) -> tuple[FrameStart, ...]:
        """Frames (not yet reported) whose expected first tick is in [start_ts, end_ts)."""
        starts: list[FrameStart] = []
        while limit_seq is None or self._slot_seq < limit_seq:
            expected = self._next_ts + (self._slot_seq - self._next_seq) * self.frame_ticks
            if expected >= end_ts:
                break
            if expected >= start_ts - self.frame_ticks:
                starts.append(
                    FrameStart(
                        sequence=self._slot_seq % RTP_SEQ_MOD,
                        timestamp=expected % RTP_TS_MOD,
                        offset_ticks=max(0, expected - start_ts),
                        kind=kind,
                    )
                )
            self._slot_seq += 1
            if len(starts) > 64:
                break
        return tuple(starts)

    def _conceal(self, ticks: int, limit_seq: int | None) -> Decision[PayloadT]:
        start = self._cursor
        starts = self._slots_until(start + ticks, limit_seq, FrameKind.CONCEALED, start)
        self._cursor += ticks
        self._apply(Input.FRAME_MISSED)
        return Decision(
            action=Action.CONCEAL, ticks=ticks, timestamp=start % RTP_TS_MOD, frame_starts=starts
        )

    def _fec(self, packet: _Packet[PayloadT], gap: int) -> Decision[PayloadT]:
        """Rebuild the end of frame ``packet.sequence - 1`` from ``packet`` (RFC 7587 §3.3)."""
        start = self._cursor
        starts = self._slots_until(packet.timestamp, packet.sequence, FrameKind.FEC, start)
        fec_starts = tuple(s for s in starts if s.kind is FrameKind.FEC)
        self._counts["fec"] += len(fec_starts)
        self._cursor = packet.timestamp
        self._apply(Input.PACKET_PLAYED)
        return Decision(
            action=Action.FEC,
            ticks=gap,
            timestamp=start % RTP_TS_MOD,
            sequence=packet.sequence % RTP_SEQ_MOD,
            payload=packet.payload,
            frame_starts=starts,
        )

    def _play(
        self,
        packet: _Packet[PayloadT],
        now: float,
        queued_ticks: int,
        quantum_ticks: int,
        slip: int,
    ) -> Decision[PayloadT]:
        del self._packets[packet.sequence]
        if slip > 0 and self.state is State.CONCEALING:
            self._counts["slips"] += 1
        self._counts["played"] += 1
        self._counts["skipped"] += packet.sequence - self._next_seq
        self._played[packet.sequence] = packet.timestamp
        if len(self._played) > PLAYED_MEMORY:
            del self._played[next(iter(self._played))]
        start = FrameStart(
            sequence=packet.sequence % RTP_SEQ_MOD,
            timestamp=packet.timestamp % RTP_TS_MOD,
            offset_ticks=0,
            kind=FrameKind.PACKET,
        )
        stretch, quiet_ticks = self._stretch_for(packet.timestamp, now, queued_ticks, quantum_ticks)
        self._next_seq = self._slot_seq = packet.sequence + 1
        self._next_ts = packet.timestamp + self.frame_ticks
        self._cursor = self._next_ts
        self._started = True
        self._beyond_slip = 0
        self._apply(Input.PACKET_PLAYED)
        return Decision(
            action=Action.PLAY,
            ticks=self.frame_ticks,
            timestamp=packet.timestamp % RTP_TS_MOD,
            sequence=packet.sequence % RTP_SEQ_MOD,
            payload=packet.payload,
            stretch=stretch,
            quiet_ticks=quiet_ticks,
            frame_starts=(start,),
        )

    def _stretch_for(
        self, timestamp: int, now: float, queued_ticks: int, quantum_ticks: int
    ) -> tuple[Stretch, int]:
        """Compare this frame's playout offset with the target (NetEQ decision_logic.cc), and
        say what to do if the frame is speech and what if it is quiet.

        The offset compared is the frame's *play* offset ``P = now + queued - T`` (its first
        sample plays after the queued audio), which only stretching and concealment move, not
        the deadline ``D = now - T``, which jitters by a block with the pull phase. Its target
        is :meth:`_play_target`.

        Quiet frames take the whole correction: ``quiet_ticks`` is ``P``'s distance from its
        target (cut that much, or pad it). Speech is time-stretched only gently: one pitch
        period at most every ``stretch_spacing_ms``, when ``P`` is more than
        ``speech_excess_ms`` above its target or ``hysteresis_ms`` below it; far off (a delay
        spike), every frame (fast mode above). In the first second speech is not accelerated."""
        if self._delay.target is None:
            return Stretch.NONE, 0
        config = self.config
        deadline = now - timestamp / self.clock_rate
        self._last_deadline = deadline
        play_s = deadline + queued_ticks / self.clock_rate
        excess_ms = (play_s - self._play_target(deadline, quantum_ticks)) * 1000.0
        self._stretch_rate *= self._late_decay
        quiet_ms = 0.0
        if abs(excess_ms) >= config.quiet_min_ms:
            quiet_ms = excess_ms
        quiet_ticks = math.floor(quiet_ms * self.clock_rate / 1000.0 + 1e-6)  # float error
        spaced = (now - self._last_stretch) * 1000.0 >= config.stretch_spacing_ms
        if self._stretch_rate > config.stretch_budget:
            spaced = False
        stretch = Stretch.NONE
        if excess_ms >= config.fast_excess_ms:
            stretch = Stretch.FAST_ACCELERATE
        elif excess_ms <= -config.fast_excess_ms:
            stretch = Stretch.EXPAND
        elif spaced and excess_ms >= config.speech_excess_ms and not self._settling(now):
            # While the statistics are young (the first second), the target is a guess and the
            # first packets often bunch: only quiet frames move the delay down; and for a while
            # after, so that the guess's excess goes in pauses, not in accelerated speech.
            stretch = Stretch.ACCELERATE
        elif spaced and excess_ms < -config.hysteresis_ms:
            stretch = Stretch.EXPAND
        self._spacing_from = None
        if stretch is not Stretch.NONE:
            self._spacing_from = self._last_stretch
            self._last_stretch = now
        return stretch, quiet_ticks

    def _settling(self, now: float) -> bool:
        """The target is a guess (warming up) or came from statistics less than
        ``settle_ms`` ago."""
        if self._delay.warming_up:
            return True
        if self._settled_at is None:
            self._settled_at = now
        return (now - self._settled_at) * 1000.0 < self.config.settle_ms

    def _play_target(self, deadline: float, quantum_ticks: int) -> float:
        """The target of the play offset ``P``, given this pull's deadline ``D``.

        A frame is decided at the last pull at or before its first sample (the playout asks
        only when its queue runs short of the block). When pulls are regular, they form a
        lattice and that pull's offset is one of ``D + k * block``: the target is the lowest
        such point at or above ``D*`` (the frame then starts exactly on a pull; more delay
        would wait for nothing). Otherwise a frame must be here up to a block before it plays,
        so the target is ``D* + block`` (then ``D >= D*`` whatever the pull's size and time)."""
        assert self._delay.target is not None
        block = max(0, quantum_ticks) / self.clock_rate
        if not self._regular_pulls or block <= 0.0:
            return self._delay.target + block
        steps = math.ceil((self._delay.target - deadline) / block - 1e-9)
        return deadline + steps * block

    def stretched(self, ticks: int) -> None:
        """The playout reports how many ticks the last stretch added or removed (0 if refused):
        feeds the stretch governor (a rate over the last ``late_memory_packets`` frames); a
        refused speech stretch does not hold the next one back by ``stretch_spacing_ms``."""
        self._stretch_rate += (1.0 - self._late_decay) * abs(ticks) / self.frame_ticks
        if ticks == 0 and self._spacing_from is not None:
            self._last_stretch = self._spacing_from  # refused: the next frame may try again
        self._spacing_from = None

    # -- reporting -------------------------------------------------------------------------------

    @property
    def target_delay_ms(self) -> float:
        """Target deadline over the fastest recent arrival (ms)."""
        if self._delay.target is None or self._delay.baseline is None:
            return self.config.initial_delay_ms
        return (self._delay.target - self._delay.baseline) * 1000.0

    def buffer_delay_ms(self, now: float) -> float:
        """Deadline of the frame at the cursor over the fastest recent arrival (ms)."""
        if self._delay.baseline is None or self.state is State.EMPTY:
            return 0.0
        return (now - self._cursor / self.clock_rate - self._delay.baseline) * 1000.0

    def stats(self, now: float) -> JitterStats:
        c = self._counts
        return JitterStats(
            state=self.state,
            target_delay_ms=self.target_delay_ms,
            buffer_delay_ms=self.buffer_delay_ms(now),
            packets_received=c["received"],
            packets_played=c["played"],
            late=c["late"],
            duplicate=c["duplicate"],
            too_old=c["too_old"],
            overflow=c["overflow"],
            frames_concealed=max(0, c["skipped"] - c["fec"]),
            fec_frames=c["fec"],
            slips=c["slips"],
            resyncs=c["resyncs"],
            buffered_packets=len(self._packets),
            stale=c["stale"],
        )
