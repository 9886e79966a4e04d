"""Retransmission for video (RFC 4585 §6.2.1 Generic NACK): which packets to ask for, and the
packets we keep to send again (sans-IO: sequence numbers, ``now`` and the RTT in; lists out).

Receiver: :class:`NackGenerator` sees every RTP packet's sequence number as it arrives (before
the reorder buffer, so that a gap is seen at once) and keeps the missing ones. :meth:`poll`
gives those to put in a NACK now:

- first after ``reorder_wait_s`` (a packet only reordered by a few ms must not be asked for);
- again one RTT later if it still has not come (RFC 4585 §3.4 leaves the timing to us; a
  sooner resend asks for what is already on its way, RTT from the RTCP reports, floor
  ``min_resend_s`` for a LAN's near-zero RTT);
- at most ``max_retries`` times, and never once it is older than ``max_age_s``: by then the
  frame it belongs to is late for playout and a key frame (PLI) is the cheaper repair. Those
  come out in ``gave_up``; the depacketiser has dropped the frame and waits for the key frame.

A gap wider than ``max_missing`` (a long outage, a sender restart) is not NACKed packet by packet:
the list is cleared and ``keyframe_needed`` is set; so is it when anything is given up.

Sender: :class:`SendHistory` keeps the last ``max_packets`` packets sent (no older than
``max_age_s``) by sequence number and gives them back for a NACK, each at most once per RTT
(a burst of NACKs for one packet is answered once).

Retransmission sends the packet again as it was (same SSRC and sequence number): RFC 4588 RTX
streams are not negotiated; receivers drop what they already have as a duplicate.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from softphone.rtp.packet import RtpPacket

MAX_MISSING: Final = 256
MAX_RETRIES: Final = 10
MAX_AGE_S: Final = 1.0
REORDER_WAIT_S: Final = 0.01
MIN_RESEND_S: Final = 0.02
HISTORY_PACKETS: Final = 1024  # ~1.5 s of 5 Mbit/s in 1,200-byte packets


def _delta(seq: int, ref: int) -> int:
    """``seq - ref`` modulo 2^16 as a signed number (-32768..32767): ahead or behind."""
    return (seq - ref + 0x8000 & 0xFFFF) - 0x8000


@dataclass(slots=True)
class _Missing:
    since: float
    sent_at: float | None = None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class NackPoll:
    """What :meth:`NackGenerator.poll` decided."""

    nack: tuple[int, ...] = ()
    """Sequence numbers to NACK now (16-bit)."""
    gave_up: tuple[int, ...] = ()
    """Missing for too long or asked for too often: no longer asked for."""


@dataclass(slots=True)
class NackGenerator:
    """The missing sequence numbers of one received stream, and when to ask for them."""

    max_missing: int = MAX_MISSING
    max_retries: int = MAX_RETRIES
    max_age_s: float = MAX_AGE_S
    reorder_wait_s: float = REORDER_WAIT_S
    min_resend_s: float = MIN_RESEND_S
    keyframe_needed: bool = False
    """Set when packets were given up or a gap was too wide; the caller clears it once it has
    sent a PLI."""
    nacked: int = 0
    """NACK requests handed out, counting each sequence number each time."""
    recovered: int = 0
    """Missing packets that arrived after all (reordered or retransmitted)."""
    _highest: int | None = None
    _missing: OrderedDict[int, _Missing] = field(default_factory=OrderedDict)

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(self._missing)

    def received(self, seq: int, now: float) -> None:
        """A packet with sequence number ``seq`` arrived (any order, duplicates included)."""
        seq &= 0xFFFF
        if self._highest is None:
            self._highest = seq
            return
        ahead = _delta(seq, self._highest)
        if ahead <= 0:  # late: reordered, or the retransmission we asked for
            if self._missing.pop(seq, None) is not None:
                self.recovered += 1
            return
        if ahead - 1 > self.max_missing:
            self._missing.clear()
            self.keyframe_needed = True
        else:
            for i in range(1, ahead):
                self._missing[(self._highest + i) & 0xFFFF] = _Missing(since=now)
            while len(self._missing) > self.max_missing:  # the oldest go first
                self._missing.popitem(last=False)
                self.keyframe_needed = True
        self._highest = seq

    def poll(self, now: float, rtt_s: float | None = None) -> NackPoll:
        """What to NACK now, given the round-trip time (None while unknown: 4 x
        ``min_resend_s``, a guess that does not flood a slow path)."""
        interval = max(self.min_resend_s, rtt_s if rtt_s is not None else 4 * self.min_resend_s)
        nack: list[int] = []
        gave_up: list[int] = []
        for seq, entry in list(self._missing.items()):
            if now - entry.since > self.max_age_s or (
                entry.retries >= self.max_retries
                and entry.sent_at is not None
                and now - entry.sent_at >= interval
            ):
                del self._missing[seq]
                gave_up.append(seq)
                continue
            if entry.sent_at is None:
                due = now - entry.since >= self.reorder_wait_s
            else:
                due = now - entry.sent_at >= interval and entry.retries < self.max_retries
            if due:
                entry.sent_at = now
                entry.retries += 1
                nack.append(seq)
        if gave_up:
            self.keyframe_needed = True
        self.nacked += len(nack)
        return NackPoll(tuple(nack), tuple(gave_up))

    def next_due(self, rtt_s: float | None = None) -> float | None:
        """When :meth:`poll` has something to do next (for the caller's timer); None when
        nothing is missing."""
        interval = max(self.min_resend_s, rtt_s if rtt_s is not None else 4 * self.min_resend_s)
        times = [
            e.since + self.reorder_wait_s if e.sent_at is None else e.sent_at + interval
            for e in self._missing.values()
        ]
        return min(times, default=None)


@dataclass(slots=True)
class _Sent:
    packet: RtpPacket
    at: float
    resent_at: float | None = None


class SendHistory:
    """The packets of one sent stream, by sequence number, for answering NACKs."""

    def __init__(
        self,
        *,
        max_packets: int = HISTORY_PACKETS,
        max_age_s: float = MAX_AGE_S,
        min_resend_s: float = MIN_RESEND_S,
    ) -> None:
        self.max_packets = max_packets
        self.max_age_s = max_age_s
        self.min_resend_s = min_resend_s
        self._sent: OrderedDict[int, _Sent] = OrderedDict()
        self.resent = 0
        self.missed = 0  # NACKed packets no longer (or never) in the history

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, packet: RtpPacket, now: float) -> None:
        """A packet just sent. A sequence number seen again (after 65,536 packets) replaces the
        old packet."""
        self._sent.pop(packet.sequence, None)
        self._sent[packet.sequence] = _Sent(packet, now)
        self._expire(now)

    def resend(
        self, sequences: tuple[int, ...], now: float, rtt_s: float | None = None
    ) -> list[RtpPacket]:
        """The packets to send again for a NACK of ``sequences``, in the order asked; each at
        most once per RTT (``min_resend_s`` at least)."""
        self._expire(now)
        interval = max(self.min_resend_s, rtt_s or 0.0)
        out = []
        for seq in dict.fromkeys(s & 0xFFFF for s in sequences):
            sent = self._sent.get(seq)
            if sent is None:
                self.missed += 1
                continue
            if sent.resent_at is not None and now - sent.resent_at < interval:
                continue
            sent.resent_at = now
            out.append(sent.packet)
        self.resent += len(out)
        return out

    def _expire(self, now: float) -> None:
        while self._sent and (
            len(self._sent) > self.max_packets
            or now - next(iter(self._sent.values())).at > self.max_age_s
        ):
            self._sent.popitem(last=False)
