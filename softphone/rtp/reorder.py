"""RTP reorder buffer: packets in arrival order in, packets in sequence order out (sans-IO).

For RTSP over UDP, where packets overtake each other; TCP interleaved uses it too with
``capacity=1``, which passes packets straight through but still drops duplicates and follows
sender restarts.

- Sequence numbers are extended past their 16-bit wrap (RFC 3550 §A.1): each one is placed at
  the signed 16-bit distance from the next one expected.
- A packet ahead of a hole is held until the hole is filled, until the oldest held packet has
  waited ``max_delay_s`` (FFmpeg's 100 ms reorder delay) or until ``capacity`` packets are held
  (gortsplib's 64): then the missing packets are given up on, counted in ``lost``, and the next
  packet out carries how many in its ``lost_before``.
- Duplicates (a packet already held or recently released, e.g. Geovision cameras) are dropped and
  counted; a packet older than the hole it belonged to is ``late`` and dropped (already counted
  lost).
- Large jumps (RFC 3550 §A.1: more than MAX_DROPOUT ahead or MAX_MISORDER behind) and SSRC
  changes are not believed from one packet: the packet waits on probation, and a second one
  close to it in the new sequence space, with no packet of the current space in between,
  resynchronises the buffer there without declaring the jump lost. This follows a sender
  restart and cameras whose first packets carry a bogus sequence number (0 or 1, then a jump),
  while a stray packet, or a second stream interleaved with this one (a stale session still
  sending), changes nothing.
- Memory is bounded: at most ``capacity`` packets held, PROBATION_SIZE on probation and
  RECENT_SIZE sequence numbers remembered.

- A deliberate skip (RTSP PLAY after PAUSE: the server goes on at the sequence number its
  RTP-Info names, RFC 2326 §12.33, and a live source has moved on meanwhile) is announced with
  :meth:`ReorderBuffer.restart`: the numbers skipped were never sent, so they are not lost.

The buffer starts at the first packet it gets: packets older than that one are late.
Time goes in by argument (``now``, seconds on any monotonic clock); ``next_deadline()`` says when
``poll(now)`` must be called next.
"""

from __future__ import annotations

from collections import deque
from typing import Final, TypeAlias

from softphone.rtp.errors import RtpError
from softphone.rtp.packet import RtpPacket

MAX_DROPOUT: Final = 3000  # RFC 3550 §A.1
MAX_MISORDER: Final = 100  # RFC 3550 §A.1
PROBATION_SIZE: Final = 8  # packets from a new sequence space waiting to be believed
PROBATION_SPAN: Final = 64  # how close two of them must be to confirm the new space
RECENT_SIZE: Final = MAX_MISORDER  # released sequence numbers remembered to spot duplicates

Released: TypeAlias = tuple[RtpPacket, int]
"""A packet in sequence order and ``lost_before``: packets given up on right before it."""


def _signed16(delta: int) -> int:
    """A sequence-number difference folded into [-32768, 32767] (RFC 1982 serial arithmetic)."""
    return (delta + 0x8000) % 0x10000 - 0x8000


