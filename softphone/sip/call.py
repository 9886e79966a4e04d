"""The INVITE session's state (RFC 3261 §13-§15), sans-IO: the call table, the re-offer sub-table
(§14), the record each call keeps, and the store of calls the user agent's parts share.

Every change of a call's state or re-offer state goes through ``Call.apply`` or
``Reoffer.apply``; the parts that drive them (invite_client, invite_server, reoffer, bye) keep
the side effects next to their code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.dialog import Dialog, DialogInput
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest
from softphone.sip.reliable import PrackClient, PrackServer
from softphone.sip.session_timer import SessionTimer
from softphone.sip.transaction import ServerTransaction


# --- INVITE session state machine (RFC 3261 §13-§15) --------------------------------------------
class CallState(Enum):
    CALLING = auto()  # INVITE sent, nothing back yet
    PROCEEDING = auto()  # provisional received (ringing / early media)
    CANCELLING = auto()  # we want out before the answer
    INCOMING = auto()  # INVITE received, not answered
    ANSWERED = auto()  # we sent 2xx, waiting for ACK
    CONFIRMED = auto()
    TERMINATING = auto()  # BYE sent
    TERMINATED = auto()


class CallInput(Enum):
    RECV_1XX = auto()
    RECV_2XX = auto()
    RECV_FAILURE = auto()
    CANCEL = auto()
    RESTART = auto()  # a new INVITE transaction for the same call: after 3xx or 401/407
    SEND_2XX = auto()
    RECV_ACK = auto()
    REJECT = auto()
    RECV_CANCEL = auto()
    SEND_BYE = auto()
    RECV_BYE = auto()
    BYE_DONE = auto()


C, CI = CallState, CallInput
CALL_TRANSITIONS: Final[dict[tuple[CallState, CallInput], CallState]] = {
    (C.CALLING, CI.RECV_1XX): C.PROCEEDING,
    (C.CALLING, CI.RECV_2XX): C.CONFIRMED,
    (C.CALLING, CI.RECV_FAILURE): C.TERMINATED,
    (C.CALLING, CI.CANCEL): C.CANCELLING,
    (C.CALLING, CI.RESTART): C.CALLING,  # §8.1.3.4 redirect, §22.2 credentials
    (C.PROCEEDING, CI.RECV_1XX): C.PROCEEDING,
    (C.PROCEEDING, CI.RECV_2XX): C.CONFIRMED,
    (C.PROCEEDING, CI.RECV_FAILURE): C.TERMINATED,
    (C.PROCEEDING, CI.CANCEL): C.CANCELLING,
    (C.PROCEEDING, CI.RESTART): C.CALLING,  # the new INVITE has had no provisional yet
    (C.CANCELLING, CI.RECV_1XX): C.CANCELLING,
    (
        C.CANCELLING,
        CI.RECV_2XX,
    ): C.CONFIRMED,  # CANCEL/200 race: confirmed, then BYE at once (§9.1, §15)
    (C.CANCELLING, CI.RECV_FAILURE): C.TERMINATED,
    (C.CANCELLING, CI.CANCEL): C.CANCELLING,
    (C.INCOMING, CI.SEND_2XX): C.ANSWERED,
    (C.INCOMING, CI.REJECT): C.TERMINATED,
    (C.INCOMING, CI.RECV_CANCEL): C.TERMINATED,
    (C.INCOMING, CI.RECV_BYE): C.TERMINATED,
    (C.ANSWERED, CI.RECV_ACK): C.CONFIRMED,
    (C.ANSWERED, CI.SEND_BYE): C.TERMINATING,
    (C.ANSWERED, CI.RECV_BYE): C.TERMINATED,
    (C.CONFIRMED, CI.RECV_2XX): C.CONFIRMED,  # 2xx retransmission: ACK again
    (C.CONFIRMED, CI.SEND_BYE): C.TERMINATING,
    (C.CONFIRMED, CI.RECV_BYE): C.TERMINATED,
    (C.CONFIRMED, CI.RECV_ACK): C.CONFIRMED,
    (C.TERMINATING, CI.RECV_BYE): C.TERMINATING,
    (C.TERMINATING, CI.BYE_DONE): C.TERMINATED,
    (C.TERMINATING, CI.RECV_2XX): C.TERMINATING,
    (C.TERMINATING, CI.RECV_ACK): C.TERMINATING,
}


# --- re-offer sub-state machine (RFC 3261 §14) --------------------------------------------------
class ReofferState(Enum):
    """Where a confirmed call stands with re-INVITEs: ours (§14.1), theirs (§14.2), or both
    while we wait to retry after glare (theirs may arrive and be answered in that wait)."""

    IDLE = auto()
    OFFER_SENT = auto()  # our re-INVITE is in progress
    GLARE_WAIT = auto()  # ours got 491: a random wait, then it goes again (§14.1)
    OFFER_RECEIVED = auto()  # theirs arrived, not answered yet
    ANSWER_SENT = auto()  # theirs answered with a 2xx, its ACK not here yet
    GLARE_WAIT_OFFER_RECEIVED = auto()  # waiting to retry ours, theirs arrived meanwhile
    GLARE_WAIT_ANSWER_SENT = auto()  # waiting to retry ours, theirs answered, no ACK yet


class ReofferInput(Enum):
    SEND_OFFER = auto()  # reoffer(): our re-INVITE goes out
    RECV_CHALLENGE = auto()  # 401/407 to ours: sent again with credentials
    RECV_2XX = auto()
    RECV_491 = auto()  # glare, and retries are left
    RECV_FAILURE = auto()  # any other failure of ours: 3xx-6xx, timeout, transport error
    GLARE_TIMER = auto()  # the wait after 491 is over
    RECV_OFFER = auto()  # their re-INVITE, taken for an answer
    SEND_2XX = auto()  # answer_reoffer()
    SEND_REJECT = auto()  # reject_reoffer()
    RECV_ACK = auto()  # the ACK for our 2xx to theirs
    THEIRS_ENDED = auto()  # their re-INVITE's server transaction ended without an ACK for us


RS, RI = ReofferState, ReofferInput
# A re-INVITE that arrives in a state where RECV_OFFER is not listed is answered 491 (§14.2): ours
# is in progress, or theirs is. While we wait to retry after glare, theirs is taken (§14.1 asks
# the side that waits to let the other go first). Pairs not listed raise LocalProtocolError.
REOFFER_TRANSITIONS: Final[dict[tuple[ReofferState, ReofferInput], ReofferState]] = {
    (RS.IDLE, RI.SEND_OFFER): RS.OFFER_SENT,
    (RS.OFFER_SENT, RI.RECV_CHALLENGE): RS.OFFER_SENT,
    (RS.OFFER_SENT, RI.RECV_2XX): RS.IDLE,
    (RS.OFFER_SENT, RI.RECV_491): RS.GLARE_WAIT,
    (RS.OFFER_SENT, RI.RECV_FAILURE): RS.IDLE,
    (RS.GLARE_WAIT, RI.GLARE_TIMER): RS.OFFER_SENT,  # send ours again
    (RS.GLARE_WAIT, RI.RECV_FAILURE): RS.IDLE,  # the 491's transaction failed: give up
    (RS.GLARE_WAIT, RI.RECV_OFFER): RS.GLARE_WAIT_OFFER_RECEIVED,
    (RS.IDLE, RI.RECV_OFFER): RS.OFFER_RECEIVED,
    (RS.OFFER_RECEIVED, RI.SEND_2XX): RS.ANSWER_SENT,
    (RS.OFFER_RECEIVED, RI.SEND_REJECT): RS.IDLE,
    (RS.OFFER_RECEIVED, RI.THEIRS_ENDED): RS.IDLE,
    (RS.ANSWER_SENT, RI.RECV_ACK): RS.IDLE,
    (RS.ANSWER_SENT, RI.THEIRS_ENDED): RS.IDLE,
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.SEND_2XX): RS.GLARE_WAIT_ANSWER_SENT,
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.SEND_REJECT): RS.GLARE_WAIT,
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.THEIRS_ENDED): RS.GLARE_WAIT,
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.GLARE_TIMER): RS.GLARE_WAIT_OFFER_RECEIVED,  # theirs first
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.RECV_FAILURE): RS.OFFER_RECEIVED,
    (RS.GLARE_WAIT_ANSWER_SENT, RI.RECV_ACK): RS.GLARE_WAIT,
    (RS.GLARE_WAIT_ANSWER_SENT, RI.THEIRS_ENDED): RS.GLARE_WAIT,
    (RS.GLARE_WAIT_ANSWER_SENT, RI.GLARE_TIMER): RS.GLARE_WAIT_ANSWER_SENT,  # theirs first
    (RS.GLARE_WAIT_ANSWER_SENT, RI.RECV_FAILURE): RS.ANSWER_SENT,
    # A 2xx to an earlier re-INVITE of ours, retransmitted because our ACK got lost: ACK again.
    (RS.IDLE, RI.RECV_2XX): RS.IDLE,
    (RS.GLARE_WAIT, RI.RECV_2XX): RS.GLARE_WAIT,
    (RS.OFFER_RECEIVED, RI.RECV_2XX): RS.OFFER_RECEIVED,
    (RS.ANSWER_SENT, RI.RECV_2XX): RS.ANSWER_SENT,
    (RS.GLARE_WAIT_OFFER_RECEIVED, RI.RECV_2XX): RS.GLARE_WAIT_OFFER_RECEIVED,
    (RS.GLARE_WAIT_ANSWER_SENT, RI.RECV_2XX): RS.GLARE_WAIT_ANSWER_SENT,
}

# Theirs is pending (answered or not) in these: an ACK or its transaction's end closes it.
THEIRS_PENDING: Final = frozenset(
    {
        RS.OFFER_RECEIVED,
        RS.ANSWER_SENT,
        RS.GLARE_WAIT_OFFER_RECEIVED,
        RS.GLARE_WAIT_ANSWER_SENT,
    }
)


@dataclass(slots=True)
class Reoffer:
    """The re-offer sub-state of a call, with what each side of it needs."""

    state: ReofferState = ReofferState.IDLE
    offer: bytes | None = None  # our SDP, sent again after a 491
    glare_retries: int = 0
    server_tx: ServerTransaction | None = None  # theirs, while pending
    request: SipRequest | None = None  # theirs, while pending

    def allows(self, inp: ReofferInput) -> bool:
        return (self.state, inp) in REOFFER_TRANSITIONS

    def apply(self, inp: ReofferInput) -> ReofferState:
        nxt = REOFFER_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"re-offer: {inp.name} in {self.state.name}")
        self.state = nxt
        if nxt not in THEIRS_PENDING:
            self.server_tx = None
            self.request = None
        return nxt


@dataclass(slots=True)
class Call:
    call_id: str
    account: AccountConfig
    outgoing: bool
    state: CallState
    invite: SipRequest  # the current initial INVITE (ours or theirs)
    dest: Address  # next hop of the initial INVITE (outgoing) / where responses go (incoming)
    local_tag: str
    dialog: Dialog | None = None
    invite_server_tx: ServerTransaction | None = None
    got_provisional: bool = False
    answered_tag: str | None = None
    auth_attempts: int = 0  # shared by every request of the call that gets challenged
    redirects: int = 0
    visited: set[str] = field(default_factory=set)
    tried_hops: list[Address] = field(default_factory=list)  # servers that failed the INVITE
    ack: tuple[bytes, Address] | None = None  # last ACK for a 2xx, re-sent on 2xx retransmission
    bye_pending: bool = False  # BYE wanted before the ACK came (§15)
    bye_reason: str = ""  # why we sent BYE, in words: the reason of the CallEnded that follows
    reoffer: Reoffer = field(default_factory=Reoffer)
    refer_in_progress: bool = False  # we are transferee, NOTIFYs owed to the transferor
    replaces: str | None = None  # the call this incoming one replaces (RFC 3891), until confirmed
    ended: bool = False  # an end event has been emitted
    local_sdp: bytes | None = None  # our last offer or answer: what a refresh re-INVITE sends
    prack_client: PrackClient = field(default_factory=PrackClient)  # RFC 3262 §4, as caller
    prack_server: PrackServer | None = None  # RFC 3262 §3, as callee: our 1xx are reliable
    session: SessionTimer = field(default_factory=SessionTimer)  # RFC 4028
    # Told when the call reaches TERMINATED (Calls keeps its live calls apart with it).
    on_terminated: Callable[[Call], object] | None = field(default=None, repr=False, compare=False)

    def apply(self, inp: CallInput) -> CallState:
        nxt = CALL_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"call {self.call_id}: {inp.name} in {self.state.name}")
        self.state = nxt
        if nxt is CallState.TERMINATED and self.on_terminated is not None:
            self.on_terminated(self)
        return nxt

    def end(self, event: ev.Event) -> list[ev.Event]:
        """The call's one end event (CallFailed or CallEnded); later ones are swallowed."""
        if self.ended:
            return []
        self.ended = True
        return [event]

    def forget_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.apply(DialogInput.BYE)


