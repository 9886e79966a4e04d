"""The SIP user agent core (RFC 3261 §8, §17-§18; RFC 3581), sans-IO.

Bytes and ``now`` go in (``receive_message``, ``handle_timer``, the action methods), events and
bytes to send come out (``messages_to_send``). Transactions (sip/transaction.py) handle
retransmissions; this module is the transaction user's hub: the accounts, the transactions and
their deadlines, and the dispatch of incoming requests to the parts that handle them:

    registration.py   REGISTER, refresh, NAT address learning, unregister (§10)
    invite_client.py  outgoing calls: INVITE, CANCEL, 3xx, credentials (§13.2, §9.1)
    invite_server.py  incoming calls: ring, answer, reject, CANCEL received (§13.3, §9.2)
    reoffer.py        re-INVITE both ways, hold/resume, glare (§14)
    bye.py            BYE both ways (§15)
    transfer.py       REFER/NOTIFY (RFC 3515)
    notify.py         NOTIFY, routed by event package to the part that registered it
    info.py           DTMF over INFO
    messaging.py      MESSAGE both ways (RFC 3428): ``UserAgent.messaging``
    subscription.py   SUBSCRIBE and its NOTIFYs (RFC 6665): ``UserAgent.subscriptions``
    publication.py    PUBLISH (RFC 3903): ``UserAgent.publications``

Each part gets a UaContext (sip/context.py) and installs the methods it answers into the
MethodTable; ``Allow`` is what the table holds. A new part (SUBSCRIBE, MESSAGE, PRACK...) is one
more module and one more ``install`` here, or ``add_part``.

Contract: ``receive_message`` raises only RemoteProtocolError (for bytes that cannot even be
answered); every request that reaches a handler gets a final response.

Incoming-request checks run in this order (RFC 3261 §8.2): syntax (400, or a logged drop when no
response can be formed), version (505), Max-Forwards (483), routing (404 for a request that
must be for one of our users/contacts and is not), method (405), Require (420), content (415),
dialog (481).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar, assert_never

from softphone.sip import events as ev
from softphone.sip.account import AccountChanges, AccountConfig, account_for_uri
from softphone.sip.address import Address, TransportName
from softphone.sip.authentication import Authenticator
from softphone.sip.bye import Bye
from softphone.sip.call import Call, Calls, CallState
from softphone.sip.compose import (
    answer_to_garbage,
    build_response,
    reply_transport,
    response_address,
    stamp_via,
)
from softphone.sip.context import (
    Challenged,
    DeadlineHandler,
    MethodTable,
    ResponseHandler,
    ServerKey,
    UaContext,
    ignore_response,
)
from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError, SipError
from softphone.sip.headers import Via
from softphone.sip.info import DtmfInfo
from softphone.sip.invite_client import InviteClient
from softphone.sip.invite_server import InviteServer
from softphone.sip.message import SipMessage, SipRequest, SipResponse, parse_message
from softphone.sip.messaging import Messaging
from softphone.sip.notify import NotifyRouter
from softphone.sip.publication import Publications
from softphone.sip.registration import Registrations, RegState
from softphone.sip.reoffer import Reoffers
from softphone.sip.subscription import Subscriptions
from softphone.sip.timers import TimerConfig
from softphone.sip.transaction import (
    ClientTransaction,
    ResponseReceived,
    ServerTransaction,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    server_key,
)
from softphone.sip.transfer import Transfer
from softphone.sip.uri import SipUri

logger = logging.getLogger(__name__)
wire = logging.getLogger("softphone.wire")

_REDACT = re.compile(rb"(?im)^((?:proxy-)?authorization[ \t]*:).*$")


def redact(data: bytes) -> bytes:
    """The wire log never shows credentials: (Proxy-)Authorization values are replaced."""
    return _REDACT.sub(rb"\1 <redacted>", data)


class Part(Protocol):
    """A part of the user agent: built with a UaContext, it installs the methods it answers."""

    def install(self, methods: MethodTable) -> None: ...


P = TypeVar("P", bound=Part)


K = TypeVar("K")


class _TimerHeap(Generic[K]):
    """Timers by time, for one kind of owner. An entry is checked when it comes up: ``current``
    says whether the owner still runs a timer at that time (it may have moved or ended since).
    Owners push their earliest timer whenever it may have changed, so that one is always in."""

    def __init__(self, current: Callable[[K, float], bool]) -> None:
        self._current = current
        self._entries: list[tuple[float, int, K]] = []
        self._count = itertools.count()

    def push(self, at: float, key: K) -> None:
        heapq.heappush(self._entries, (at, next(self._count), key))

    def next_at(self) -> float | None:
        entries = self._entries
        while entries and not self._current(entries[0][2], entries[0][0]):
            heapq.heappop(entries)
        return entries[0][0] if entries else None

    def pop(self) -> K:
        """The key of the entry :meth:`next_at` just found current."""
        return heapq.heappop(self._entries)[2]


class _Plumbing:
    """The transactions, deadlines and message building the parts share: the UaContext."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, AccountConfig],
        rng: random.Random,
        timers: TimerConfig,
        user_agent: str,
        methods: MethodTable,
        registered_contact: Callable[[str], SipUri | None],
    ) -> None:
        self._accounts = accounts
        self._rng = rng
        self._timers = timers
        self._user_agent = user_agent
        self._methods = methods
        self._registered_contact = registered_contact
        self._auth = Authenticator(rng)
        self._calls = Calls()
        self.listeners: dict[TransportName, Address] = {}
        self.client_tx: dict[tuple[str, str], ClientTransaction] = {}
        self.handlers: dict[tuple[str, str], ResponseHandler] = {}
        self.server_tx: dict[ServerKey, ServerTransaction] = {}
        self.server_owner: dict[ServerKey, str] = {}  # tx key -> call_id
        self.outbox: list[tuple[bytes, Address]] = []
        # ("register", account), ("glare", call_id): when, and what to do then
        self.deadlines: dict[tuple[str, str], tuple[float, DeadlineHandler]] = {}
        # What makes a datagram cost the same with 10 or 10,000 transactions alive: the
        # transactions touched since the last drain (responses first, so that a 202 goes out
        # ahead of the NOTIFY it causes), and one heap of every timer and deadline. A heap entry
        # is checked when it comes up (the transaction may have moved its timer since): each
        # touch pushes the transaction's current earliest timer, so that one is always there.
        self._dirty_server: dict[ServerKey, ServerTransaction] = {}
        self._dirty_client: dict[tuple[str, str], ClientTransaction] = {}
        self._client_timers: _TimerHeap[tuple[str, str]] = _TimerHeap(
            lambda key, at: (tx := self.client_tx.get(key)) is not None and tx.get_timer() == at
        )
        self._server_timers: _TimerHeap[ServerKey] = _TimerHeap(
            lambda key, at: (tx := self.server_tx.get(key)) is not None and tx.get_timer() == at
        )
        self._deadline_timers: _TimerHeap[tuple[str, str]] = _TimerHeap(
            lambda key, at: (entry := self.deadlines.get(key)) is not None and entry[0] == at
        )
        self._live_calls: Counter[str] = Counter()  # Call-ID -> transactions alive

    # --- UaContext --------------------------------------------------------------------------------
    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def timers(self) -> TimerConfig:
        return self._timers

    @property
    def calls(self) -> Calls:
        return self._calls

    @property
    def allow(self) -> str:
        return self._methods.allow

    def start_client(
        self,
        request: SipRequest,
        dest: Address,
        account: AccountConfig,
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
        self.client_tx[tx.key] = tx
        self.handlers[tx.key] = handler
        self._live_calls[request.call_id] += 1
        self.touch_client(tx.key, tx)
        return tx

    def resend_with_credentials(
        self,
        tx: ClientTransaction,
        resp: SipResponse,
        *,
        account: AccountConfig,
        owner: Challenged,
        next_cseq: Callable[[], int],
        handler: ResponseHandler,
        now: float,
        prepare: Callable[[SipRequest], None] | None = None,
    ) -> bool:
        request = self._auth.authorized_copy(account, tx.request, resp, owner.auth_attempts)
        if request is None:
            return False
        owner.auth_attempts += 1
        request.headers.set("CSeq", f"{next_cseq()} {request.method}")
        if prepare is not None:
            prepare(request)
        self.start_client(request, tx.dest, account, handler, now)
        return True

    def cached_credentials(self, account: AccountConfig, method: str, uri: str) -> list[str]:
        return self._auth.cached(account, method, uri)

    def send_response(self, tx: ServerTransaction, resp: SipResponse, now: float) -> None:
        key = server_key(tx.request)
        events = tx.send_response(resp, now)
        self.touch_server(key, tx)
        if events:
            self.server_events(key, events, now)

    def reply(
        self,
        tx: ServerTransaction,
        req: SipRequest,
        status: int,
        now: float,
        *,
        extra: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> list[ev.Event]:
        self.send_response(tx, self.response(req, status, extra=extra, reason=reason), now)
        return []

    def response(
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
        tag = None if status == 100 or req.to.tag else (to_tag or self.token())
        return build_response(
            req,
            status,
            to_tag=tag,
            contact=None if contact is None else self.contact_uri(contact, reply_transport(req)),
            server=self._user_agent,
            allow=self.allow,
            sdp=sdp,
            extra=extra,
            reason=reason,
        )

    def send_stateless(
        self, request: SipRequest, dest: Address, now: float
    ) -> tuple[bytes, Address]:
        request.headers.prepend("Via", str(self._via(dest.transport)))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        item = (self.serialize(request, dest), dest)
        self.outbox.append(item)
        return item

    def resend(self, item: tuple[bytes, Address]) -> None:
        self.outbox.append(item)

    def own_server_transaction(self, key: ServerKey, call: Call) -> None:
        self.server_owner[key] = call.call_id

    def contact_uri(self, account: AccountConfig, transport: TransportName) -> SipUri:
        registered = self._registered_contact(account.name)
        if registered is not None and registered.transport in (
            None if transport == "udp" else transport,
            transport,
        ):
            return registered
        local = self._local(transport)
        params: tuple[tuple[str, str | None], ...] = (
            () if transport == "udp" else (("transport", transport),)
        )
        return SipUri(
            scheme="sip", user=account.aor.user, host=local.host, port=local.port, params=params
        )

    def account_for_request(self, req: SipRequest) -> AccountConfig | None:
        return account_for_uri(self._accounts.values(), req.uri, self._registered_contact)

    def set_deadline(self, key: tuple[str, str], at: float, fire: DeadlineHandler) -> None:
        self.deadlines[key] = (at, fire)
        self._deadline_timers.push(at, key)

    def clear_deadline(self, key: tuple[str, str]) -> None:
        self.deadlines.pop(key, None)

    def token(self, length: int = 10) -> str:
        return "".join(
            self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length)
        )

    def new_call_id(self) -> str:
        host = next(iter(self.listeners.values())).host if self.listeners else "softphone"
        return f"{self.token(20)}@{host}"

    # --- the SipCore side -------------------------------------------------------------------------
    def add_server(self, key: ServerKey, tx: ServerTransaction) -> None:
        self.server_tx[key] = tx
        self._live_calls[tx.request.call_id] += 1
        self.touch_server(key, tx)

    def touch_client(self, key: tuple[str, str], tx: ClientTransaction) -> None:
        """``tx`` was given an input: it may have output and a new earliest timer."""
        self._dirty_client[key] = tx
        at = tx.get_timer()
        if at is not None:
            self._client_timers.push(at, key)

    def touch_server(self, key: ServerKey, tx: ServerTransaction) -> None:
        self._dirty_server[key] = tx
        at = tx.get_timer()
        if at is not None:
            self._server_timers.push(at, key)

    def has_live_transactions(self, call_id: str) -> bool:
        return self._live_calls[call_id] > 0

    # --- the SipCore side -------------------------------------------------------------------------
    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        out = self.outbox
        self.outbox = []
        server, client = self._dirty_server, self._dirty_client
        self._dirty_server, self._dirty_client = {}, {}
        for tx in (*server.values(), *client.values()):
            for msg, dest in tx.messages_to_send():
                out.append((self.serialize(msg, dest), dest))
        return out

    def get_timer(self) -> float | None:
        due = [
            h.next_at() for h in (self._client_timers, self._server_timers, self._deadline_timers)
        ]
        return min((at for at in due if at is not None), default=None)

    def handle_timer(self, now: float) -> list[ev.Event]:
        events: list[ev.Event] = []
        while True:
            at = self.get_timer()
            if at is None or at > now:
                return events
            if self._client_timers.next_at() == at:
                ckey = self._client_timers.pop()
                ctx = self.client_tx[ckey]
                events += self.client_events(ckey, ctx, ctx.handle_timer(now), now)
            elif self._server_timers.next_at() == at:
                skey = self._server_timers.pop()
                events += self.server_events(skey, self.server_tx[skey].handle_timer(now), now)
            else:
                dkey = self._deadline_timers.pop()
                _, fire = self.deadlines.pop(dkey)
                events += fire(now)

    def transport_error(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        events: list[ev.Event] = []
        for ckey, ctx in list(self.client_tx.items()):
            if ctx.dest == dest:
                events += self.client_events(ckey, ctx, ctx.transport_error(reason, now), now)
        for skey, stx in list(self.server_tx.items()):
            if stx.source == dest:
                events += self.server_events(skey, stx.transport_error(reason, now), now)
        return events

    def client_events(
        self,
        key: tuple[str, str],
        tx: ClientTransaction,
        tx_events: Sequence[TransactionEvent],
        now: float,
    ) -> list[ev.Event]:
        out: list[ev.Event] = []
        self.touch_client(key, tx)
        handler = self.handlers.get(key, ignore_response)
        for item in tx_events:
            if isinstance(item, ResponseReceived):
                out += handler(tx, item.response, item.response.status, item.response.reason, now)
            elif isinstance(item, TransactionTimedOut):
                dest, waited = tx.dest, self._timers.timeout
                reason = f"no answer from {dest.host_port} over {dest.transport} in {waited:.0f} s"
                out += handler(tx, None, 408, reason, now)
            elif isinstance(item, TransportFailed):
                out += handler(tx, None, 503, item.reason, now)
            elif isinstance(item, TransactionTerminated):
                if self.client_tx.pop(key, None) is not None:
                    self._live_calls[tx.request.call_id] -= 1
                    if self._live_calls[tx.request.call_id] <= 0:
                        del self._live_calls[tx.request.call_id]
                self.handlers.pop(key, None)
        return out

    def server_events(
        self, key: ServerKey, tx_events: Sequence[TransactionEvent], now: float
    ) -> list[ev.Event]:
        """Forget ended transactions; a call's transactions are shown to the call observers."""
        out: list[ev.Event] = []
        live = self.server_tx.get(key)
        if live is not None:
            self.touch_server(key, live)
        call = self._calls.get(self.server_owner.get(key, ""))
        for item in tx_events:
            if isinstance(item, TransactionTerminated):
                ended = self.server_tx.pop(key, None)
                if ended is not None:
                    self._live_calls[ended.request.call_id] -= 1
                    if self._live_calls[ended.request.call_id] <= 0:
                        del self._live_calls[ended.request.call_id]
                self.server_owner.pop(key, None)
            if call is not None:
                for observe in self._methods.observers:
                    out += observe(call, key, item, now)
        return out

    def serialize(self, msg: SipMessage, dest: Address) -> bytes:
        data = bytes(msg)
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug(
                "send %d bytes to %s:\n%s", len(data), dest, redact(data).decode("utf-8", "replace")
            )
        return data

    def _via(self, transport: TransportName) -> Via:
        local = self._local(transport)
        params: tuple[tuple[str, str | None], ...] = (("branch", "z9hG4bK" + self.token(16)),)
        if transport == "udp":
            params += (("rport", None),)  # RFC 3581
        return Via(transport=transport.upper(), host=local.host, port=local.port, params=params)

    def _local(self, transport: TransportName) -> Address:
        for name in (transport, "tcp", "udp", "tls"):
            local = self.listeners.get(name)
            if local is not None:
                return local
        raise LocalProtocolError("no listening address: call add_listener() first")


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
        self._methods = MethodTable()
        self._core = _Plumbing(
            accounts=self._accounts,
            rng=rng,
            timers=timers or TimerConfig(),
            user_agent=user_agent,
            methods=self._methods,
            registered_contact=lambda account: self._registrations.contact(account),
        )
        core: UaContext = self._core
        self._calls = core.calls
        self._registrations = Registrations(core)
        self._bye = Bye(core)
        self._invite_client = InviteClient(core, self._bye)
        self._invite_server = InviteServer(core, self._bye)
        self._reoffers = Reoffers(core, self._bye)
        self._transfer = Transfer(core)
        self._info = DtmfInfo(core)
        self.messaging = Messaging(core)
        self.subscriptions = Subscriptions(core)
        self.publications = Publications(core)
        # The order of installation is the order of Allow.
        self._invite_server.install(self._methods)
        self._methods.declare("ACK")  # matched to its INVITE here (§17.2.1, §13.3.1.4)
        self._bye.install(self._methods)
        self._methods.declare("CANCEL")  # matched to its INVITE here (§9.2)
        self._methods.register_method(
            "OPTIONS",
            in_dialog=lambda req, tx, call, now: self._on_options(req, tx, now),
            out_of_dialog=self._on_options,
        )
        self._reoffers.install(self._methods)
        self._transfer.install(self._methods)
        NotifyRouter(core).install(self._methods)
        self._info.install(self._methods)
        self.messaging.install(self._methods)
        self.subscriptions.install(self._methods)

    def add_part(self, make: Callable[[UaContext], P]) -> P:
        """Build a part with this user agent's context and install its methods (listed in
        Allow after those already there)."""
        part = make(self._core)
        part.install(self._methods)
        return part

    # ------------------------------------------------------------------ configuration / queries
    def add_listener(self, address: Address) -> None:
        """A local address we receive on; it goes into Via sent-by and Contact (§18.1.1)."""
        self._core.listeners.setdefault(address.transport, address)

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

    def update_accounts(self, accounts: Sequence[AccountConfig], now: float) -> AccountChanges:
        """The accounts are now ``accounts`` (the person edited them): registration follows at
        once (sip/registration.py). Calls keep the account they began with until they end."""
        if not accounts:
            raise LocalProtocolError("a user agent needs at least one account")
        changes = self._registrations.update(self.accounts, accounts, now)
        self._accounts.clear()
        self._accounts.update((a.name, a) for a in accounts)
        return changes

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return call.state if call else None

    def registration_state(self, account: str) -> RegState:
        return self._registrations.state(account)

    def active_calls(self) -> list[str]:
        return [c.call_id for c in self._calls if c.state is not CallState.TERMINATED]

    # ------------------------------------------------------------------ the SipCore protocol
    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        return self._core.messages_to_send()

    def get_timer(self) -> float | None:
        return self._core.get_timer()

    def handle_timer(self, now: float) -> list[ev.Event]:
        return self._core.handle_timer(now)

    def transport_error(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        return self._core.transport_error(dest, reason, now)

    def receive_message(self, data: bytes, source: Address, now: float) -> list[ev.Event]:
        if wire.isEnabledFor(logging.DEBUG):
            text = redact(data).decode("utf-8", "replace")
            wire.debug("recv %d bytes from %s:\n%s", len(data), source, text)
        try:
            msg = parse_message(data)
        except ParseError as exc:
            answer = answer_to_garbage(data, source, exc)
            if answer is not None:
                self._core.resend(answer)
            raise
        try:
            if isinstance(msg, SipResponse):
                return self._receive_response(msg, now)
            return self._receive_request(msg, source, now)
        except RemoteProtocolError:
            raise
        except SipError as exc:  # a header that only fails when accessed deep inside
            raise RemoteProtocolError(f"unusable message: {exc}") from exc

    # ------------------------------------------------------------------ registration (§10)
    def register(self, account: str, now: float, *, expires: int | None = None) -> None:
        self._registrations.register(self.account(account), now, expires=expires)

    def unregister(self, account: str, now: float) -> bool:
        """Send REGISTER with Expires: 0. Returns False when nothing was registered."""
        return self._registrations.unregister(account, now)

    # ------------------------------------------------------------------ calls (§13-§15)
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
        return self._invite_client.invite(
            self.account(account), target, sdp=sdp, now=now, dest=dest
        )

    def cancel(self, call_id: str, now: float) -> None:
        """§9.1: CANCEL is sent once a provisional response has arrived; before that it waits."""
        self._invite_client.cancel(self._calls.require(call_id), now)

    def ring(self, call_id: str, now: float, *, status: int = 180) -> None:
        self._invite_server.ring(self._calls.require(call_id), now, status=status)

    def answer(self, call_id: str, *, sdp: bytes | None, now: float) -> None:
        self._invite_server.answer(self._calls.require(call_id), sdp=sdp, now=now)

    def reject(
        self, call_id: str, *, status: int = 486, now: float, reason: str | None = None
    ) -> list[ev.Event]:
        call = self._calls.require(call_id)
        return self._invite_server.reject(call, status=status, now=now, reason=reason)

    def hangup(self, call_id: str, now: float) -> list[ev.Event]:
        """Whatever ends this call in its state: CANCEL, a 603 rejection, or BYE."""
        call = self._calls.require(call_id)
        state = call.state
        match state:
            case CallState.CALLING | CallState.PROCEEDING | CallState.CANCELLING:
                self._invite_client.cancel(call, now)
                return []
            case CallState.INCOMING:
                return self._invite_server.reject(call, status=603, now=now)
            case CallState.ANSWERED | CallState.CONFIRMED:
                self._bye.hang_up(call, now)
                return []
            case CallState.TERMINATING | CallState.TERMINATED:
                return []
            case _:
                assert_never(state)

    def reoffer(self, call_id: str, *, sdp: bytes, now: float) -> None:
        """Send a re-INVITE with a new offer (hold: a=sendonly/inactive; resume: a=sendrecv)."""
        self._reoffers.reoffer(self._calls.require(call_id), sdp=sdp, now=now)

    def answer_reoffer(self, call_id: str, *, sdp: bytes | None, now: float) -> None:
        self._reoffers.answer(self._calls.require(call_id), sdp=sdp, now=now)

    def reject_reoffer(self, call_id: str, *, status: int = 488, now: float) -> None:
        self._reoffers.reject(self._calls.require(call_id), status=status, now=now)

    def refer(self, call_id: str, target: SipUri, now: float) -> None:
        """Blind transfer as transferor: REFER the peer to ``target``."""
        self._transfer.refer(self._calls.require(call_id), target, now)

    def notify_transfer(self, call_id: str, *, status: int, reason: str, now: float) -> None:
        """As transferee, tell the transferor how the new call goes (RFC 3515 §2.4.5)."""
        call = self._calls.require(call_id)
        self._transfer.notify_transfer(call, status=status, reason=reason, now=now)

    def send_dtmf_info(self, call_id: str, digit: str, *, duration_ms: int, now: float) -> None:
        """Send one digit as INFO application/dtmf-relay: the fallback when the peer did not
        offer RFC 4733 telephone-event."""
        self._info.send(self._calls.require(call_id), digit, duration_ms=duration_ms, now=now)

    def forget_ended_calls(self) -> None:
        """Drop terminated calls whose transactions are gone (bounded memory in long sessions)."""
        core = self._core
        for call in self._calls:
            if call.state is CallState.TERMINATED and not core.has_live_transactions(call.call_id):
                self._calls.remove(call)

    # ------------------------------------------------------------------ incoming requests
    def _receive_request(self, req: SipRequest, source: Address, now: float) -> list[ev.Event]:
        core = self._core
        if req.version.upper() != "SIP/2.0":
            self._reply_stateless(req, source, 505)
            return []
        req = stamp_via(req, source)
        reply_to = response_address(req.top_via, source)
        if req.method == "ACK":
            return self._receive_ack(req, now)
        key = server_key(req)
        existing = core.server_tx.get(key)
        if existing is not None:
            return core.server_events(key, existing.receive_request(req, now), now)
        if req.method == "CANCEL":
            return self._receive_cancel(req, reply_to, now)
        tx = ServerTransaction(req, reply_to, timers=core.timers, now=now)
        core.add_server(key, tx)
        return self._dispatch(req, tx, key, now)

    def _dispatch(
        self, req: SipRequest, tx: ServerTransaction, key: ServerKey, now: float
    ) -> list[ev.Event]:
        core, methods = self._core, self._methods
        mf = req.max_forwards
        if mf is not None and mf <= 0 and req.method != "OPTIONS":
            return core.reply(tx, req, 483, now)
        has_tag = bool(req.to.tag)
        spec = methods.get(req.method)
        if spec is not None and spec.creates_dialog and not has_tag:
            contacts = req.contacts
            if len(contacts) != 1 or not isinstance(contacts[0].uri, SipUri):
                reason = "Missing Contact" if not contacts else "Bad Contact"
                return core.reply(tx, req, 400, now, reason=reason)
        must_be_ours = spec is not None and spec.addressed_to_us and not has_tag
        if must_be_ours and core.account_for_request(req) is None:
            # A scanner or a misrouted call: not one of our users, not a contact we registered.
            return core.reply(tx, req, 404, now)
        if spec is None or (has_tag and spec.in_dialog is None):
            return core.reply(tx, req, 405, now, extra=[("Allow", methods.allow)])
        unsupported = [tag for tag in req.headers.get_all("Require") if not methods.supports(tag)]
        if unsupported and req.method not in ("CANCEL", "ACK"):  # §8.2.2.3
            return core.reply(tx, req, 420, now, extra=[("Unsupported", ", ".join(unsupported))])
        if spec.accept and req.body and req.content_type not in (None, *spec.accept):
            return core.reply(tx, req, 415, now, extra=[("Accept", ", ".join(spec.accept))])
        if not has_tag:
            if spec.out_of_dialog is None:
                return core.reply(tx, req, 481, now)
            return spec.out_of_dialog(req, tx, now)
        call = self._calls.by_dialog(req.call_id, req.to.tag or "", req.from_.tag or "")
        if call is None and spec.other_dialog is not None:
            return spec.other_dialog(req, tx, now)
        if call is None or call.dialog is None or spec.in_dialog is None:
            return core.reply(tx, req, 481, now)
        try:
            call.dialog.receive_request(req)
        except RemoteProtocolError as exc:
            return core.reply(tx, req, exc.status_hint, now)
        core.own_server_transaction(key, call)
        return spec.in_dialog(req, tx, call, now)

    def _on_options(self, req: SipRequest, tx: ServerTransaction, now: float) -> list[ev.Event]:
        """§11.2: what we can do."""
        extra = [("Allow", self._methods.allow), ("Accept", "application/sdp")]
        return self._core.reply(tx, req, 200, now, extra=[*extra, ("Accept-Language", "en")])

    def _receive_cancel(self, req: SipRequest, reply_to: Address, now: float) -> list[ev.Event]:
        """§9.2: CANCEL matches the INVITE server transaction by branch; 481 when it matches none."""
        core = self._core
        invite_key = (*server_key(req)[:2], "INVITE")
        call_id = core.server_owner.get(invite_key)
        call = self._calls.get(call_id) if call_id else None
        resp = core.response(req, 200 if call is not None else 481)
        cancel_tx = ServerTransaction(req, reply_to, timers=core.timers, now=now)
        core.add_server(server_key(req), cancel_tx)
        core.send_response(cancel_tx, resp, now)
        if call is None:
            return []
        return self._invite_server.cancelled(call, now)

    def _receive_ack(self, req: SipRequest, now: float) -> list[ev.Event]:
        core = self._core
        key = server_key(req)
        tx = core.server_tx.get(key)
        if tx is not None:  # ACK for a non-2xx final: absorbed by its transaction (§17.2.1)
            return core.server_events(key, tx.receive_request(req, now), now)
        call = self._calls.by_dialog(req.call_id, req.to.tag or "", req.from_.tag or "")
        if call is None:
            logger.debug("ACK matching no dialog dropped (Call-ID %s)", req.call_id)
            return []
        # The ACK for a 2xx has its own branch (§17.1.1.3): the INVITE's or the re-INVITE's.
        for target in (call.invite_server_tx, call.reoffer.server_tx):
            if target is not None and target.key in core.server_tx and target.matches(req):
                return core.server_events(target.key, target.receive_request(req, now), now)
        return []

    def _receive_response(self, resp: SipResponse, now: float) -> list[ev.Event]:
        core = self._core
        via = resp.top_via
        key = (via.branch or "", resp.cseq.method.upper())
        tx = core.client_tx.get(key)
        if tx is None:
            self._invite_client.response_without_transaction(resp)
            return []
        return core.client_events(key, tx, tx.receive_response(resp, now), now)

    def _reply_stateless(self, req: SipRequest, source: Address, status: int) -> None:
        resp = self._core.response(stamp_via(req, source), status)
        dest = response_address(req.top_via, source)
        self._core.resend((self._core.serialize(resp, dest), dest))
