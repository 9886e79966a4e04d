"""The SIP user agent core (RFC 3261 §8, §10, §12-§15, §17-§18; RFC 3515; RFC 3581), sans-IO.

Bytes and ``now`` go in (``receive_message``, ``handle_timer``, the action methods), events and
bytes to send come out (``messages_to_send``). Transactions (sip/transaction.py) handle
retransmissions; this module is the transaction user: registration, INVITE sessions, in-dialog
requests, transfer, and the checks every incoming request goes through.

Contract: ``receive_message`` raises only RemoteProtocolError (for bytes that cannot even be
answered); every request that reaches a handler gets a final response.

Design choices worth knowing:
- Next hops are Addresses (IP literals). Name resolution (RFC 3263) happens in the phone layer
  before a request is started; a hop that would need DNS inside a dialog goes to the account's
  outbound proxy, or fails with a clear reason.
- Incoming-request checks run in this order (RFC 3261 §8.2 and the issue's wording): syntax (400,
  or a logged drop when no response can be formed), version (505), Max-Forwards (483), routing
  (404 for an INVITE to none of our users/contacts), method (405), Require (420), content (415),
  dialog (481).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from softphone.auth.challenge import choose_challenge
from softphone.auth.digest import Credentials, DigestClient
from softphone.sip import events as ev
from softphone.sip.address import Address, TransportName
from softphone.sip.dialog import Dialog, DialogInput
from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError, SipError
from softphone.sip.headers import NameAddr, Via
from softphone.sip.message import (
    Headers,
    SipMessage,
    SipRequest,
    SipResponse,
    parse_message,
    reason_phrase,
)
from softphone.sip.status import explain
from softphone.sip.timers import TimerConfig
from softphone.sip.transaction import (
    AckNotReceived,
    AckReceived,
    ClientTransaction,
    ResponseReceived,
    ServerTransaction,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    server_key,
)
from softphone.sip.uri import SipUri

logger = logging.getLogger(__name__)
wire = logging.getLogger("softphone.wire")

ALLOW: Final = "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO"
SUPPORTED_EXTENSIONS: Final[frozenset[str]] = frozenset({"norefersub"})
MAX_REDIRECTS: Final = 5
MAX_AUTH_ATTEMPTS: Final = 2
MAX_GLARE_RETRIES: Final = 3
REGISTER_RETRY_MIN_S: Final = 30.0
REGISTER_RETRY_MAX_S: Final = 1800.0

_IP4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_REDACT = re.compile(rb"(?im)^((?:proxy-)?authorization[ \t]*:).*$")


def is_ip_literal(host: str) -> bool:
    return bool(_IP4.match(host)) or ":" in host


def redact(data: bytes) -> bytes:
    """The wire log never shows credentials: (Proxy-)Authorization values are replaced."""
    return _REDACT.sub(rb"\1 <redacted>", data)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What the core needs to know of an account. The phone layer builds it from the config."""

    name: str
    aor: SipUri
    username: str
    password: str | None = None
    display_name: str | None = None
    registrar: SipUri | None = None  # None: no registration (peer-to-peer)
    outbound: Address | None = None  # resolved next hop for out-of-dialog requests
    transport: TransportName = "udp"
    expires: int = 3600


# --- registration state machine (RFC 3261 §10.2) ------------------------------------------------
class RegState(Enum):
    IDLE = auto()
    REGISTERING = auto()
    REGISTERED = auto()
    FAILED = auto()  # waiting for the retry timer
    UNREGISTERING = auto()


class RegInput(Enum):
    START = auto()
    OK = auto()
    FAIL = auto()
    RETRY = auto()  # refresh or retry timer fired, or an auth/423 resend
    STOP = auto()
    STOPPED = auto()


R, RI = RegState, RegInput
REG_TRANSITIONS: Final[dict[tuple[RegState, RegInput], RegState]] = {
    (R.IDLE, RI.START): R.REGISTERING,
    (R.FAILED, RI.START): R.REGISTERING,
    (R.REGISTERED, RI.START): R.REGISTERING,
    (R.REGISTERING, RI.RETRY): R.REGISTERING,
    (R.REGISTERING, RI.OK): R.REGISTERED,
    (R.REGISTERING, RI.FAIL): R.FAILED,
    (R.REGISTERED, RI.RETRY): R.REGISTERING,
    (R.FAILED, RI.RETRY): R.REGISTERING,
    (R.REGISTERING, RI.STOP): R.UNREGISTERING,
    (R.REGISTERED, RI.STOP): R.UNREGISTERING,
    (R.FAILED, RI.STOP): R.IDLE,
    (R.IDLE, RI.STOP): R.IDLE,
    (R.UNREGISTERING, RI.RETRY): R.UNREGISTERING,
    (R.UNREGISTERING, RI.STOPPED): R.IDLE,
    (R.UNREGISTERING, RI.OK): R.IDLE,
    (R.UNREGISTERING, RI.FAIL): R.IDLE,
}


@dataclass(slots=True)
class _Registration:
    account: AccountConfig
    call_id: str
    from_tag: str
    cseq: int
    expires: int
    state: RegState = RegState.IDLE
    contact: SipUri | None = None  # the Contact we register (learned NAT address included)
    auth_attempts: int = 0
    failures: int = 0
    nat_rewritten: bool = False

    def apply(self, inp: RegInput) -> RegState:
        nxt = REG_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(
                f"registration {self.account.name}: {inp.name} in {self.state.name}"
            )
        self.state = nxt
        return nxt


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
    (C.PROCEEDING, CI.RECV_1XX): C.PROCEEDING,
    (C.PROCEEDING, CI.RECV_2XX): C.CONFIRMED,
    (C.PROCEEDING, CI.RECV_FAILURE): C.TERMINATED,
    (C.PROCEEDING, CI.CANCEL): C.CANCELLING,
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


@dataclass(slots=True)
class _Call:
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
    auth_attempts: int = 0
    redirects: int = 0
    visited: set[str] = field(default_factory=set)
    ack: tuple[bytes, Address] | None = None  # last ACK for a 2xx, re-sent on 2xx retransmission
    bye_pending: bool = False  # BYE wanted before the ACK came (§15)
    reoffer_client: bool = False  # our re-INVITE is in progress
    reoffer_server_tx: ServerTransaction | None = None
    reoffer_request: SipRequest | None = None
    reoffer_sdp: bytes | None = None
    glare_retries: int = 0
    refer_in_progress: bool = False  # we are transferee, NOTIFYs owed to the transferor
    ended: bool = False  # an end event has been emitted

    def apply(self, inp: CallInput) -> CallState:
        nxt = CALL_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"call {self.call_id}: {inp.name} in {self.state.name}")
        self.state = nxt
        return nxt


ResponseHandler = Callable[
    [ClientTransaction, "SipResponse | None", int, str, float], list[ev.Event]
]