class Calls:
    """Every call the user agent knows, by Call-ID and by dialog (§12: Call-ID, local tag,
    remote tag). A call stays findable by its dialog after it ends, until forgotten: for 32 s
    after its last transaction (RFC 3261 Timers J and L), so under load the ended calls far
    outnumber the live ones, which :meth:`live` lists without walking the others."""

    def __init__(self) -> None:
        self._by_id: dict[str, Call] = {}
        self._by_dialog: dict[tuple[str, str, str], Call] = {}
        self._live: dict[str, Call] = {}

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._by_id.values()))

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._by_id

    def get(self, call_id: str) -> Call | None:
        return self._by_id.get(call_id)

    def require(self, call_id: str) -> Call:
        call = self._by_id.get(call_id)
        if call is None:
            raise LocalProtocolError(f"no call {call_id!r}")
        return call

    def live(self) -> list[Call]:
        """The calls not yet TERMINATED."""
        return list(self._live.values())

    def add(self, call: Call) -> None:
        self._by_id[call.call_id] = call
        if call.state is not CallState.TERMINATED:
            self._live[call.call_id] = call
        call.on_terminated = self._terminated

    def _terminated(self, call: Call) -> None:
        if self._live.get(call.call_id) is call:
            del self._live[call.call_id]

    def remove(self, call: Call) -> None:
        del self._by_id[call.call_id]
        self._terminated(call)
        if call.dialog is not None:
            self._by_dialog.pop(call.dialog.id, None)

    def index_dialog(self, call: Call) -> None:
        assert call.dialog is not None
        self._by_dialog[call.dialog.id] = call

    def unindex_dialog(self, dialog: Dialog) -> None:
        self._by_dialog.pop(dialog.id, None)

    def by_dialog(self, call_id: str, local_tag: str, remote_tag: str) -> Call | None:
        return self._by_dialog.get((call_id, local_tag, remote_tag))
