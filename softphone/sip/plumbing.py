"""The user agent's plumbing (RFC 3261 §17, §18), sans-IO: transactions, timers, sending.

:class:`Plumbing` is the :class:`~softphone.sip.context.UaContext` every part of the user agent
(sip/ua.py) is built with: it starts client transactions and keeps their response handlers,
keeps the server transactions and which call owns them, the deadlines the parts set (refreshes,
glare), the outbox, and builds responses, Via and Contact from the listening addresses.

What makes a datagram cost the same with 10 or 10,000 transactions alive: only the transactions
an input touched are drained for output, and one heap per kind of owner (:class:`TimerHeap`)
holds every timer and deadline, so finding the next one is not a walk over all of them.

The wire log (``softphone.wire`` at DEBUG) shows every message sent, credentials redacted
(:func:`redact`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, account_for_uri
from softphone.sip.address import Address, TransportName
from softphone.sip.authentication import Authenticator
from softphone.sip.call import Call, Calls
from softphone.sip.compose import build_response, reply_transport, secure_request
from softphone.sip.context import (
    Challenged,
    DeadlineHandler,
    MethodTable,
    ResponseHandler,
    ServerKey,
    ignore_response,
)
from softphone.sip.errors import LocalProtocolError
from softphone.sip.failover import TargetHealth
from softphone.sip.headers import Via
from softphone.sip.message import SipMessage, SipRequest, SipResponse
from softphone.sip.timers import TimerConfig
from softphone.sip.transaction import (
    AWAITING_FINAL,
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

__all__ = ["Plumbing", "TimerHeap", "redact"]

wire = logging.getLogger("softphone.wire")

_REDACT = re.compile(rb"(?im)^((?:proxy-)?authorization[ \t]*:).*$")
# RFC 4568 §9.1: the SRTP master key and salt follow "inline:" in an a=crypto line.
_SDES_KEY = re.compile(rb"(?i)(inline:)[^\s|;]+")


def redact(data: bytes) -> bytes:
    """The wire log never shows credentials: (Proxy-)Authorization values are replaced, and so
    are the SRTP keys of a=crypto lines (whoever reads a log could decrypt the call)."""
    return _SDES_KEY.sub(rb"\1<redacted>", _REDACT.sub(rb"\1 <redacted>", data))


K = TypeVar("K")


class TimerHeap(Generic[K]):
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


class Plumbing:
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
        self._health = TargetHealth()
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
        self._client_timers: TimerHeap[tuple[str, str]] = TimerHeap(
            lambda key, at: (tx := self.client_tx.get(key)) is not None and tx.get_timer() == at
        )
        self._server_timers: TimerHeap[ServerKey] = TimerHeap(
            lambda key, at: (tx := self.server_tx.get(key)) is not None and tx.get_timer() == at
        )
        self._deadline_timers: TimerHeap[tuple[str, str]] = TimerHeap(
            lambda key, at: (entry := self.deadlines.get(key)) is not None and entry[0] == at
        )
        self._live_calls: Counter[str] = Counter()  # Call-ID -> transactions alive

    # --- UaContext --------------------------------------------------------------------------------
    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def health(self) -> TargetHealth:
        return self._health

    @property
    def timers(self) -> TimerConfig:
        return self._timers

    @property
    def calls(self) -> Calls:
        return self._calls

    @property
    def allow(self) -> str:
        return self._methods.allow

    @property
    def supported(self) -> str:
        return self._methods.supported

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
            contact=(
                None
                if contact is None
                else self.contact_uri(contact, reply_transport(req), secure=secure_request(req))
            ),
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

    def contact_uri(
        self, account: AccountConfig, transport: TransportName, *, secure: bool = False
    ) -> SipUri:
        registered = self._registered_contact(account.name)
        if secure and "tls" in self.listeners:
            # RFC 3261 §8.1.1.8 and §12.1.1: a SIPS request or dialog gets a SIPS Contact, our
            # TLS address; RFC 5630 §4.1: without transport=tls, which SIPS already means.
            base = (
                registered
                if registered is not None and registered.transport == "tls"
                else self._tls_contact(account)
            )
            return base.replace(scheme="sips").without_param("transport")
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

    def _tls_contact(self, account: AccountConfig) -> SipUri:
        local = self.listeners["tls"]
        return SipUri(scheme="sip", user=account.aor.user, host=local.host, port=local.port)

    def account_for_request(self, req: SipRequest) -> AccountConfig | None:
        return account_for_uri(self._accounts.values(), req.uri, self._registered_contact)

    def set_deadline(self, key: tuple[str, str], at: float, fire: DeadlineHandler) -> None:
        self.deadlines[key] = (at, fire)
        self._deadline_timers.push(at, key)

    def clear_deadline(self, key: tuple[str, str]) -> None:
        self.deadlines.pop(key, None)

    def deadline_of(self, key: tuple[str, str]) -> float | None:
        entry = self.deadlines.get(key)
        return entry[0] if entry is not None else None

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

    def flow_failed(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        """The connection to ``dest`` is gone: our requests on it that still wait for a final
        response can no longer get one (§18.1.2: it comes back over the same connection), so
        they fail as a transport error (§17.1.4) now, not when Timer B or F fires. Those that
        have their final response, and the server side, are left to their timers."""
        events: list[ev.Event] = []
        for ckey, ctx in list(self.client_tx.items()):
            if ctx.dest == dest and ctx.state in AWAITING_FINAL:
                events += self.client_events(ckey, ctx, ctx.transport_error(reason, now), now)
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
        # RFC 3581 on every transport: the registrar's received/rport is how we learn where a
        # NAT puts us, for our Contact (sip/registration.py) and our media (phone/nat.py).
        params = (("branch", "z9hG4bK" + self.token(16)), ("rport", None))
        return Via(transport=transport.upper(), host=local.host, port=local.port, params=params)

    def _local(self, transport: TransportName) -> Address:
        for name in (transport, "tcp", "udp", "tls"):
            local = self.listeners.get(name)
            if local is not None:
                return local
        raise LocalProtocolError("no listening address: call add_listener() first")
