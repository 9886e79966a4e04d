"""Reception state of one remote RTP source (RFC 3550 §A.1, §A.3, §A.8) (sans-IO).

What the RTP session (rtp/session.py) keeps per remote SSRC: source validation with probation
and sequence tracking as a table (``SOURCE_TRANSITIONS``, RFC 3550 §A.1 ``update_seq``), the
extended highest sequence number and the counts that loss is figured from (§A.3), interarrival
jitter (§A.8), and a Gilbert-model burst counter for the E-model's burst ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from softphone.rtp.packet import RtpPacket

Address: TypeAlias = tuple[str, int]

# RFC 3550 §A.1 constants.
MIN_SEQUENTIAL: Final = 2  # packets in sequence before a source is valid (hard-wired below)
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100
RTP_SEQ_MOD: Final = 1 << 16
BURST_SETTLE: Final = MAX_MISORDER  # a sequence slot is final once the max is this far ahead
_U32: Final = 0xFFFF_FFFF


def _signed32(value: int) -> int:
    value &= _U32
    return value - (1 << 32) if value & 0x8000_0000 else value


class SourceState(Enum):
    PROBATION = auto()  # one packet seen (held), waiting for the next in sequence
    VALID = auto()


class SequenceInput(Enum):
    """How a packet's sequence number relates to the source's state (RFC 3550 §A.1)."""

    SEQUENTIAL = auto()  # probation: exactly max_seq + 1
    NOT_SEQUENTIAL = auto()  # probation: anything else (probation restarts)
    IN_ORDER = auto()  # valid: ahead of max_seq by less than MAX_DROPOUT (gaps are losses)
    MISORDERED = auto()  # valid: a duplicate, or behind max_seq by at most MAX_MISORDER
    JUMP = auto()  # valid: a very large jump; dropped, remembered as bad_seq
    RESTART = auto()  # valid: the packet after a JUMP: the peer restarted, re-sync


S, SI = SourceState, SequenceInput
SOURCE_TRANSITIONS: Final[Mapping[tuple[SourceState, SequenceInput], SourceState]] = {
    (S.PROBATION, SI.SEQUENTIAL): S.VALID,
    (S.PROBATION, SI.NOT_SEQUENTIAL): S.PROBATION,
    (S.VALID, SI.IN_ORDER): S.VALID,
    (S.VALID, SI.MISORDERED): S.VALID,
    (S.VALID, SI.JUMP): S.VALID,
    (S.VALID, SI.RESTART): S.VALID,
}


# --- receive-side bookkeeping --------------------------------------------------------------------
class BurstCounter:
    """Gilbert-model transitions over settled sequence slots (received/lost), reorder-tolerant.

    A slot settles once the highest sequence is BURST_SETTLE ahead, so a late packet is not a loss.
    p = P(lost | previous received), q = P(received | previous lost), BurstR = 1 / (p + q).
    """

    __slots__ = ("_pending", "_settled", "_was_received", "counts")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]  # received->received, received->lost, lost->received, lost->lost
        self._settled: int | None = None  # the extended sequence of the last settled slot
        self._was_received = True
        self._pending: set[int] = set()

    def restart(self, first_received: int) -> None:
        """A new source (or re-sync): ``first_received`` is a received slot; counts are kept."""
        self._settled = first_received
        self._was_received = True
        self._pending.clear()

    def received(self, extended: int, highest: int) -> None:
        if self._settled is None or extended <= self._settled:
            return
        self._pending.add(extended)
        while self._settled < highest - BURST_SETTLE:
            self._settle()

    def _settle(self) -> None:
        assert self._settled is not None
        self._settled += 1
        got = self._settled in self._pending
        self._pending.discard(self._settled)
        self.counts[(0 if self._was_received else 2) + (0 if got else 1)] += 1
        self._was_received = got

    def burst_ratio(self, highest: int | None) -> float:
        rr, rl, lr, ll = self.counts
        if self._settled is not None and highest is not None:  # settle the rest on a copy
            was = self._was_received
            for slot in range(self._settled + 1, highest + 1):
                got = slot in self._pending
                if was:
                    rr, rl = rr + got, rl + (not got)
                else:
                    lr, ll = lr + got, ll + (not got)
                was = got
        if rl == 0 or lr + ll == 0:
            return 1.0
        p = rl / (rr + rl)
        q = lr / (lr + ll)
        return 1.0 / (p + q)


class Source:
    """Reception state for one remote SSRC (RFC 3550 §A.1 ``source``, §A.8 jitter)."""

    __slots__ = (
        "bad_seq",
        "base_extended",
        "cycles",
        "expected_prior",
        "held",
        "jitter",
        "jitter_rate",
        "jitter_ref",
        "max_seq",
        "received",
        "received_prior",
        "ssrc",
        "state",
    )

    def __init__(self, ssrc: int, first: RtpPacket, address: Address, now: float) -> None:
        self.ssrc = ssrc
        self.state = SourceState.PROBATION
        self.max_seq = first.sequence
        self.cycles = 0  # count of sequence wraps, times RTP_SEQ_MOD
        self.base_extended = 0
        self.bad_seq = RTP_SEQ_MOD + 1  # "so seq == bad_seq is false"
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.held: tuple[RtpPacket, Address, float] | None = (first, address, now)
        self.jitter = 0.0  # in timestamp units of jitter_rate
        self.jitter_rate: int | None = None
        self.jitter_ref: tuple[int, float, int] | None = None  # (payload type, arrival, timestamp)

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_extended + 1 if self.state is SourceState.VALID else 0

    def classify(self, seq: int) -> SequenceInput:
        """The ``update_seq`` tests of RFC 3550 §A.1, as an input for SOURCE_TRANSITIONS."""
        if self.state is SourceState.PROBATION:
            return SI.SEQUENTIAL if seq == (self.max_seq + 1) % RTP_SEQ_MOD else SI.NOT_SEQUENTIAL
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if udelta == 0:
            return SI.MISORDERED  # a duplicate of the highest
        if udelta < MAX_DROPOUT:
            return SI.IN_ORDER
        if udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            return SI.RESTART if seq == self.bad_seq else SI.JUMP
        return SI.MISORDERED

    def init_seq(self, seq: int, *, held: int) -> None:
        """§A.1 ``init_seq``, counting ``held`` packets just before ``seq`` as received (the
        probation packet we deliver, which §A.1 would discard)."""
        self.max_seq = seq
        self.cycles = 0
        self.base_extended = seq - held
        self.bad_seq = RTP_SEQ_MOD + 1
        self.received = held
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter_ref = None  # the timestamp base may have changed too

    def extended(self, seq: int) -> int:
        """The extended sequence number of a packet at or behind max_seq."""
        return self.extended_max - (self.max_seq - seq) % RTP_SEQ_MOD

    def update_jitter(self, packet: RtpPacket, now: float, clock_rate: int | None) -> None:
        """Interarrival jitter (RFC 3550 §6.4.1, §A.8) in timestamp units.

        D(i,j) = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16. Only consecutive packets of one
        payload type are compared (a payload type switch resets the reference, not J).
        """
        if clock_rate is None:
            return
        if self.jitter_rate is not None and self.jitter_rate != clock_rate:
            self.jitter *= clock_rate / self.jitter_rate
        self.jitter_rate = clock_rate
        ref = self.jitter_ref
        if ref is not None and ref[0] == packet.payload_type:
            _, arrival, timestamp = ref
            d = (now - arrival) * clock_rate - _signed32(packet.timestamp - timestamp)
            self.jitter += (abs(d) - self.jitter) / 16.0
        self.jitter_ref = (packet.payload_type, now, packet.timestamp)