class UserAgent:
    """A SIP user agent (client and server) for one or more accounts."""

    def __init__(
        self,
        *,
        accounts: Sequence[AccountConfig],
        rng: random.Random,
        timers: TimerConfig | None = None,
        user_agent: str = "softphone",
    ) -> None:
        if not accounts:
            raise LocalProtocolError("a user agent needs at least one account")
        self._accounts = {a.name: a for a in accounts}
        self._rng = rng
        self._timers = timers or TimerConfig()
        self._user_agent = user_agent
        self._listeners: dict[TransportName, Address] = {}
        self._client_tx: dict[tuple[str, str], ClientTransaction] = {}
        self._handlers: dict[tuple[str, str], ResponseHandler] = {}
        self._server_tx: dict[tuple[str, str, str], ServerTransaction] = {}
        self._server_owner: dict[tuple[str, str, str], str] = {}  # tx key -> call_id
        self._outbox: list[tuple[bytes, Address]] = []
        self._calls: dict[str, _Call] = {}
        self._dialogs: dict[tuple[str, str, str], _Call] = {}
        self._registrations: dict[str, _Registration] = {}
        self._auth = {
            a.name: DigestClient(
                [Credentials(username=a.username, password=a.password)] if a.password else [], rng
            )
            for a in accounts
        }
        # UA-level deadlines: ("register", account) / ("glare", call_id) / ("bye", call_id)
        self._deadlines: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ configuration / queries
    def add_listener(self, address: Address) -> None:
        """A local address we receive on; it goes into Via sent-by and Contact (§18.1.1)."""
        self._listeners.setdefault(address.transport, address)

    def account(self, name: str | None = None) -> AccountConfig:
        if name is None:
            return next(iter(self._accounts.values()))
        try:
            return self._accounts[name]
        except KeyError:
            raise LocalProtocolError(f"no account named {name!r}") from None

    @property
    def accounts(self) -> list[AccountConfig]:
        return list(self._accounts.values())

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return call.state if call else None

    def registration_state(self, account: str) -> RegState:
        reg = self._registrations.get(account)
        return reg.state if reg else RegState.IDLE

    def active_calls(self) -> list[str]:
        return [c.call_id for c in self._calls.values() if c.state is not CallState.TERMINATED]

    # ------------------------------------------------------------------ the SipCore protocol
    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        out = self._outbox
        self._outbox = []
        # Responses before new requests: a 202 goes out ahead of the NOTIFY it causes.
        for tx in list(self._server_tx.values()) + list(self._client_tx.values()):
            for msg, dest in tx.messages_to_send():
                out.append((self._serialize(msg, dest), dest))
        return out

    def get_timer(self) -> float | None:
        deadlines = [t for t in self._deadlines.values()]
        for tx in list(self._client_tx.values()) + list(self._server_tx.values()):
            at = tx.get_timer()
            if at is not None:
                deadlines.append(at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[ev.Event]:
        events: list[ev.Event] = []
        for ckey, ctx in list(self._client_tx.items()):
            at = ctx.get_timer()
            if at is not None and at <= now:
                events += self._client_events(ckey, ctx, ctx.handle_timer(now), now)
        for skey, stx in list(self._server_tx.items()):
            at = stx.get_timer()
            if at is not None and at <= now:
                events += self._server_events(skey, stx.handle_timer(now), now)
        for dkey, at in list(self._deadlines.items()):
            if at <= now and self._deadlines.get(dkey) == at:
                del self._deadlines[dkey]
                events += self._fire_deadline(dkey, now)
        return events

    def transport_error(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        events: list[ev.Event] = []
        for ckey, ctx in list(self._client_tx.items()):
            if ctx.dest == dest:
                events += self._client_events(ckey, ctx, ctx.transport_error(reason, now), now)
        for skey, stx in list(self._server_tx.items()):
            if stx.source == dest:
                events += self._server_events(skey, stx.transport_error(reason, now), now)
        return events

    def receive_message(self, data: bytes, source: Address, now: float) -> list[ev.Event]:
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug(
                "recv %d bytes from %s:\n%s",
                len(data),
                source,
                redact(data).decode("utf-8", "replace"),
            )
        try:
            msg = parse_message(data)
        except ParseError as exc:
            self._answer_garbage(data, source, exc)
            raise
        try:
            if isinstance(msg, SipResponse):
                return self._receive_response(msg, source, now)
            return self._receive_request(msg, source, now)
        except RemoteProtocolError:
            raise
        except SipError as exc:  # a header that only fails when accessed deep inside
            raise RemoteProtocolError(f"unusable message: {exc}") from exc

    # ------------------------------------------------------------------ registration (§10)
    def register(self, account: str, now: float, *, expires: int | None = None) -> None:
        acct = self.account(account)
        if acct.registrar is None:
            raise LocalProtocolError(f"account {account!r} has no registrar")
        reg = self._registrations.get(account)
        if reg is None:
            reg = _Registration(
                account=acct,
                call_id=self._new_call_id(),
                from_tag=self._token(),
                cseq=self._rng.randint(1, 10000),
                expires=expires if expires is not None else acct.expires,
            )
            self._registrations[account] = reg
        elif expires is not None:
            reg.expires = expires
        reg.apply(RegInput.START)
        reg.auth_attempts = 0
        self._deadlines.pop(("register", account), None)
        self._send_register(reg, reg.expires, now)

    def unregister(self, account: str, now: float) -> bool:
        """Send REGISTER with Expires: 0. Returns False when nothing was registered."""
        reg = self._registrations.get(account)
        if reg is None or reg.state in (RegState.IDLE, RegState.FAILED):
            if reg is not None:
                reg.apply(RegInput.STOP)
            self._deadlines.pop(("register", account), None)
            return False
        reg.apply(RegInput.STOP)
        reg.auth_attempts = 0
        self._deadlines.pop(("register", account), None)
        self._send_register(reg, 0, now)
        return True

    def _send_register(self, reg: _Registration, expires: int, now: float) -> None:
        acct = reg.account
        assert acct.registrar is not None
        dest = acct.outbound or self._address_for_uri(acct.registrar, acct.transport)
        reg.cseq += 1
        if reg.contact is None:
            reg.contact = self._contact_uri(acct, dest.transport)
        headers = Headers()
        headers.add(
            "From",
            str(
                NameAddr(uri=acct.aor, display_name=acct.display_name).with_param(
                    "tag", reg.from_tag
                )
            ),
        )
        headers.add("To", str(NameAddr(uri=acct.aor, display_name=acct.display_name)))
        headers.add("Call-ID", reg.call_id)
        headers.add("CSeq", f"{reg.cseq} REGISTER")
        headers.add("Contact", str(NameAddr(uri=reg.contact)))
        headers.add("Expires", str(expires))
        headers.add("Allow", ALLOW)
        uri = acct.registrar.replace(user=None, password=None, headers=())
        # Pre-authenticate refreshes with the last challenge (RFC 7616 §3.4 nonce reuse); a
        # stale nonce is simply challenged again.
        for value in self._auth[acct.name].cached("REGISTER", str(uri)):
            headers.add("Authorization", value)
        request = SipRequest(method="REGISTER", uri=uri, headers=headers)
        self._start_client(request, dest, acct, self._on_register_response, now)

    def _on_register_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        reg = next(
            (r for r in self._registrations.values() if r.call_id == tx.request.call_id), None
        )
        if reg is None:
            return []
        acct = reg.account
        unregistering = reg.state is RegState.UNREGISTERING
        if resp is not None and status < 200:
            return []
        if resp is not None and status in (401, 407):
            if self._retry_with_auth(reg, tx, resp, now):
                return []
        if resp is not None and status == 423 and not unregistering:
            min_expires = _int_header(resp, "Min-Expires")
            if min_expires and min_expires > reg.expires:
                # RFC 3261 §10.2.8: retry with at least the registrar's Min-Expires.
                reg.expires = min_expires
                reg.apply(RegInput.RETRY)
                self._send_register(reg, reg.expires, now)
                return []
        if unregistering:
            reg.apply(RegInput.OK if 200 <= status < 300 else RegInput.FAIL)
            return [ev.Unregistered(account=acct.name)]
        if resp is not None and 200 <= status < 300:
            reg.auth_attempts = 0
            if self._learn_nat_address(reg, resp, tx.dest, now):
                return []
            expires = self._granted_expires(reg, resp)
            reg.apply(RegInput.OK)
            reg.failures = 0
            # Refresh well before expiry: half way for short intervals, a minute early otherwise.
            refresh_in = expires / 2 if expires <= 240 else expires - 60
            self._deadlines[("register", acct.name)] = now + max(refresh_in, 1.0)
            return [ev.Registered(account=acct.name, expires=expires, contact=str(reg.contact))]
        reg.apply(RegInput.FAIL)
        reg.failures += 1
        retry_in = min(REGISTER_RETRY_MIN_S * 2 ** (reg.failures - 1), REGISTER_RETRY_MAX_S)
        self._deadlines[("register", acct.name)] = now + retry_in
        return [
            ev.RegistrationFailed(
                account=acct.name,
                status=status,
                reason=explain(status, reason),
                retry_in_s=retry_in,
            )
        ]

    def _retry_with_auth(
        self, reg: _Registration, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> bool:
        request = self._authorized_copy(reg.account, tx.request, resp, reg.auth_attempts)
        if request is None:
            return False
        reg.auth_attempts += 1
        reg.cseq += 1
        request.headers.set("CSeq", f"{reg.cseq} REGISTER")
        reg.apply(RegInput.RETRY)
        self._start_client(request, tx.dest, reg.account, self._on_register_response, now)
        return True

    def _granted_expires(self, reg: _Registration, resp: SipResponse) -> int:
        """§10.2.4: the expires of our own binding in the 200, else Expires, else what we asked."""
        for contact in resp.contacts:
            if (
                isinstance(contact.uri, SipUri)
                and reg.contact is not None
                and contact.uri.matches(reg.contact)
            ):
                value = contact.param("expires")
                if value and value.isdigit():
                    return int(value)
        header = _int_header(resp, "Expires")
        return header if header is not None else reg.expires

    def _learn_nat_address(
        self, reg: _Registration, resp: SipResponse, dest: Address, now: float
    ) -> bool:
        """RFC 3581: when the registrar saw us at another address than our Contact (NAT), register
        the learned address instead, once. Only for UDP: over TCP/TLS the registrar reaches us
        through the connection itself."""
        if dest.transport != "udp" or reg.nat_rewritten or reg.contact is None:
            return False
        via = resp.top_via
        received, rport = via.received, via.rport
        if received is None and rport is None:
            return False
        host = received or reg.contact.host
        port = rport or reg.contact.port
        if host == reg.contact.host and port == reg.contact.port:
            return False
        logger.info("registrar sees us at %s:%s (NAT); re-registering that address", host, port)
        reg.nat_rewritten = True
        reg.contact = reg.contact.replace(host=host, port=port)
        reg.apply(RegInput.RETRY)
        self._send_register(reg, reg.expires, now)
        return True

    # ------------------------------------------------------------------ outgoing calls (§13.2)
    def invite(
        self,
        account: str | None,
        target: SipUri,
        *,
        sdp: bytes | None,
        now: float,
        dest: Address | None = None,
    ) -> str:
        """Start an outgoing call. Returns its Call-ID. ``dest`` overrides the next hop (otherwise
        the account's outbound proxy, or the target itself when its host is an IP literal)."""
        acct = self.account(account)
        hop = dest or acct.outbound or self._address_for_uri(target, acct.transport)
        call_id = self._new_call_id()
        local_tag = self._token()
        headers = Headers()
        headers.add(
            "From",
            str(
                NameAddr(uri=acct.aor, display_name=acct.display_name).with_param("tag", local_tag)
            ),
        )
        headers.add("To", str(NameAddr(uri=target)))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{self._rng.randint(1, 10000)} INVITE")
        headers.add("Contact", str(NameAddr(uri=self._contact_uri(acct, hop.transport))))
        headers.add("Allow", ALLOW)
        if sdp is not None:
            headers.add("Content-Type", "application/sdp")
        request = SipRequest(method="INVITE", uri=target, headers=headers, body=sdp or b"")
        call = _Call(
            call_id=call_id,
            account=acct,
            outgoing=True,
            state=CallState.CALLING,
            invite=request,
            dest=hop,
            local_tag=local_tag,
        )
        call.visited.add(str(target))
        self._calls[call_id] = call
        self._start_client(request, hop, acct, self._on_invite_response, now)
        return call_id

    def cancel(self, call_id: str, now: float) -> None:
        """§9.1: CANCEL is sent once a provisional response has arrived; before that it waits."""
        call = self._call(call_id)
        if call.state not in (CallState.CALLING, CallState.PROCEEDING, CallState.CANCELLING):
            raise LocalProtocolError(f"cannot cancel a call in state {call.state.name}")
        call.apply(CallInput.CANCEL)
        if call.got_provisional:
            self._send_cancel(call, now)

    def _send_cancel(self, call: _Call, now: float) -> None:
        inv = call.invite
        headers = Headers()
        for line in inv.headers.get_lines("Via")[:1]:
            headers.add("Via", line)
        for route in inv.headers.get_lines("Route"):
            headers.add("Route", route)
        headers.add("From", inv.headers.get_lines("From")[0])
        headers.add("To", inv.headers.get_lines("To")[0])
        headers.add("Call-ID", inv.call_id)
        headers.add("CSeq", f"{inv.cseq.seq} CANCEL")
        headers.add("Max-Forwards", "70")
        cancel = SipRequest(method="CANCEL", uri=inv.uri, headers=headers)
        self._start_client(
            cancel, call.dest, call.account, self._ignore_response, now, keep_via=True
        )

    def _on_invite_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._calls.get(tx.request.call_id)
        if call is None or tx.request.cseq.seq != call.invite.cseq.seq:
            if call is not None and resp is not None and 200 <= status < 300:
                return self._stray_2xx(call, resp, now)
            return []
        if resp is None:  # timeout or transport error
            if call.state in (CallState.CALLING, CallState.PROCEEDING, CallState.CANCELLING):
                call.apply(CallInput.RECV_FAILURE)
                return self._end(
                    call, ev.CallFailed(call_id=call.call_id, status=status, reason=reason)
                )
            return []
        if status == 100:
            # Any provisional, 100 included, allows a CANCEL to go out (§9.1).
            if not call.got_provisional:
                call.got_provisional = True
                if call.state is CallState.CANCELLING:
                    self._send_cancel(call, now)
            return []
        if status < 200:
            return self._invite_provisional(call, resp, now)
        if status < 300:
            return self._invite_2xx(call, tx, resp, now)
        return self._invite_failure(call, tx, resp, now)

    def _invite_provisional(self, call: _Call, resp: SipResponse, now: float) -> list[ev.Event]:
        first = not call.got_provisional
        call.got_provisional = True
        if resp.to.tag and call.dialog is None and resp.contacts:
            call.dialog = Dialog.from_uac(call.invite, resp)
            self._dialogs[call.dialog.id] = call
        if call.state is CallState.CANCELLING:
            if first:
                self._send_cancel(call, now)
            return []
        call.apply(CallInput.RECV_1XX)
        body = resp.body if resp.content_type == "application/sdp" and resp.body else None
        return [
            ev.CallProgressed(
                call_id=call.call_id, status=resp.status, reason=resp.reason, sdp=body
            )
        ]

    def _invite_2xx(
        self, call: _Call, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> list[ev.Event]:
        tag = resp.to.tag or ""
        if call.answered_tag is not None and tag != call.answered_tag:
            # A second fork answered (§13.2.2.4): ACK it, then BYE it.
            return self._stray_2xx(call, resp, now)
        if call.answered_tag is not None:  # retransmitted 2xx: the ACK got lost
            if call.ack is not None:
                self._outbox.append(call.ack)
            return []
        call.answered_tag = tag
        if call.dialog is not None and call.dialog.remote_tag == tag:  # the early dialog confirms
            call.dialog.refresh_target(resp)
            call.dialog.route_set = list(reversed(resp.record_routes))
        else:  # no early dialog, or another fork's: this 2xx makes the dialog (§13.2.2.4)
            if call.dialog is not None:
                self._dialogs.pop(call.dialog.id, None)
            call.dialog = Dialog.from_uac(call.invite, resp)
            self._dialogs[call.dialog.id] = call
        call.dialog.apply(DialogInput.RECV_2XX)
        self._send_ack(call, resp, now)
        if call.state is CallState.CANCELLING:
            # CANCEL/200 race (§9.1): the call was answered anyway. ACK it and hang up.
            call.apply(CallInput.RECV_2XX)
            self._send_bye(call, now)
            return []
        call.apply(CallInput.RECV_2XX)
        body = resp.body if resp.content_type == "application/sdp" and resp.body else None
        return [ev.CallAnswered(call_id=call.call_id, sdp=body)]

    def _stray_2xx(self, call: _Call, resp: SipResponse, now: float) -> list[ev.Event]:
        """A 2xx we did not want (another fork, or after we gave up): ACK, then BYE (§13.2.2.4)."""
        try:
            dialog = Dialog.from_uac(call.invite, resp)
        except RemoteProtocolError:
            return []
        ack = dialog.build_request("ACK", seq=resp.cseq.seq)
        self._send_stateless(call.account, ack, self._hop_for(dialog, call.account), now)
        bye = dialog.build_request("BYE")
        self._start_client(
            bye, self._hop_for(dialog, call.account), call.account, self._ignore_response, now
        )
        return []

    def _send_ack(self, call: _Call, resp: SipResponse, now: float) -> None:
        """§13.2.2.4: ACK for a 2xx is its own transaction-less request through the dialog."""
        assert call.dialog is not None
        ack = call.dialog.build_request("ACK", seq=call.invite.cseq.seq)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in call.invite.headers.get_lines(name):
                ack.headers.add(name, value)
        call.ack = self._send_stateless(
            call.account, ack, self._hop_for(call.dialog, call.account), now
        )

    def _invite_failure(
        self, call: _Call, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> list[ev.Event]:
        status = resp.status
        if status in (401, 407) and call.state is not CallState.CANCELLING:
            request = self._authorized_copy(call.account, call.invite, resp, call.auth_attempts)
            if request is not None:
                call.auth_attempts += 1
                self._restart_invite(call, request, call.dest, now)
                return []
        if 300 <= status < 400 and call.state is not CallState.CANCELLING:
            redirected = self._follow_redirect(call, resp, now)
            if redirected is not None:
                return redirected
        if call.dialog is not None:
            self._dialogs.pop(call.dialog.id, None)
            call.dialog.apply(DialogInput.FAILED)
        cancelled = call.state is CallState.CANCELLING
        call.apply(CallInput.RECV_FAILURE)
        reason = "cancelled" if cancelled and status == 487 else explain(status, resp.reason)
        return self._end(call, ev.CallFailed(call_id=call.call_id, status=status, reason=reason))

    def _follow_redirect(self, call: _Call, resp: SipResponse, now: float) -> list[ev.Event] | None:
        """§8.1.3.4: try the Contacts of a 3xx, in q order, never twice, at most MAX_REDIRECTS."""
        candidates = sorted(resp.contacts, key=lambda c: -_q(c))
        for contact in candidates:
            uri = contact.uri
            if not isinstance(uri, SipUri) or str(uri) in call.visited:
                continue
            if call.redirects >= MAX_REDIRECTS:
                call.apply(CallInput.RECV_FAILURE)
                return self._end(
                    call,
                    ev.CallFailed(
                        call_id=call.call_id,
                        status=resp.status,
                        reason=f"{resp.status} {resp.reason} (gave up after {MAX_REDIRECTS} redirects)",
                    ),
                )
            if call.account.outbound is not None:
                hop = call.account.outbound
            elif is_ip_literal(uri.host):
                hop = self._address_for_uri(uri, call.account.transport)
            else:
                continue
            call.redirects += 1
            call.visited.add(str(uri))
            request = self._copy_request(call.invite)
            request.uri = uri
            request.headers.remove("Authorization")
            request.headers.remove("Proxy-Authorization")
            call.auth_attempts = 0
            self._restart_invite(call, request, hop, now)
            return []
        if candidates and all(str(c.uri) in call.visited for c in candidates):
            call.apply(CallInput.RECV_FAILURE)
            return self._end(
                call,
                ev.CallFailed(
                    call_id=call.call_id, status=482, reason="redirect loop (482 Loop Detected)"
                ),
            )
        return None

    def _restart_invite(self, call: _Call, request: SipRequest, hop: Address, now: float) -> None:
        """A new INVITE transaction for the same call: new branch, CSeq + 1 (§8.1.3.5)."""
        request.headers.set("CSeq", f"{call.invite.cseq.seq + 1} INVITE")
        request.headers.remove("Via")
        if call.dialog is not None:
            self._dialogs.pop(call.dialog.id, None)
            call.dialog = None
        call.invite = request
        call.dest = hop
        call.got_provisional = False
        call.state = CallState.CALLING
        self._start_client(request, hop, call.account, self._on_invite_response, now)

    # ------------------------------------------------------------------ incoming calls (§13.3)
    def ring(self, call_id: str, now: float, *, status: int = 180) -> None:
        call = self._call(call_id)
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot ring a call in state {call.state.name}")
        resp = self._response(call.invite, status, to_tag=call.local_tag, contact=call.account)
        self._server_send(call.invite_server_tx, resp, now)

    def answer(self, call_id: str, *, sdp: bytes | None, now: float) -> None:
        call = self._call(call_id)
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot answer a call in state {call.state.name}")
        resp = self._response(
            call.invite, 200, to_tag=call.local_tag, contact=call.account, sdp=sdp
        )
        assert call.dialog is not None
        call.dialog.apply(DialogInput.ACK_OR_2XX_SENT)
        call.apply(CallInput.SEND_2XX)
        self._server_send(call.invite_server_tx, resp, now)

    def reject(
        self, call_id: str, *, status: int = 486, now: float, reason: str | None = None
    ) -> list[ev.Event]:
        call = self._call(call_id)
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot reject a call in state {call.state.name}")
        if not 300 <= status < 700:
            raise LocalProtocolError(f"a rejection needs a 3xx-6xx status, not {status}")
        resp = self._response(call.invite, status, to_tag=call.local_tag, reason=reason)
        call.apply(CallInput.REJECT)
        self._server_send(call.invite_server_tx, resp, now)
        return self._end(
            call, ev.CallFailed(call_id=call_id, status=status, reason=explain(status, resp.reason))
        )

    # ------------------------------------------------------------------ ending calls (§15)
    def hangup(self, call_id: str, now: float) -> list[ev.Event]:
        """Whatever ends this call in its state: CANCEL, a 603/486 rejection, or BYE."""
        call = self._call(call_id)
        if call.state in (CallState.CALLING, CallState.PROCEEDING, CallState.CANCELLING):
            self.cancel(call_id, now)
            return []
        if call.state is CallState.INCOMING:
            return self.reject(call_id, status=603, now=now)
        if call.state is CallState.ANSWERED:
            call.bye_pending = True  # §15: wait for the ACK (or its timeout) before BYE
            return []
        if call.state is CallState.CONFIRMED:
            self._send_bye(call, now)
            return []
        return []

    def _send_bye(self, call: _Call, now: float) -> None:
        assert call.dialog is not None
        call.apply(CallInput.SEND_BYE)
        bye = call.dialog.build_request("BYE")
        self._start_client(
            bye, self._hop_for(call.dialog, call.account), call.account, self._on_bye_response, now
        )

    def _on_bye_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._calls.get(tx.request.call_id)
        if call is None or (resp is not None and status < 200):
            return []
        if resp is not None and status in (401, 407):
            request = self._authorized_copy(call.account, tx.request, resp, call.auth_attempts)
            if request is not None and call.dialog is not None:
                call.auth_attempts += 1
                request.headers.set("CSeq", f"{call.dialog.next_seq()} BYE")
                self._start_client(request, tx.dest, call.account, self._on_bye_response, now)
                return []
        if call.state is CallState.TERMINATING:
            call.apply(CallInput.BYE_DONE)
        self._forget_dialog(call)
        return self._end(
            call, ev.CallEnded(call_id=call.call_id, by="local", status=status, reason=reason)
        )

    # ------------------------------------------------------------------ re-INVITE (§14)
    def reoffer(self, call_id: str, *, sdp: bytes, now: float) -> None:
        """Send a re-INVITE with a new offer (hold: a=sendonly/inactive; resume: a=sendrecv)."""
        call = self._call(call_id)
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot re-INVITE a call in state {call.state.name}")
        if call.reoffer_client or call.reoffer_server_tx is not None:
            raise LocalProtocolError("a re-INVITE is already in progress on this call")
        call.reoffer_client = True
        call.reoffer_sdp = sdp
        call.glare_retries = 0
        self._send_reoffer(call, now)

    def _send_reoffer(self, call: _Call, now: float) -> None:
        assert call.dialog is not None and call.reoffer_sdp is not None
        request = call.dialog.build_request("INVITE")
        hop = self._hop_for(call.dialog, call.account)
        request.headers.add(
            "Contact", str(NameAddr(uri=self._contact_uri(call.account, hop.transport)))
        )
        request.headers.add("Allow", ALLOW)
        request.headers.add("Content-Type", "application/sdp")
        request.body = call.reoffer_sdp
        self._start_client(request, hop, call.account, self._on_reoffer_response, now)

    def _on_reoffer_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._calls.get(tx.request.call_id)
        if call is None or call.dialog is None or (resp is not None and status < 200):
            return []
        if resp is not None and 200 <= status < 300:
            if not call.reoffer_client:  # retransmitted 2xx
                if call.ack is not None:
                    self._outbox.append(call.ack)
                return []
            call.reoffer_client = False
            call.dialog.refresh_target(resp)
            ack = call.dialog.build_request("ACK", seq=tx.request.cseq.seq)
            call.ack = self._send_stateless(
                call.account, ack, self._hop_for(call.dialog, call.account), now
            )
            body = resp.body if resp.content_type == "application/sdp" and resp.body else None
            return [ev.ReofferAnswered(call_id=call.call_id, sdp=body)]
        if resp is not None and status in (401, 407):
            request = self._authorized_copy(call.account, tx.request, resp, call.auth_attempts)
            if request is not None:
                call.auth_attempts += 1
                request.headers.set("CSeq", f"{call.dialog.next_seq()} INVITE")
                self._start_client(request, tx.dest, call.account, self._on_reoffer_response, now)
                return []
        if status == 491 and call.glare_retries < MAX_GLARE_RETRIES:
            # §14.1: retry after a random wait; 2.1-4 s when we own the Call-ID, else 0-2 s.
            call.glare_retries += 1
            wait = self._rng.uniform(2.1, 4.0) if call.outgoing else self._rng.uniform(0.0, 2.0)
            self._deadlines[("glare", call.call_id)] = now + wait
            return []
        call.reoffer_client = False
        events: list[ev.Event] = [
            ev.ReofferFailed(call_id=call.call_id, status=status, reason=explain(status, reason))
        ]
        if status in (408, 481) and call.state is CallState.CONFIRMED:
            # §14.1: a 481 or 408 to a re-INVITE ends the dialog.
            self._send_bye(call, now)
        return events

    def answer_reoffer(self, call_id: str, *, sdp: bytes | None, now: float) -> None:
        call = self._call(call_id)
        if call.reoffer_server_tx is None or call.reoffer_request is None:
            raise LocalProtocolError("no re-INVITE to answer")
        resp = self._response(call.reoffer_request, 200, contact=call.account, sdp=sdp)
        tx = call.reoffer_server_tx
        self._server_send(tx, resp, now)

    def reject_reoffer(self, call_id: str, *, status: int = 488, now: float) -> None:
        call = self._call(call_id)
        if call.reoffer_server_tx is None or call.reoffer_request is None:
            raise LocalProtocolError("no re-INVITE to reject")
        resp = self._response(call.reoffer_request, status)
        tx = call.reoffer_server_tx
        call.reoffer_server_tx = None
        call.reoffer_request = None
        self._server_send(tx, resp, now)

    # ------------------------------------------------------------------ transfer (RFC 3515)
    def refer(self, call_id: str, target: SipUri, now: float) -> None:
        """Blind transfer as transferor: REFER the peer to ``target``."""
        call = self._call(call_id)
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot transfer a call in state {call.state.name}")
        request = call.dialog.build_request("REFER")
        hop = self._hop_for(call.dialog, call.account)
        request.headers.add(
            "Contact", str(NameAddr(uri=self._contact_uri(call.account, hop.transport)))
        )
        request.headers.add("Refer-To", str(NameAddr(uri=target)))
        request.headers.add("Referred-By", str(NameAddr(uri=call.account.aor)))
        self._start_client(request, hop, call.account, self._on_refer_response, now)

    def _on_refer_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._calls.get(tx.request.call_id)
        if call is None or (resp is not None and status < 200):
            return []
        if resp is not None and status in (401, 407) and call.dialog is not None:
            request = self._authorized_copy(call.account, tx.request, resp, call.auth_attempts)
            if request is not None:
                call.auth_attempts += 1
                request.headers.set("CSeq", f"{call.dialog.next_seq()} REFER")
                self._start_client(request, tx.dest, call.account, self._on_refer_response, now)
                return []
        ok = 200 <= status < 300
        return [
            ev.TransferProgressed(call_id=call.call_id, status=status, reason=reason, final=not ok)
        ]

    def notify_transfer(self, call_id: str, *, status: int, reason: str, now: float) -> None:
        """As transferee, tell the transferor how the new call goes (RFC 3515 §2.4.5)."""
        call = self._call(call_id)
        if not call.refer_in_progress or call.dialog is None:
            raise LocalProtocolError("no transfer in progress on this call")
        final = status >= 200
        if final:
            call.refer_in_progress = False
        self._send_refer_notify(call, status, reason, final=final, now=now)

    def _send_refer_notify(
        self, call: _Call, status: int, reason: str, *, final: bool, now: float
    ) -> None:
        assert call.dialog is not None
        if call.state in (CallState.TERMINATED, CallState.TERMINATING):
            return
        request = call.dialog.build_request("NOTIFY")
        hop = self._hop_for(call.dialog, call.account)
        request.headers.add(
            "Contact", str(NameAddr(uri=self._contact_uri(call.account, hop.transport)))
        )
        request.headers.add("Event", "refer")
        state = "terminated;reason=noresource" if final else "active;expires=60"
        request.headers.add("Subscription-State", state)
        request.headers.add("Content-Type", "message/sipfrag;version=2.0")
        request.body = f"SIP/2.0 {status} {reason}\r\n".encode()
        self._start_client(request, hop, call.account, self._ignore_response, now)

    # ------------------------------------------------------------------ DTMF over SIP INFO
    def send_dtmf_info(self, call_id: str, digit: str, *, duration_ms: int, now: float) -> None:
        """Send one digit as INFO application/dtmf-relay: the fallback when the peer did not
        offer RFC 4733 telephone-event (the body format SIP phones and PBXs share)."""
        call = self._call(call_id)
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot send DTMF in call state {call.state.name}")
        if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
            raise LocalProtocolError(f"not a DTMF digit: {digit!r}")
        request = call.dialog.build_request("INFO")
        hop = self._hop_for(call.dialog, call.account)
        request.headers.add("Content-Type", "application/dtmf-relay")
        request.body = f"Signal={digit.upper()}\r\nDuration={duration_ms}\r\n".encode()
        self._start_client(request, hop, call.account, self._ignore_response, now)

    # ------------------------------------------------------------------ incoming requests
    def _receive_request(self, req: SipRequest, source: Address, now: float) -> list[ev.Event]:
        if req.version.upper() != "SIP/2.0":
            self._reply_stateless(req, source, 505)
            return []
        req = self._stamp_via(req, source)
        reply_to = self._response_address(req.top_via, source)
        if req.method == "ACK":
            return self._receive_ack(req, now)
        key = server_key(req)
        existing = self._server_tx.get(key)
        if existing is not None:
            return self._server_events(key, existing.receive_request(req, now), now)
        if req.method == "CANCEL":
            return self._receive_cancel(req, reply_to, now)
        tx = ServerTransaction(req, reply_to, timers=self._timers, now=now)
        self._server_tx[key] = tx
        return self._dispatch_request(req, tx, key, now)

    def _dispatch_request(
        self, req: SipRequest, tx: ServerTransaction, key: tuple[str, str, str], now: float
    ) -> list[ev.Event]:
        mf = req.max_forwards
        if mf is not None and mf <= 0 and req.method != "OPTIONS":
            return self._final(tx, req, 483, now)
        has_tag = bool(req.to.tag)
        if req.method == "INVITE" and not has_tag and self._account_for_request(req) is None:
            # A scanner or a misrouted call: not one of our users, not a contact we registered.
            return self._final(tx, req, 404, now)
        handler = _METHODS.get(req.method)
        if handler is None:
            return self._final(tx, req, 405, now, extra=[("Allow", ALLOW)])
        unsupported = [
            tag
            for tag in req.headers.get_all("Require")
            if tag.strip().lower() not in SUPPORTED_EXTENSIONS
        ]
        if unsupported and req.method not in ("CANCEL", "ACK"):
            return self._final(tx, req, 420, now, extra=[("Unsupported", ", ".join(unsupported))])
        if (
            req.method == "INVITE"
            and req.body
            and req.content_type not in (None, "application/sdp")
        ):
            return self._final(tx, req, 415, now, extra=[("Accept", "application/sdp")])
        if has_tag:
            call = self._dialogs.get((req.call_id, req.to.tag or "", req.from_.tag or ""))
            if call is None or call.dialog is None:
                return self._final(tx, req, 481, now)
            try:
                call.dialog.receive_request(req)
            except RemoteProtocolError as exc:
                return self._final(tx, req, exc.status_hint, now)
            self._server_owner[key] = call.call_id
            return handler(self, req, tx, call, now)
        if req.method in ("BYE", "NOTIFY", "INFO", "PRACK", "UPDATE"):
            return self._final(tx, req, 481, now)
        return handler(self, req, tx, None, now)

    def _on_options(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        return self._final(
            tx,
            req,
            200,
            now,
            extra=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Accept-Language", "en")],
        )

    def _on_invite(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        if call is not None:
            return self._on_reinvite(req, tx, call, now)
        acct = self._account_for_request(req)
        assert acct is not None
        if req.call_id in self._calls:  # same Call-ID, new transaction, no tag: a merged request
            return self._final(tx, req, 482, now)
        local_tag = self._token()
        try:
            dialog = Dialog.from_uas(req, local_tag)
        except RemoteProtocolError as exc:
            return self._final(tx, req, exc.status_hint, now, reason=str(exc))
        call = _Call(
            call_id=req.call_id,
            account=acct,
            outgoing=False,
            state=CallState.INCOMING,
            invite=req,
            dest=tx.source,
            local_tag=local_tag,
            dialog=dialog,
            invite_server_tx=tx,
        )
        self._calls[call.call_id] = call
        self._dialogs[dialog.id] = call
        self._server_owner[server_key(req)] = call.call_id
        self._server_send(tx, self._response(req, 100), now)
        waiting = any(
            c.state in (CallState.CONFIRMED, CallState.ANSWERED)
            for c in self._calls.values()
            if c is not call
        )
        body = req.body if req.body else None
        return [
            ev.IncomingCall(
                call_id=call.call_id,
                account=acct.name,
                remote=str(req.from_.without_param("tag")),
                remote_display=req.from_.display_name,
                request_uri=str(req.uri),
                sdp=body,
                replaces_call=waiting,
            )
        ]

    def _on_reinvite(
        self, req: SipRequest, tx: ServerTransaction, call: _Call, now: float
    ) -> list[ev.Event]:
        if call.state is not CallState.CONFIRMED:
            return self._final(tx, req, 491 if call.state is CallState.ANSWERED else 481, now)
        waiting_to_retry = ("glare", call.call_id) in self._deadlines
        if (call.reoffer_client and not waiting_to_retry) or call.reoffer_server_tx is not None:
            return self._final(tx, req, 491, now)  # §14.2 glare
        assert call.dialog is not None
        call.dialog.refresh_target(req)
        call.reoffer_server_tx = tx
        call.reoffer_request = req
        self._server_send(tx, self._response(req, 100), now)
        return [ev.ReofferReceived(call_id=call.call_id, sdp=req.body or None)]

    def _on_bye(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        assert call is not None
        events = self._final(tx, req, 200, now)
        if call.state is CallState.INCOMING and call.invite_server_tx is not None:
            self._server_send(
                call.invite_server_tx, self._response(call.invite, 487, to_tag=call.local_tag), now
            )
        if call.state is CallState.TERMINATING:
            call.apply(CallInput.RECV_BYE)
            return events
        call.apply(CallInput.RECV_BYE)
        self._forget_dialog(call)
        return events + self._end(
            call,
            ev.CallEnded(call_id=call.call_id, by="remote", status=200, reason="remote hung up"),
        )

    def _on_refer(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        if call is None:
            return self._final(tx, req, 403, now, reason="Out-of-dialog REFER not accepted")
        targets = req.headers.get_all("Refer-To")
        if len(targets) != 1:
            return self._final(tx, req, 400, now, reason="REFER needs exactly one Refer-To")
        try:
            target = NameAddr.parse(targets[0])
        except ParseError:
            return self._final(tx, req, 400, now, reason="Bad Refer-To")
        if not isinstance(target.uri, SipUri) or target.uri.headers:
            # Refer-To with ?Replaces= is attended transfer (a later issue).
            return self._final(tx, req, 501, now, reason="Only blind transfer is supported")
        events = self._final(tx, req, 202, now)
        call.refer_in_progress = True
        self._send_refer_notify(call, 100, "Trying", final=False, now=now)
        referred_by = req.headers.get("Referred-By")
        return [
            *events,
            ev.TransferRequested(
                call_id=call.call_id, target=str(target.uri), referred_by=referred_by
            ),
        ]

    def _on_notify(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        assert call is not None
        event = (req.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            return self._final(tx, req, 489, now)
        events = self._final(tx, req, 200, now)
        status, reason = _parse_sipfrag(req.body)
        state = (req.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        final = state == "terminated" or status >= 200
        if status:
            events.append(
                ev.TransferProgressed(
                    call_id=call.call_id, status=status, reason=reason, final=final
                )
            )
        return events

    def _on_info(
        self, req: SipRequest, tx: ServerTransaction, call: _Call | None, now: float
    ) -> list[ev.Event]:
        assert call is not None
        if not req.body:
            return self._final(tx, req, 200, now)
        if req.content_type != "application/dtmf-relay":
            return self._final(tx, req, 415, now, extra=[("Accept", "application/dtmf-relay")])
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (
                line.partition("=") for line in req.body.decode("utf-8", "replace").splitlines()
            )
        )
        digit = fields.get("signal", "")
        events = self._final(tx, req, 200, now)
        if len(digit) == 1 and digit in "0123456789*#ABCDabcd":
            duration = fields.get("duration", "250")
            events.append(
                ev.DtmfReceived(
                    call_id=call.call_id,
                    digit=digit.upper(),
                    duration_ms=int(duration) if duration.isdigit() else 250,
                )
            )
        return events

    def _receive_cancel(self, req: SipRequest, reply_to: Address, now: float) -> list[ev.Event]:
        """§9.2: CANCEL matches the INVITE server transaction by branch; 481 when it matches none."""
        invite_key = (*server_key(req)[:2], "INVITE")
        call_id = self._server_owner.get(invite_key)
        call = self._calls.get(call_id) if call_id else None
        resp = self._response(req, 200 if call is not None else 481)
        cancel_tx = ServerTransaction(req, reply_to, timers=self._timers, now=now)
        self._server_tx[server_key(req)] = cancel_tx
        self._server_send(cancel_tx, resp, now)
        if call is None or call.state is not CallState.INCOMING or call.invite_server_tx is None:
            return []
        self._server_send(
            call.invite_server_tx, self._response(call.invite, 487, to_tag=call.local_tag), now
        )
        call.apply(CallInput.RECV_CANCEL)
        self._forget_dialog(call)
        return self._end(
            call, ev.CallFailed(call_id=call.call_id, status=487, reason="caller cancelled")
        )

    def _receive_ack(self, req: SipRequest, now: float) -> list[ev.Event]:
        key = server_key(req)
        tx = self._server_tx.get(key)
        if tx is not None:  # ACK for a non-2xx final: absorbed by its transaction (§17.2.1)
            return self._server_events(key, tx.receive_request(req, now), now)
        call = self._dialogs.get((req.call_id, req.to.tag or "", req.from_.tag or ""))
        if call is None:
            logger.debug("ACK matching no dialog dropped (Call-ID %s)", req.call_id)
            return []
        for target in (call.invite_server_tx, call.reoffer_server_tx):
            if target is not None and target.key in self._server_tx and target.matches(req):
                return self._server_events(target.key, target.receive_request(req, now), now)
        return []

    # ------------------------------------------------------------------ incoming responses
    def _receive_response(self, resp: SipResponse, source: Address, now: float) -> list[ev.Event]:
        via = resp.top_via
        key = (via.branch or "", resp.cseq.method.upper())
        tx = self._client_tx.get(key)
        if tx is None:
            # §17.1.1.2 / RFC 6026: a 2xx retransmission after the transaction is gone.
            call = self._calls.get(resp.call_id)
            if (
                call is not None
                and 200 <= resp.status < 300
                and resp.cseq.method == "INVITE"
                and call.ack
            ):
                self._outbox.append(call.ack)
            return []
        return self._client_events(key, tx, tx.receive_response(resp, now), now)

    # ------------------------------------------------------------------ transaction plumbing
    def _start_client(
        self,
        request: SipRequest,
        dest: Address,
        acct: AccountConfig,
        handler: ResponseHandler,
        now: float,
        *,
        keep_via: bool = False,
    ) -> ClientTransaction:
        if not keep_via:
            request.headers.prepend("Via", str(self._via(dest.transport)))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self._user_agent)
        tx = ClientTransaction(request, dest, timers=self._timers, now=now)
        self._client_tx[tx.key] = tx
        self._handlers[tx.key] = handler
        return tx

    def _client_events(
        self,
        key: tuple[str, str],
        tx: ClientTransaction,
        tx_events: Sequence[TransactionEvent],
        now: float,
    ) -> list[ev.Event]:
        out: list[ev.Event] = []
        handler = self._handlers.get(key, self._ignore_response)
        for item in tx_events:
            if isinstance(item, ResponseReceived):
                out += handler(tx, item.response, item.response.status, item.response.reason, now)
            elif isinstance(item, TransactionTimedOut):
                out += handler(
                    tx,
                    None,
                    408,
                    f"no response from {tx.dest.host_port} ({tx.method} timed out)",
                    now,
                )
            elif isinstance(item, TransportFailed):
                out += handler(tx, None, 503, item.reason, now)
            elif isinstance(item, TransactionTerminated):
                self._client_tx.pop(key, None)
                self._handlers.pop(key, None)
        return out

    def _server_events(
        self, key: tuple[str, str, str], tx_events: Sequence[TransactionEvent], now: float
    ) -> list[ev.Event]:
        out: list[ev.Event] = []
        call = self._calls.get(self._server_owner.get(key, ""))
        for item in tx_events:
            if isinstance(item, AckReceived) and call is not None:
                out += self._ack_received(call, key, now)
            elif isinstance(item, AckNotReceived) and call is not None:
                out += self._ack_timed_out(call, key, now)
            elif (
                isinstance(item, TransportFailed)
                and call is not None
                and call.state is CallState.INCOMING
            ):
                call.apply(CallInput.REJECT)
                out += self._end(
                    call, ev.CallFailed(call_id=call.call_id, status=503, reason=item.reason)
                )
            elif isinstance(item, TransactionTerminated):
                self._server_tx.pop(key, None)
                self._server_owner.pop(key, None)
                if (
                    call is not None
                    and call.reoffer_server_tx is not None
                    and server_key(call.reoffer_server_tx.request) == key
                ):
                    call.reoffer_server_tx = None
                    call.reoffer_request = None
        return out

    def _ack_received(self, call: _Call, key: tuple[str, str, str], now: float) -> list[ev.Event]:
        if call.reoffer_server_tx is not None and server_key(call.reoffer_server_tx.request) == key:
            call.reoffer_server_tx = None
            call.reoffer_request = None
            return []
        if call.state is CallState.ANSWERED:
            call.apply(CallInput.RECV_ACK)
            events: list[ev.Event] = [ev.CallConfirmed(call_id=call.call_id)]
            if call.bye_pending:
                self._send_bye(call, now)
            return events
        return []

    def _ack_timed_out(self, call: _Call, key: tuple[str, str, str], now: float) -> list[ev.Event]:
        """§13.3.1.4: no ACK for our 2xx within 64*T1 — the call is over; send BYE."""
        if call.state is CallState.ANSWERED:
            self._send_bye(call, now)
            return self._end(
                call,
                ev.CallEnded(
                    call_id=call.call_id, by="timeout", status=408, reason="no ACK for our answer"
                ),
            )
        return []

    def _server_send(self, tx: ServerTransaction, resp: SipResponse, now: float) -> None:
        key = server_key(tx.request)
        events = tx.send_response(resp, now)
        if events:
            self._server_events(key, events, now)

    def _final(
        self,
        tx: ServerTransaction,
        req: SipRequest,
        status: int,
        now: float,
        *,
        extra: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> list[ev.Event]:
        self._server_send(tx, self._response(req, status, extra=extra, reason=reason), now)
        return []

    def _ignore_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        return []

    def _fire_deadline(self, key: tuple[str, str], now: float) -> list[ev.Event]:
        kind, name = key
        if kind == "register":
            reg = self._registrations.get(name)
            if reg is not None and reg.state in (RegState.REGISTERED, RegState.FAILED):
                reg.apply(RegInput.RETRY)
                reg.auth_attempts = 0
                self._send_register(reg, reg.expires, now)
        elif kind == "glare":
            call = self._calls.get(name)
            if call is not None and call.state is CallState.CONFIRMED and call.reoffer_client:
                if call.reoffer_server_tx is not None:  # the peer's re-INVITE goes first
                    self._deadlines[key] = now + self._timers.t1
                else:
                    self._send_reoffer(call, now)
        return []

    # ------------------------------------------------------------------ building messages
    def _via(self, transport: TransportName) -> Via:
        local = self._local(transport)
        params: tuple[tuple[str, str | None], ...] = (("branch", "z9hG4bK" + self._token(16)),)
        if transport == "udp":
            params += (("rport", None),)  # RFC 3581
        return Via(transport=transport.upper(), host=local.host, port=local.port, params=params)

    def _local(self, transport: TransportName) -> Address:
        for name in (transport, "tcp", "udp", "tls"):
            local = self._listeners.get(name)
            if local is not None:
                return local
        raise LocalProtocolError("no listening address: call add_listener() first")

    def _contact_uri(self, acct: AccountConfig, transport: TransportName) -> SipUri:
        reg = self._registrations.get(acct.name)
        if (
            reg is not None
            and reg.contact is not None
            and reg.contact.transport
            in (
                None if transport == "udp" else transport,
                transport,
            )
        ):
            return reg.contact
        local = self._local(transport)
        params: tuple[tuple[str, str | None], ...] = (
            () if transport == "udp" else (("transport", transport),)
        )
        return SipUri(
            scheme="sip", user=acct.aor.user, host=local.host, port=local.port, params=params
        )

    def _address_for_uri(self, uri: SipUri, default_transport: TransportName) -> Address:
        """Next hop for a URI whose host is an IP literal (RFC 3263 §4.2 without DNS)."""
        transport = (
            uri.transport or ("tls" if uri.scheme == "sips" else default_transport)
        ).lower()
        if transport not in ("udp", "tcp", "tls"):
            raise LocalProtocolError(f"unsupported transport {transport!r} in {uri}")
        if not is_ip_literal(uri.host):
            raise LocalProtocolError(f"{uri.host} needs a DNS look-up; resolve it first")
        port = uri.port or (5061 if transport == "tls" else 5060)
        return Address(transport, uri.host, port, server_name=uri.host)  # type: ignore[arg-type]

    def _hop_for(self, dialog: Dialog, acct: AccountConfig) -> Address:
        """Where an in-dialog request goes: the first route, else the remote target (§12.2.1.1)."""
        uri = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
        if isinstance(uri, SipUri):
            if is_ip_literal(uri.host):
                return self._address_for_uri(uri, acct.transport)
        if acct.outbound is not None:
            return acct.outbound
        raise LocalProtocolError(f"cannot reach {uri} without a DNS look-up")

    def _response(
        self,
        req: SipRequest,
        status: int,
        *,
        to_tag: str | None = None,
        contact: AccountConfig | None = None,
        sdp: bytes | None = None,
        extra: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> SipResponse:
        """§8.2.6.2: Via (all, in order), From, Call-ID, CSeq copied; To gets our tag."""
        headers = Headers()
        for line in req.headers.get_lines("Via"):
            headers.add("Via", line)
        headers.add("From", req.headers.get_lines("From")[0])
        to = req.to
        if status != 100 and not to.tag:
            to = to.with_param("tag", to_tag or self._token())
        headers.add("To", str(to) if to is not req.to else req.headers.get_lines("To")[0])
        headers.add("Call-ID", req.call_id)
        headers.add("CSeq", str(req.cseq))
        if req.method == "INVITE" and 100 < status < 300:
            for line in req.headers.get_lines("Record-Route"):  # §12.1.1
                headers.add("Record-Route", line)
        if contact is not None:
            headers.add(
                "Contact", str(NameAddr(uri=self._contact_uri(contact, self._reply_transport(req))))
            )
        for name, value in extra:
            headers.add(name, value)
        if status != 100:
            headers.add("Server", self._user_agent)
        if sdp is not None:
            headers.add("Content-Type", "application/sdp")
            if "Allow" not in headers:
                headers.add("Allow", ALLOW)
        return SipResponse(
            status=status, reason=reason or reason_phrase(status), headers=headers, body=sdp or b""
        )

    def _reply_transport(self, req: SipRequest) -> TransportName:
        t = req.top_via.transport.lower()
        return t if t in ("udp", "tcp", "tls") else "udp"  # type: ignore[return-value]

    def _send_stateless(
        self, acct: AccountConfig, request: SipRequest, dest: Address, now: float
    ) -> tuple[bytes, Address]:
        request.headers.prepend("Via", str(self._via(dest.transport)))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        item = (self._serialize(request, dest), dest)
        self._outbox.append(item)
        return item

    def _reply_stateless(self, req: SipRequest, source: Address, status: int) -> None:
        resp = self._response(self._stamp_via(req, source), status)
        dest = self._response_address(req.top_via, source)
        self._outbox.append((self._serialize(resp, dest), dest))

    def _answer_garbage(self, data: bytes, source: Address, exc: ParseError) -> None:
        """A malformed request gets a 400 when the headers a response needs can be found (§8.2);
        otherwise it is dropped (the transport logs it)."""
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        raw_lines = head.replace(b"\r\n", b"\n").split(b"\n")
        if not raw_lines or raw_lines[0].startswith(b"SIP/"):
            return
        lines: list[bytes] = []
        for line in raw_lines:  # unfold (§7.3.1) before picking headers out
            if line[:1] in (b" ", b"\t") and lines:
                lines[-1] += b" " + line.strip()
            else:
                lines.append(line)
        wanted: dict[str, list[str]] = {
            "via": [],
            "v": [],
            "from": [],
            "f": [],
            "to": [],
            "t": [],
            "call-id": [],
            "i": [],
            "cseq": [],
        }
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            key = name.strip().decode("latin-1").lower()
            if sep and key in wanted:
                wanted[key].append(value.strip().decode("utf-8", "replace"))
        via = wanted["via"] + wanted["v"]
        frm, to = wanted["from"] + wanted["f"], wanted["to"] + wanted["t"]
        cid, cseq = wanted["call-id"] + wanted["i"], wanted["cseq"]
        if not (via and frm and to and cid and cseq):
            return
        phrase = str(exc).replace("\r", " ").replace("\n", " ")[:100]
        body = "\r\n".join(
            [f"SIP/2.0 {exc.status_hint} {reason_phrase(exc.status_hint)}"]
            + [f"Via: {v}" for v in via]
            + [
                f"From: {frm[0]}",
                f"To: {to[0]}",
                f"Call-ID: {cid[0]}",
                f"CSeq: {cseq[0]}",
                f'Warning: 399 softphone "{phrase.replace(chr(34), chr(39))}"',
                "Content-Length: 0",
                "",
                "",
            ]
        ).encode()
        try:
            parse_message(body)  # never answer junk with junk
            dest = self._response_address(Via.parse(via[0].split(",")[0]), source)
        except ParseError:
            return
        self._outbox.append((body, dest))

    def _stamp_via(self, req: SipRequest, source: Address) -> SipRequest:
        """§18.2.1 received, RFC 3581 rport: record where the request really came from."""
        vias = req.vias
        top = vias[0]
        changed = top
        if top.host != source.host or (top.received is not None and top.received != source.host):
            changed = changed.with_param("received", source.host)
        if top.param("rport") is not None:
            changed = changed.with_param("rport", str(source.port))
        if changed is not top:
            vias[0] = changed
            req.headers.set("Via", ", ".join(str(v) for v in vias))
        return req

    def _response_address(self, via: Via, source: Address) -> Address:
        """§18.2.2 + RFC 3581 §4: reliable -> the same connection; else the source IP at rport, or
        the sent-by port. Never a name that needs DNS."""
        if source.reliable:
            return source
        # received is always the source IP (we stamp it, §18.2.1); rport asks for the source port.
        port = source.port if via.param("rport") is not None else (via.port or 5060)
        return Address(source.transport, source.host, port)

    def _account_for_request(self, req: SipRequest) -> AccountConfig | None:
        uri = req.uri
        if not isinstance(uri, SipUri):
            return None
        for acct in self._accounts.values():
            reg = self._registrations.get(acct.name)
            if (
                reg is not None
                and reg.contact is not None
                and uri.user == reg.contact.user
                and (
                    uri.host == reg.contact.host
                    and (uri.port or 5060) == (reg.contact.port or 5060)
                )
            ):
                return acct
        for acct in self._accounts.values():
            if uri.user is not None and uri.user == acct.aor.user:
                return acct
        if uri.user is None:  # a direct call to our IP (sip:192.0.2.1): the first account answers
            return next(iter(self._accounts.values()))
        return None

    def _authorized_copy(
        self, acct: AccountConfig, request: SipRequest, resp: SipResponse, attempts: int
    ) -> SipRequest | None:
        """§22.2: resend with credentials. Give up after MAX_AUTH_ATTEMPTS unless the nonce was stale."""
        proxy = resp.status == 407
        values = resp.headers.get_lines("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        client = self._auth[acct.name]
        previous = request.headers.get_lines("Proxy-Authorization" if proxy else "Authorization")
        challenge = choose_challenge(client, values, previous=previous).challenge
        if challenge is None:
            return None
        if attempts >= MAX_AUTH_ATTEMPTS and not challenge.stale:
            return None
        copy = self._copy_request(request)
        copy.headers.remove("Via")
        name = "Proxy-Authorization" if proxy else "Authorization"
        copy.headers.remove(name)
        value = client.authorize(
            challenge, method=request.method, uri=str(request.uri), body=request.body, proxy=proxy
        )
        copy.headers.add(name, value)
        return copy

    @staticmethod
    def _copy_request(request: SipRequest) -> SipRequest:
        return SipRequest(
            method=request.method,
            uri=request.uri,
            headers=request.headers.copy(),
            body=request.body,
        )

    def _serialize(self, msg: SipMessage, dest: Address) -> bytes:
        data = bytes(msg)
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug(
                "send %d bytes to %s:\n%s", len(data), dest, redact(data).decode("utf-8", "replace")
            )
        return data

    # ------------------------------------------------------------------ small helpers
    def _call(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise LocalProtocolError(f"no call {call_id!r}")
        return call

    def _end(self, call: _Call, event: ev.Event) -> list[ev.Event]:
        if call.ended:
            return []
        call.ended = True
        return [event]

    def _forget_dialog(self, call: _Call) -> None:
        if call.dialog is not None:
            call.dialog.apply(DialogInput.BYE)

    def _new_call_id(self) -> str:
        host = next(iter(self._listeners.values())).host if self._listeners else "softphone"
        return f"{self._token(20)}@{host}"

    def _token(self, length: int = 10) -> str:
        return "".join(
            self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length)
        )

    def forget_ended_calls(self) -> None:
        """Drop terminated calls whose transactions are gone (bounded memory in long sessions)."""
        busy = {tx.request.call_id for tx in self._client_tx.values()} | {
            tx.request.call_id for tx in self._server_tx.values()
        }
        for call_id, call in list(self._calls.items()):
            if call.state is CallState.TERMINATED and call_id not in busy:
                del self._calls[call_id]
                if call.dialog is not None:
                    self._dialogs.pop(call.dialog.id, None)


def _int_header(msg: SipMessage, name: str) -> int | None:
    value = msg.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def _q(contact: NameAddr) -> float:
    try:
        return float(contact.param("q") or "1")
    except ValueError:
        return 0.0


def _parse_sipfrag(body: bytes) -> tuple[int, str]:
    """RFC 3420 message/sipfrag: the first line is a status line."""
    first = body.decode("utf-8", "replace").split("\n", 1)[0].strip()
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, ""


_METHODS: Final[
    dict[
        str,
        Callable[[UserAgent, SipRequest, ServerTransaction, _Call | None, float], list[ev.Event]],
    ]
] = {
    "OPTIONS": UserAgent._on_options,
    "INVITE": UserAgent._on_invite,
    "BYE": UserAgent._on_bye,
    "REFER": UserAgent._on_refer,
    "NOTIFY": UserAgent._on_notify,
    "INFO": UserAgent._on_info,
}
