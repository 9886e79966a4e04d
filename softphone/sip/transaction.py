"""SIP transactions (RFC 3261 §17, updated by RFC 6026), sans-IO.

Four state machines, one table each, as data:

    INVITE_CLIENT      §17.1.1, Figure 5, plus RFC 6026 §7.2 (Accepted, Timer M)
    NON_INVITE_CLIENT  §17.1.2, Figure 6
    INVITE_SERVER      §17.2.1, Figure 7, plus RFC 6026 §7.1 (Accepted, Timer L)
    NON_INVITE_SERVER  §17.2.2, Figure 8

A ``(state, input)`` pair missing from a table is an error. What happens then depends on who
caused it: on receive paths (``receive_response``, ``receive_request``, ``transport_error``) the
peer or the network did, so the input is logged and dropped (a stray retransmission never
crashes anything); on the send path (``send_response``) we did, so it raises LocalProtocolError.

Timers are deadlines (``get_timer``/``handle_timer``, aioquic's shape); a timer whose duration is
zero (D, I, J, K on reliable transports) fires before the input method that armed it returns.
Every method that takes an input returns ``list[TransactionEvent]`` for the transaction user
(the UA core); what to put on the wire is drained with ``messages_to_send()``. Entering
Terminated always emits ``TransactionTerminated`` last, so the UA can forget the transaction.

Design choice (INVITE server, 2xx): RFC 3261 §13.3.1.4 makes the UAS *core* retransmit a 2xx
(T1, doubling up to T2, for 64*T1, on every transport because the 2xx is retransmitted end to
end). RFC 6026 keeps the INVITE server transaction alive in Accepted for exactly that span
(Timer L = 64*T1). We fold the two together: in Accepted the transaction itself retransmits the
last 2xx the TU sent, reusing Timer G's schedule, until an ACK arrives (``AckReceived``) or
Timer L fires (``AckNotReceived`` when no ACK came, then Terminated). The ACK for a 2xx carries
its own branch (§17.1.1.3), so ``ServerTransaction.matches`` also accepts an ACK whose Call-ID,
From tag and CSeq number equal the INVITE's; the UA routes such an ACK here.

Not modelled: the automatic 100 Trying of §17.2.1 (the TU answers synchronously, i.e. "within
200 ms", or sends its own 100), RFC 2543 transaction matching (a branch without the
``z9hG4bK`` magic cookie is rejected) and the proxy-only Timer C.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Final, Literal, TypeAlias, assert_never

from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.message import Headers, SipMessage, SipRequest, SipResponse
from softphone.sip.timers import Timer, TimerConfig

logger = logging.getLogger(__name__)

Kind: TypeAlias = Literal["invite", "non-invite"]

# RFC 3261 §8.1.1.7: a branch starting with this cookie was built by an RFC 3261 element.
MAGIC_COOKIE: Final = "z9hG4bK"


class State(Enum):
    CALLING = auto()
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    CONFIRMED = auto()
    ACCEPTED = auto()  # RFC 6026
    TERMINATED = auto()


class Input(Enum):
    RECV_REQUEST = auto()  # a retransmission of the request that created a server transaction
    RECV_ACK = auto()
    RECV_1XX = auto()
    RECV_2XX = auto()
    RECV_300_699 = auto()
    SEND_1XX = auto()
    SEND_2XX = auto()
    SEND_300_699 = auto()
    TIMER_A = auto()
    TIMER_B = auto()
    TIMER_D = auto()
    TIMER_E = auto()
    TIMER_F = auto()
    TIMER_G = auto()
    TIMER_H = auto()
    TIMER_I = auto()
    TIMER_J = auto()
    TIMER_K = auto()
    TIMER_L = auto()
    TIMER_M = auto()
    TRANSPORT_ERROR = auto()


TIMER_INPUTS: Final[Mapping[Timer, Input]] = {
    timer: Input[f"TIMER_{timer.value}"] for timer in Timer
}

Table: TypeAlias = Mapping[tuple[State, Input], State]
S, I = State, Input  # noqa: E741 -- short names keep the tables readable

# RFC 3261 §17.1.1.2 (Figure 5) with RFC 6026 §7.2 (its updated figure): a 2xx moves the
# transaction to Accepted, where 2xx retransmissions still reach the TU, until Timer M.
INVITE_CLIENT: Final[Table] = {
    (S.CALLING, I.TIMER_A): S.CALLING,  # retransmit, A doubles
    (S.CALLING, I.TIMER_B): S.TERMINATED,  # inform TU: timeout
    (S.CALLING, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.CALLING, I.RECV_1XX): S.PROCEEDING,
    (S.CALLING, I.RECV_2XX): S.ACCEPTED,
    (S.CALLING, I.RECV_300_699): S.COMPLETED,  # send ACK
    (S.PROCEEDING, I.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, I.RECV_2XX): S.ACCEPTED,
    (S.PROCEEDING, I.RECV_300_699): S.COMPLETED,  # send ACK
    (S.COMPLETED, I.RECV_300_699): S.COMPLETED,  # retransmitted final: resend ACK, absorb
    (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, I.TIMER_D): S.TERMINATED,
    (S.ACCEPTED, I.RECV_2XX): S.ACCEPTED,  # RFC 6026 §7.2: pass 2xx retransmissions to the TU
    (S.ACCEPTED, I.TIMER_M): S.TERMINATED,
}

# RFC 3261 §17.1.2.2 (Figure 6).
NON_INVITE_CLIENT: Final[Table] = {
    (S.TRYING, I.TIMER_E): S.TRYING,  # retransmit, E doubles up to T2
    (S.TRYING, I.TIMER_F): S.TERMINATED,
    (S.TRYING, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.TRYING, I.RECV_1XX): S.PROCEEDING,
    (S.TRYING, I.RECV_2XX): S.COMPLETED,
    (S.TRYING, I.RECV_300_699): S.COMPLETED,
    (S.PROCEEDING, I.TIMER_E): S.PROCEEDING,  # retransmit, E = T2
    (S.PROCEEDING, I.TIMER_F): S.TERMINATED,
    (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.PROCEEDING, I.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, I.RECV_2XX): S.COMPLETED,
    (S.PROCEEDING, I.RECV_300_699): S.COMPLETED,
    (S.COMPLETED, I.RECV_2XX): S.COMPLETED,  # retransmitted final responses are absorbed
    (S.COMPLETED, I.RECV_300_699): S.COMPLETED,
    (S.COMPLETED, I.TIMER_K): S.TERMINATED,
}

# RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1: a 2xx moves the transaction to Accepted,
# which absorbs INVITE retransmissions, passes ACKs up and ends with Timer L. TIMER_G in
# Accepted is our 2xx retransmission (module docstring). Transport errors in Accepted are ours
# too: we send the 2xx retransmissions, so we report their failure.
INVITE_SERVER: Final[Table] = {
    (S.PROCEEDING, I.RECV_REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, I.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, I.SEND_2XX): S.ACCEPTED,
    (S.PROCEEDING, I.SEND_300_699): S.COMPLETED,
    (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, I.RECV_REQUEST): S.COMPLETED,  # resend the final response
    (S.COMPLETED, I.RECV_ACK): S.CONFIRMED,
    (S.COMPLETED, I.TIMER_G): S.COMPLETED,  # resend the final response, G doubles up to T2
    (S.COMPLETED, I.TIMER_H): S.TERMINATED,  # inform TU: no ACK
    (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.CONFIRMED, I.RECV_ACK): S.CONFIRMED,  # absorb ACK retransmissions
    (S.CONFIRMED, I.TIMER_I): S.TERMINATED,
    (S.ACCEPTED, I.RECV_REQUEST): S.ACCEPTED,  # RFC 6026 §7.1: absorb INVITE retransmissions
    (S.ACCEPTED, I.RECV_ACK): S.ACCEPTED,  # pass ACK to TU
    (S.ACCEPTED, I.SEND_2XX): S.ACCEPTED,  # 2xx from TU: send it
    (S.ACCEPTED, I.TIMER_G): S.ACCEPTED,  # retransmit the 2xx (§13.3.1.4)
    (S.ACCEPTED, I.TIMER_L): S.TERMINATED,
    (S.ACCEPTED, I.TRANSPORT_ERROR): S.TERMINATED,
}

# RFC 3261 §17.2.2 (Figure 8).
NON_INVITE_SERVER: Final[Table] = {
    (S.TRYING, I.RECV_REQUEST): S.TRYING,  # nothing sent yet: discard
    (S.TRYING, I.SEND_1XX): S.PROCEEDING,
    (S.TRYING, I.SEND_2XX): S.COMPLETED,
    (S.TRYING, I.SEND_300_699): S.COMPLETED,
    (S.PROCEEDING, I.RECV_REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, I.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, I.SEND_2XX): S.COMPLETED,
    (S.PROCEEDING, I.SEND_300_699): S.COMPLETED,
    (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
    (S.COMPLETED, I.RECV_REQUEST): S.COMPLETED,  # resend the final response
    (S.COMPLETED, I.TIMER_J): S.TERMINATED,
    (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
}

AWAITING_FINAL: Final = frozenset({State.CALLING, State.TRYING, State.PROCEEDING})
"""A client transaction in these states has not had its final response."""

TABLES: Final[Mapping[tuple[Literal["client", "server"], Kind], Table]] = {
    ("client", "invite"): INVITE_CLIENT,
    ("client", "non-invite"): NON_INVITE_CLIENT,
    ("server", "invite"): INVITE_SERVER,
    ("server", "non-invite"): NON_INVITE_SERVER,
}

# Where a transaction starts: §17.1.1.2 / §17.1.2.2 (client), §17.2.1 / §17.2.2 (server).
_CLIENT_INITIAL: Final[Mapping[Kind, State]] = {"invite": S.CALLING, "non-invite": S.TRYING}
_SERVER_INITIAL: Final[Mapping[Kind, State]] = {"invite": S.PROCEEDING, "non-invite": S.TRYING}
# Table misses on these raise LocalProtocolError (our mistake); others are logged and dropped.
_SEND_INPUTS: Final = frozenset({Input.SEND_1XX, Input.SEND_2XX, Input.SEND_300_699})


# --- events handed to the transaction user -------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response the TU must see: every 1xx, the first final response, and (RFC 6026) every
    2xx received in Accepted. Final responses absorbed in Completed are not reported."""

    response: SipResponse


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer B or F fired: no final response came (§17.1.1.2, §17.1.2.2; a 408 for the TU)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AckNotReceived:
    """INVITE server: Timer H fired in Completed, or Timer L in Accepted with no ACK seen
    (§17.2.1; §13.3.1.4 says the UAS should then end the session with a BYE)."""

    branch: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The transport could not send for this transaction (§17.1.4, §17.2.4)."""

    branch: str
    method: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """INVITE server in Accepted: the ACK for our 2xx (RFC 6026 §7.1 "pass ACK to TU")."""

    request: SipRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated:
    """The transaction reached Terminated; the UA can drop it."""

    branch: str
    method: str


TransactionEvent: TypeAlias = (
    ResponseReceived
    | TransactionTimedOut
    | AckNotReceived
    | TransportFailed
    | AckReceived
    | TransactionTerminated
)


# --- keys (§17.1.3, §17.2.3) ---------------------------------------------------------------------
def _branch_of(message: SipMessage) -> str:
    branch = message.top_via.branch  # ParseError (a RemoteProtocolError) when missing
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        # RFC 2543 matching (§17.2.3, second half) is not supported.
        raise RemoteProtocolError(f"top Via has no RFC 3261 branch: {branch!r}")
    return branch


def client_key(response: SipResponse) -> tuple[str, str]:
    """§17.1.3: a response matches a client transaction by the top Via branch and the CSeq
    method (CANCEL shares the INVITE's branch but is its own transaction)."""
    return (_branch_of(response), response.cseq.method)


def server_key(request: SipRequest) -> tuple[str, str, str]:
    """§17.2.3: branch, sent-by and method of the top Via/request; an ACK maps to INVITE (it
    belongs to the INVITE's transaction); CANCEL keeps CANCEL."""
    branch = _branch_of(request)
    method = "INVITE" if request.method == "ACK" else request.method
    return (branch, request.top_via.sent_by.lower(), method)  # host names are case-insensitive


def _response_input(status: int, *, sending: bool) -> Input:
    if 100 <= status <= 199:
        return Input.SEND_1XX if sending else Input.RECV_1XX
    if 200 <= status <= 299:
        return Input.SEND_2XX if sending else Input.RECV_2XX
    if 300 <= status <= 699:
        return Input.SEND_300_699 if sending else Input.RECV_300_699
    if sending:
        raise LocalProtocolError(f"status {status} is not a SIP status code")
    raise RemoteProtocolError(f"status {status} is not a SIP status code")


class _BranchAdapter(logging.LoggerAdapter[logging.Logger]):
    """Prefixes log records with the transaction's branch and method, so that one transaction
    can be followed through the log."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        assert self.extra is not None
        return f"[{self.extra['branch']} {self.extra['method']}] {msg}", kwargs


# --- the machinery both sides share --------------------------------------------------------------
class _Transaction(ABC):
    _side: Literal["client", "server"]

    def __init__(
        self,
        request: SipRequest,
        peer: Address,
        branch: str,
        *,
        timers: TimerConfig,
        initial: Mapping[Kind, State],
    ) -> None:
        self.request: Final = request
        self.method: Final[str] = request.method
        self.branch: Final = branch
        self.kind: Final[Kind] = "invite" if request.method == "INVITE" else "non-invite"
        self.timers: Final = timers
        self._peer = peer
        self._table = TABLES[(self._side, self.kind)]
        self._state = initial[self.kind]
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._outbox: list[tuple[SipMessage, Address]] = []
        self._log = _BranchAdapter(logger, {"branch": branch, "method": self.method})

    @property
    def state(self) -> State:
        return self._state

    @property
    def reliable(self) -> bool:
        return self._peer.reliable

    # --- output -------------------------------------------------------------------------------
    def messages_to_send(self) -> list[tuple[SipMessage, Address]]:
        """Drain what the transaction wants on the wire, in order (h2's ``data_to_send``)."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline, or None when no timer runs."""
        return min(self._deadlines.values(), default=None)

    def deadline(self, timer: Timer) -> float | None:
        """When ``timer`` fires, or None when it is not running."""
        return self._deadlines.get(timer)

    # --- inputs -------------------------------------------------------------------------------
    def handle_timer(self, now: float) -> list[TransactionEvent]:
        """Fire, in deadline order, every timer whose deadline is <= ``now``."""
        events: list[TransactionEvent] = []
        while self._state is not State.TERMINATED:
            due = [(at, t.value, t) for t, at in self._deadlines.items() if at <= now]
            if not due:
                break
            _, _, timer = min(due)
            del self._deadlines[timer]
            events += self._apply(TIMER_INPUTS[timer], now)
        return events

    def transport_error(self, reason: str, now: float) -> list[TransactionEvent]:
        """The transport failed to send for this transaction (§17.1.4 / §17.2.4)."""
        events = self._apply(Input.TRANSPORT_ERROR, now, reason=reason)
        return events + self.handle_timer(now)

    # --- the one method that applies the table ------------------------------------------------
    def _apply(
        self,
        input_: Input,
        now: float,
        *,
        message: SipMessage | None = None,
        reason: str = "",
    ) -> list[TransactionEvent]:
        old = self._state
        new = self._table.get((old, input_))
        if new is None:
            if input_ in _SEND_INPUTS:
                raise LocalProtocolError(f"cannot {input_.name} in {old.name} ({self.method})")
            self._log.info("dropped %s in %s", input_.name, old.name)
            return []
        self._log.debug("%s: %s -> %s", input_.name, old.name, new.name)
        events = self._effects(input_, old, now, message, reason)
        self._state = new
        if new is State.TERMINATED:
            self._deadlines.clear()
            events.append(TransactionTerminated(branch=self.branch, method=self.method))
        return events

    @abstractmethod
    def _effects(
        self,
        input_: Input,
        old: State,
        now: float,
        message: SipMessage | None,
        reason: str,
    ) -> list[TransactionEvent]:
        """The side effects of a transition from ``old`` (sends, timers, events)."""

    def _common_effects(self, input_: Input, reason: str) -> list[TransactionEvent]:
        if input_ is Input.TRANSPORT_ERROR:
            return [TransportFailed(branch=self.branch, method=self.method, reason=reason)]
        return []

    # --- timer helpers ------------------------------------------------------------------------
    def _arm(self, timer: Timer, now: float, interval: float | None = None) -> None:
        if interval is None:
            interval = self.timers.duration(timer, reliable=self.reliable)
        self._intervals[timer] = interval
        self._deadlines[timer] = now + interval

    def _rearm(self, timer: Timer, now: float, *, proceeding: bool = False) -> None:
        interval = self.timers.next_interval(timer, self._intervals[timer], proceeding=proceeding)
        self._arm(timer, now, interval)

    def _cancel(self, *timers: Timer) -> None:
        for timer in timers:
            self._deadlines.pop(timer, None)

    def _send(self, message: SipMessage) -> None:
        self._outbox.append((message, self._peer))


# --- client (§17.1) ------------------------------------------------------------------------------
class ClientTransaction(_Transaction):
    """An INVITE (§17.1.1) or non-INVITE (§17.1.2) client transaction.

    Starting it sends the request (it is in ``messages_to_send()`` at once) and arms Timers A+B
    (INVITE) or E+F (non-INVITE); A and E only run on unreliable transports (§17.1.1.2,
    §17.1.2.2). For a 300-699 answer to an INVITE the transaction builds and sends the ACK itself
    (§17.1.1.3) and resends it for every retransmission of that response while in Completed.
    """

    _side = "client"

    def __init__(
        self, request: SipRequest, dest: Address, *, timers: TimerConfig, now: float
    ) -> None:
        if request.method == "ACK":
            raise LocalProtocolError("ACK never starts a client transaction (§17.1)")
        try:
            branch = _branch_of(request)
            request.cseq, request.call_id, request.from_, request.to  # noqa: B018 -- validate
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"cannot start a client transaction: {exc}") from exc
        super().__init__(request, dest, branch, timers=timers, initial=_CLIENT_INITIAL)
        self.dest: Final = dest
        # §17.1.3: the CSeq method, so CANCEL (same branch as its INVITE) is a separate key.
        self.key: Final[tuple[str, str]] = (branch, request.cseq.method)
        self._ack: SipRequest | None = None
        self._send(request)
        if self.kind == "invite":
            if not self.reliable:
                self._arm(Timer.A, now)
            self._arm(Timer.B, now)
        else:
            if not self.reliable:
                self._arm(Timer.E, now)
            self._arm(Timer.F, now)

    def matches(self, response: SipResponse) -> bool:
        """§17.1.3 matching."""
        try:
            return client_key(response) == self.key
        except RemoteProtocolError:
            return False

    def receive_response(self, response: SipResponse, now: float) -> list[TransactionEvent]:
        """Feed a response whose ``client_key`` equals ``self.key``. Raises RemoteProtocolError
        for a status outside 100-699; LocalProtocolError if the response is not ours."""
        if not self.matches(response):
            raise LocalProtocolError("response does not match this client transaction")
        input_ = _response_input(response.status, sending=False)
        return self._apply(input_, now, message=response) + self.handle_timer(now)

    def _effects(
        self,
        input_: Input,
        old: State,
        now: float,
        message: SipMessage | None,
        reason: str,
    ) -> list[TransactionEvent]:
        events: list[TransactionEvent] = self._common_effects(input_, reason)
        match input_:
            case Input.TIMER_A:  # §17.1.1.2: retransmit, double A (no cap)
                self._send(self.request)
                self._rearm(Timer.A, now)
            case Input.TIMER_E:  # §17.1.2.2: retransmit; min(2E, T2), or T2 in Proceeding
                self._send(self.request)
                self._rearm(Timer.E, now, proceeding=old is State.PROCEEDING)
            case Input.TIMER_B | Input.TIMER_F:
                events.append(TransactionTimedOut(branch=self.branch, method=self.method))
            case Input.RECV_1XX | Input.RECV_2XX | Input.RECV_300_699:
                assert isinstance(message, SipResponse)
                events += self._on_response(input_, old, now, message)
            case Input.TIMER_D | Input.TIMER_K | Input.TIMER_M | Input.TRANSPORT_ERROR:
                pass  # only the state changes
            case (
                Input.RECV_REQUEST
                | Input.RECV_ACK
                | Input.SEND_1XX
                | Input.SEND_2XX
                | Input.SEND_300_699
                | Input.TIMER_G
                | Input.TIMER_H
                | Input.TIMER_I
                | Input.TIMER_J
                | Input.TIMER_L
            ):
                pass  # server inputs: no client table has them, so they never get here
            case _:
                assert_never(input_)
        return events

    def _on_response(
        self, input_: Input, old: State, now: float, response: SipResponse
    ) -> list[TransactionEvent]:
        if self.kind == "invite":
            if input_ is Input.RECV_300_699 and old is State.COMPLETED:
                assert self._ack is not None
                self._send(self._ack)  # §17.1.1.2: resend the ACK, absorb the response
                return []
            self._cancel(Timer.A, Timer.B)  # leaving Calling stops both
            if input_ is Input.RECV_300_699:
                self._ack = build_ack(self.request, response)
                self._send(self._ack)
                self._arm(Timer.D, now)
            elif input_ is Input.RECV_2XX and old is not State.ACCEPTED:
                self._arm(Timer.M, now)  # RFC 6026 §7.2
            return [ResponseReceived(response=response)]
        if old is State.COMPLETED:
            return []  # §17.1.2.2: retransmitted final responses are absorbed
        if input_ is not Input.RECV_1XX:
            self._cancel(Timer.E, Timer.F)
            self._arm(Timer.K, now)
        return [ResponseReceived(response=response)]


def build_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response to ``invite`` (RFC 3261 §17.1.1.3).

    Request-URI, Call-ID and From equal the INVITE's; a single Via equal to the INVITE's top
    Via; To from the response (with its tag); CSeq number of the INVITE with method ACK; the
    INVITE's Route headers. Max-Forwards is mandatory in every request (§8.1.1.6).
    """
    top_via = invite.headers.get("Via")  # the first via-parm, even from a combined line
    _ = invite.from_, response.to  # ParseError when missing or malformed
    assert top_via is not None  # the transaction was started with a branch
    headers = Headers(
        [
            ("Via", top_via),
            ("Max-Forwards", "70"),
            *(("Route", line) for line in invite.headers.get_lines("Route")),
            ("From", invite.headers.get_lines("From")[0]),
            ("To", response.headers.get_lines("To")[0]),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} ACK"),
        ]
    )
    return SipRequest("ACK", invite.uri, headers=headers)


# --- server (§17.2) ------------------------------------------------------------------------------
class ServerTransaction(_Transaction):
    """An INVITE (§17.2.1) or non-INVITE (§17.2.2) server transaction.

    Made from the request that creates it (Proceeding for INVITE, Trying otherwise). Responses
    go to ``source``, the address the UA computed per §18.2.2 / RFC 3581; retransmissions too.
    The transaction decides every retransmission: of the last response on a request
    retransmission, of a 3xx-6xx INVITE response on Timer G (unreliable transports only), and of
    a 2xx INVITE response in Accepted (module docstring).
    """

    _side = "server"

    def __init__(
        self, request: SipRequest, source: Address, *, timers: TimerConfig, now: float
    ) -> None:
        if request.method == "ACK":
            raise LocalProtocolError("ACK never creates a server transaction (§17.2.3)")
        key = server_key(request)
        super().__init__(request, source, key[0], timers=timers, initial=_SERVER_INITIAL)
        self.source: Final = source
        self.key: Final[tuple[str, str, str]] = key
        self.ack_received = False
        self._last_response: SipResponse | None = None
        del now  # no timer runs until the TU responds

    def matches(self, request: SipRequest) -> bool:
        """§17.2.3 matching; also an ACK for our 2xx, which carries its own branch (§17.1.1.3)
        but the INVITE's Call-ID, From tag and CSeq number."""
        try:
            return server_key(request) == self.key or (
                request.method == "ACK"
                and self.kind == "invite"
                and request.call_id == self.request.call_id
                and request.cseq.seq == self.request.cseq.seq
                and request.from_.tag == self.request.from_.tag
            )
        except RemoteProtocolError:  # malformed Via, CSeq, From...: not ours
            return False

    def receive_request(self, request: SipRequest, now: float) -> list[TransactionEvent]:
        """A retransmission of our request, or the ACK. Retransmissions make the transaction
        resend its last response (Proceeding, Completed); an ACK moves Completed to Confirmed
        (Timer I) and in Accepted is passed up as AckReceived."""
        if not self.matches(request):
            raise LocalProtocolError("request does not match this server transaction")
        input_ = Input.RECV_ACK if request.method == "ACK" else Input.RECV_REQUEST
        return self._apply(input_, now, message=request) + self.handle_timer(now)

    def send_response(self, response: SipResponse, now: float) -> list[TransactionEvent]:
        """The TU's response: sent now, retransmitted as the state machine says. Raises
        LocalProtocolError if the state does not allow it (e.g. a 1xx after the final)."""
        if response.cseq.method != self.method:
            raise LocalProtocolError(
                f"CSeq method {response.cseq.method} does not match {self.method}"
            )
        input_ = _response_input(response.status, sending=True)
        return self._apply(input_, now, message=response) + self.handle_timer(now)

    def _effects(
        self,
        input_: Input,
        old: State,
        now: float,
        message: SipMessage | None,
        reason: str,
    ) -> list[TransactionEvent]:
        events: list[TransactionEvent] = self._common_effects(input_, reason)
        match input_:
            case Input.SEND_1XX | Input.SEND_2XX | Input.SEND_300_699:
                assert isinstance(message, SipResponse)
                self._last_response = message
                self._send(message)
                self._on_final_sent(input_, old, now)
            case Input.RECV_REQUEST:
                # §17.2.1/§17.2.2: resend the last response in Proceeding/Completed; Trying
                # has none yet and Accepted absorbs (RFC 6026 §7.1).
                if old in (State.PROCEEDING, State.COMPLETED) and self._last_response:
                    self._send(self._last_response)
            case Input.RECV_ACK:
                assert isinstance(message, SipRequest)
                if old is State.COMPLETED:  # §17.2.1: stop G and H, absorb ACKs for T4
                    self._cancel(Timer.G, Timer.H)
                    self._arm(Timer.I, now)
                elif old is State.ACCEPTED:
                    self._cancel(Timer.G)  # the 2xx arrived: stop retransmitting it
                    self.ack_received = True
                    events.append(AckReceived(request=message))
            case Input.TIMER_G:
                assert self._last_response is not None
                self._send(self._last_response)
                self._rearm(Timer.G, now)
            case Input.TIMER_H:
                events.append(AckNotReceived(branch=self.branch))
            case Input.TIMER_L if not self.ack_received:
                events.append(AckNotReceived(branch=self.branch))
            case Input.TIMER_I | Input.TIMER_J | Input.TIMER_L | Input.TRANSPORT_ERROR:
                pass  # I, J, L after an ACK, transport errors: only the state changes
            case (
                Input.RECV_1XX
                | Input.RECV_2XX
                | Input.RECV_300_699
                | Input.TIMER_A
                | Input.TIMER_B
                | Input.TIMER_D
                | Input.TIMER_E
                | Input.TIMER_F
                | Input.TIMER_K
                | Input.TIMER_M
            ):
                pass  # client inputs: no server table has them, so they never get here
            case _:
                assert_never(input_)
        return events

    def _on_final_sent(self, input_: Input, old: State, now: float) -> None:
        if input_ is Input.SEND_1XX or old is State.ACCEPTED:
            return
        if self.kind == "non-invite":
            self._arm(Timer.J, now)  # §17.2.2: 64*T1 unreliable, 0 reliable
        elif input_ is Input.SEND_2XX:
            # §13.3.1.4 (folded into Accepted): retransmit at T1, 2T1, ... capped at T2, on
            # every transport; RFC 6026 §7.1: Timer L = 64*T1.
            self._arm(Timer.G, now, self.timers.t1)
            self._arm(Timer.L, now)
        else:
            if not self.reliable:  # §17.2.1: G only on unreliable transports
                self._arm(Timer.G, now)
            self._arm(Timer.H, now)