class ReorderBuffer:
    """Puts RTP packets of one stream back in sequence order.

    Counters: ``received`` (every packet pushed), ``lost`` (sequence numbers given up on),
    ``duplicates``, ``reordered`` (arrived after a higher sequence number, in time), ``late``
    (arrived after its hole was given up on), ``resyncs`` (jumps to a new sequence space).
    """

    def __init__(self, *, capacity: int = 64, max_delay_s: float = 0.1) -> None:
        if capacity < 1:
            raise RtpError(f"capacity must be at least 1, got {capacity}")
        if max_delay_s < 0:
            raise RtpError(f"max_delay_s must not be negative, got {max_delay_s}")
        self.capacity = capacity
        self.max_delay_s = max_delay_s
        self._ssrc: int | None = None
        self._expected = 0  # extended sequence number of the next packet out
        self._highest = 0  # highest extended sequence number received
        self._held: dict[int, tuple[RtpPacket, float]] = {}
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()
        self._probation: deque[tuple[RtpPacket, float]] = deque(maxlen=PROBATION_SIZE)
        self.received = 0
        self.lost = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.resyncs = 0

    def push(self, packet: RtpPacket, now: float) -> list[Released]:
        """Take a packet as it arrives; return the packets now in order."""
        self.received += 1
        if self._ssrc is None:
            self._resync([(packet, now)], base=packet.sequence)
            return self._release(now)
        ext = self._extend(packet.sequence)
        delta = ext - self._expected
        if packet.ssrc != self._ssrc or not -MAX_MISORDER <= delta < MAX_DROPOUT:
            return self._on_probation(packet, now) + self._release(now)
        self._probation.clear()  # the new space must arrive back to back (RFC 3550 §A.1)
        if delta < 0:
            if ext in self._recent_set:
                self.duplicates += 1
            else:
                self.late += 1
        elif ext in self._held:
            self.duplicates += 1
        else:
            if ext < self._highest:
                self.reordered += 1
            self._highest = max(self._highest, ext)
            self._held[ext] = (packet, now)
        return self._release(now)

    def poll(self, now: float) -> list[Released]:
        """Give up on holes whose time has come; return the packets now in order."""
        return self._release(now)

    def restart(self, sequence: int | None, now: float) -> list[Released]:
        """The sender goes on at ``sequence`` on purpose (RTSP PLAY after PAUSE: RTP-Info's
        ``seq``, RFC 2326 §12.33): what was sent before is released (holes there are lost),
        and the numbers between are not counted lost. Packets of the new run that arrived
        before the announcement (UDP can overtake the PLAY answer) are kept in it; older ones
        that come later are late. ``sequence`` None: start over at the next packet, as a new
        buffer does. Returns the packets now in order."""
        if sequence is None or self._ssrc is None:
            out = self._drain_held()
            self._ssrc = None  # the next packet starts the space (push)
            self._probation.clear()
            return out
        start = self._extend(sequence)
        early = [(p, t) for ext, (p, t) in self._held.items() if ext >= start]
        self._held = {ext: entry for ext, entry in self._held.items() if ext < start}
        early += [
            (p, t)
            for p, t in self._probation
            if p.ssrc == self._ssrc and 0 <= _signed16(p.sequence - sequence) < MAX_DROPOUT
        ]
        out = self._drain_held()
        self._held = {sequence + _signed16(p.sequence - sequence): (p, t) for p, t in early}
        self._expected = sequence
        self._highest = max(self._held, default=sequence)
        self._recent.clear()
        self._recent_set.clear()
        self._probation.clear()
        return out + self._release(now)

    def _drain_held(self) -> list[Released]:
        """Everything held, in order, the holes between counted lost."""
        out: list[Released] = []
        for ext in sorted(self._held):
            out.append((self._held[ext][0], ext - self._expected))
            self.lost += ext - self._expected
            self._expected = ext + 1
            self._remember(ext)
        self._held = {}
        return out

    def next_deadline(self) -> float | None:
        """When ``poll`` may release something (None while nothing is held)."""
        if not self._held:
            return None
        return min(arrival for _, arrival in self._held.values()) + self.max_delay_s

    def __len__(self) -> int:
        """Packets held (waiting for a hole to be filled)."""
        return len(self._held)

    def _extend(self, sequence: int) -> int:
        return self._expected + _signed16(sequence - self._expected)

    def _release(self, now: float) -> list[Released]:
        out: list[Released] = []
        lost_before = 0
        while True:
            while (entry := self._held.pop(self._expected, None)) is not None:
                out.append((entry[0], lost_before))
                lost_before = 0
                self._remember(self._expected)
                self._expected += 1
            if not self._held:
                return out
            deadline = min(arrival for _, arrival in self._held.values()) + self.max_delay_s
            if len(self._held) < self.capacity and now < deadline:
                return out
            first = min(self._held)  # give up on the hole before it
            lost_before = first - self._expected
            self.lost += lost_before
            self._expected = first

    def _remember(self, ext: int) -> None:
        self._recent.append(ext)
        self._recent_set.add(ext)
        if len(self._recent) > RECENT_SIZE:
            self._recent_set.discard(self._recent.popleft())

    def _on_probation(self, packet: RtpPacket, now: float) -> list[Released]:
        """A packet far from the current sequence space or from another SSRC: believe it once
        another packet lands close to it (RFC 3550 §A.1 probation)."""
        group = [
            (p, t)
            for p, t in self._probation
            if p.ssrc == packet.ssrc
            and 0 < abs(_signed16(p.sequence - packet.sequence)) <= PROBATION_SPAN
        ]
        if not group:
            self._probation.append((packet, now))
            return []
        out = self._drain_held()  # out with what the old space still holds, then start over
        self._resync([*group, (packet, now)], base=packet.sequence)
        self.resyncs += 1
        return out

    def _resync(self, packets: list[tuple[RtpPacket, float]], *, base: int) -> None:
        """Start a sequence space at the lowest of ``packets`` (all of one SSRC)."""
        self._ssrc = packets[-1][0].ssrc
        exts = {base + _signed16(p.sequence - base): (p, t) for p, t in packets}
        self._held = exts
        self._expected = min(exts)
        self._highest = max(exts)
        self._recent.clear()
        self._recent_set.clear()
        self._probation.clear()
