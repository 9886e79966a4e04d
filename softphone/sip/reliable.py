"""Reliable provisional responses (RFC 3262), the pure part: RSeq and RAck, each side's record,
and the callee's state table. sip/prack.py drives them (PRACK both ways, retransmissions).

The callee's side (§3), per INVITE:

    state          input           next           side effect (prack.py)
    IDLE           SEND_RELIABLE   WAITING_PRACK  1xx with Require: 100rel + RSeq; retransmit at
                                                  T1, 2*T1, 4*T1... (no cap, §3)
    WAITING_PRACK  RETRANSMIT      WAITING_PRACK  the same 1xx again, the interval doubled
    WAITING_PRACK  RECV_PRACK      IDLE           200 to the PRACK; a queued 1xx goes now, then a
                                                  2xx that waited for the PRACK (§3)
    WAITING_PRACK  GIVE_UP         GAVE_UP        no PRACK in 64*T1: 500 to the INVITE (§3)
    WAITING_PRACK  FINAL_SENT      IDLE           a non-2xx final went: stop retransmitting
    IDLE           FINAL_SENT      IDLE

A PRACK that matches no reliable 1xx waiting for one gets 481 (§3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final, Literal

from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.message import SipMessage, SipResponse

PrackMode = Literal["off", "supported", "required"]
PRACK_MODES: Final[tuple[PrackMode, ...]] = ("off", "supported", "required")
MAX_RSEQ: Final = 2**31 - 1  # §3: the first RSeq is 1 .. 2**31-1


@dataclass(frozen=True, slots=True)
class RAck:
    """``RAck: response-num CSeq-num Method`` (§7.2): which reliable 1xx a PRACK acknowledges."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> RAck:
        parts = text.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise RemoteProtocolError(
                f"RAck {text!r} is not 'response-num CSeq-num Method'", status_hint=400
            )
        if len(parts[0]) > 10 or len(parts[1]) > 10:
            raise RemoteProtocolError(f"RAck {text!r}: number out of range", status_hint=400)
        return cls(int(parts[0]), int(parts[1]), parts[2].upper())

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def rseq_of(resp: SipMessage) -> int:
    """The RSeq of a reliable 1xx (§7.1); RemoteProtocolError when missing or malformed."""
    text = resp.headers.get("RSeq")
    if text is None:
        raise RemoteProtocolError("a reliable provisional response without RSeq", status_hint=400)
    text = text.strip()
    if not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= 2**32 - 1:
        raise RemoteProtocolError(f"RSeq {text!r} is not a number from 1", status_hint=400)
    return int(text)


# --- the caller's side (§4) ---------------------------------------------------------------------
@dataclass(slots=True)
class PrackClient:
    """What the caller remembers of the reliable 1xx of its INVITE (one early dialog)."""

    last_rseq: int | None = None  # the RSeq of the last reliable 1xx processed
    prack_again: set[int] = field(default_factory=set)  # retransmissions already PRACKed again
    early_answer: bool = False  # a reliable 1xx carried SDP: our offer is answered (RFC 3311 §5.1)


# --- the callee's side (§3) ---------------------------------------------------------------------
class ReliableState(Enum):
    IDLE = auto()
    WAITING_PRACK = auto()
    GAVE_UP = auto()


class ReliableInput(Enum):
    SEND_RELIABLE = auto()
    RETRANSMIT = auto()
    RECV_PRACK = auto()
    GIVE_UP = auto()
    FINAL_SENT = auto()


RL, RLI = ReliableState, ReliableInput
RELIABLE_TRANSITIONS: Final[dict[tuple[ReliableState, ReliableInput], ReliableState]] = {
    (RL.IDLE, RLI.SEND_RELIABLE): RL.WAITING_PRACK,
    (RL.WAITING_PRACK, RLI.RETRANSMIT): RL.WAITING_PRACK,
    (RL.WAITING_PRACK, RLI.RECV_PRACK): RL.IDLE,
    (RL.WAITING_PRACK, RLI.GIVE_UP): RL.GAVE_UP,
    (RL.WAITING_PRACK, RLI.FINAL_SENT): RL.IDLE,
    (RL.IDLE, RLI.FINAL_SENT): RL.IDLE,
    (RL.GAVE_UP, RLI.FINAL_SENT): RL.GAVE_UP,
}


@dataclass(slots=True)
class PrackServer:
    """The callee's reliable 1xx for one INVITE: the one waiting for its PRACK, what waits
    behind it, and the answer held back until it is PRACKed."""

    state: ReliableState = ReliableState.IDLE
    next_rseq: int = 0  # set from the RNG when the call starts (§3: a random first RSeq)
    pending: SipResponse | None = None  # the 1xx being retransmitted
    pending_rseq: int = 0
    interval_s: float = 0.0
    first_sent_at: float = 0.0
    queued: list[tuple[int, bytes | None]] = field(default_factory=list)  # (status, sdp)
    held_answer: bytes | None = None  # a 2xx's SDP waiting for the PRACK (§3)
    answer_held: bool = False

    def allows(self, inp: ReliableInput) -> bool:
        return (self.state, inp) in RELIABLE_TRANSITIONS

    def apply(self, inp: ReliableInput) -> ReliableState:
        nxt = RELIABLE_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"reliable 1xx: {inp.name} in {self.state.name}")
        self.state = nxt
        if nxt is not ReliableState.WAITING_PRACK:
            self.pending = None
        return nxt
