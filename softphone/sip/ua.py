"""The SIP user agent core (RFC 3261 §8, §17-§18; RFC 3581), sans-IO.

Bytes and ``now`` go in (``receive_message``, ``handle_timer``, the action methods), events and
bytes to send come out (``messages_to_send``). Transactions (sip/transaction.py) handle
retransmissions; sip/plumbing.py keeps the transactions, their timers and the deadlines, and
builds what is sent. This module is the transaction user's hub: the accounts, and the dispatch of
incoming requests to the parts that handle them:

    registration.py   REGISTER, refresh, NAT address learning, unregister (§10)
    invite_client.py  outgoing calls: INVITE, CANCEL, 3xx, credentials (§13.2, §9.1)
    invite_server.py  incoming calls: ring, answer, reject, CANCEL received (§13.3, §9.2)
    reoffer.py        re-INVITE both ways, hold/resume, glare (§14)
    prack.py          reliable provisional responses and PRACK, both sides (RFC 3262)
    update.py         UPDATE received (RFC 3311)
    session_refresh.py  session timers: negotiate, refresh, expire (RFC 4028)
    bye.py            BYE both ways (§15)
    transfer.py       REFER/NOTIFY (RFC 3515), blind or attended (Replaces: replaces.py)
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
must be for one of our users/contacts and is not), method (405), Require (420), Replaces outside
an INVITE (400, RFC 3891 §3), content (415), dialog (481).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, assert_never

from softphone.sip import events as ev
from softphone.sip.account import AccountChanges, AccountConfig, accepts_source
from softphone.sip.address import Address
from softphone.sip.bye import Bye
from softphone.sip.call import CallState
from softphone.sip.compose import answer_to_garbage, response_address, stamp_via
from softphone.sip.context import MethodTable, ServerKey, UaContext
from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError, SipError
from softphone.sip.info import DtmfInfo
from softphone.sip.invite_client import InviteClient
from softphone.sip.invite_server import InviteServer
from softphone.sip.message import SipRequest, SipResponse, parse_message
from softphone.sip.messaging import Messaging
from softphone.sip.notify import NotifyRouter
from softphone.sip.plumbing import Plumbing, redact
from softphone.sip.prack import Prack
from softphone.sip.publication import Publications
from softphone.sip.registration import Registrations, RegState
from softphone.sip.reoffer import Reoffers
from softphone.sip.session_refresh import SessionRefresh
from softphone.sip.subscription import Subscriptions
from softphone.sip.timers import TimerConfig
from softphone.sip.transaction import ServerTransaction, server_key
from softphone.sip.transfer import Transfer
from softphone.sip.update import Update
from softphone.sip.uri import SipUri, Uri

__all__ = ["Part", "UserAgent", "redact"]

logger = logging.getLogger(__name__)
wire = logging.getLogger("softphone.wire")


class Part(Protocol):
    """A part of the user agent: built with a UaContext, it installs the methods it answers."""

    def install(self, methods: MethodTable) -> None: ...


P = TypeVar("P", bound=Part)


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
        self._core = Plumbing(
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
        self._prack = Prack(core)
        self._session = SessionRefresh(core, self._bye)
        self._update = Update(core, self._session)
        self._invite_client = InviteClient(core, self._bye, self._prack, self._session)
        self._invite_server = InviteServer(core, self._bye, self._prack, self._session)
        self._reoffers = Reoffers(core, self._bye, self._session)
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
        self._prack.install(self._methods)
        self._update.install(self._methods)
        self._session.install(self._methods)
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

    def replace_listener(self, address: Address) -> None:
        """A listener bound later takes the place of what was advertised for its transport
        (TLS named on the UDP port while client-only, then a TLS listener of its own)."""
        self._core.listeners[address.transport] = address

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

    def session_interval(self, call_id: str) -> int | None:
        """The session timer's interval agreed for the call (RFC 4028), None without one."""
        call = self._calls.get(call_id)
        return call.session.interval_s if call is not None and call.session.running else None

    def registration_state(self, account: str) -> RegState:
        return self._registrations.state(account)

    def registered_contact(self, account: str) -> SipUri | None:
        """The Contact registered for ``account``: our public address once the registrar told
        us where it sees us (RFC 3581)."""
        return self._registrations.contact(account)

    def registration_hop(self, account: str) -> Address | None:
        """The server ``account`` registers with now: its first one, or the one it failed over
        to (RFC 3263 §4.3)."""
        return self._registrations.hop(account)

    def active_calls(self) -> list[str]:
        return [c.call_id for c in self._calls.live()]

    # ------------------------------------------------------------------ the SipCore protocol
    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        return self._core.messages_to_send()

    def get_timer(self) -> float | None:
        return self._core.get_timer()

    def handle_timer(self, now: float) -> list[ev.Event]:
        return self._core.handle_timer(now)

    def transport_error(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        return self._core.transport_error(dest, reason, now)

    def flow_closed(self, dest: Address, reason: str, now: float) -> list[ev.Event]:
        """The TCP/TLS connection to ``dest`` closed (``reason``): requests on it still waiting
        for their final response fail now (plumbing.py ``flow_failed``), and registrations on it
        register again over a new one (RFC 5626 §4.4; sip/registration.py)."""
        logger.info("connection to %s closed: %s", dest, reason)
        events = self._core.flow_failed(dest, reason, now)
        self._registrations.flow_closed(dest, now)
        return events

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
        extra: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Start an outgoing call. Returns its Call-ID. ``dest`` overrides the next hop (otherwise
        the account's outbound proxy, or the target itself when its host is an IP literal).
        ``extra``: more headers (Replaces, Referred-By for a transfer)."""
        return self._invite_client.invite(
            self.account(account), target, sdp=sdp, now=now, dest=dest, extra=extra
        )

    def cancel(self, call_id: str, now: float) -> None:
        """§9.1: CANCEL is sent once a provisional response has arrived; before that it waits."""
        self._invite_client.cancel(self._calls.require(call_id), now)

    def ring(self, call_id: str, now: float, *, status: int = 180) -> None:
        self._invite_server.ring(self._calls.require(call_id), now, status=status)

    def answer(self, call_id: str, *, sdp: bytes | None, now: float) -> None:
        self._invite_server.answer(self._calls.require(call_id), sdp=sdp, now=now)

    def reject(
        self,
        call_id: str,
        *,
        status: int = 486,
        now: float,
        reason: str | None = None,
        warning: tuple[int, str] | None = None,
        why: str | None = None,
    ) -> list[ev.Event]:
        """Reject an incoming call; ``warning``: (warn-code, text) for a Warning header
        (RFC 3261 §20.43), e.g. why its SDP offer was not acceptable; ``why``: the call's end
        in words (default: the status explained)."""
        call = self._calls.require(call_id)
        return self._invite_server.reject(
            call, status=status, now=now, reason=reason, warning=warning, why=why
        )

    def redirect(
        self,
        call_id: str,
        target: Uri,
        *,
        now: float,
        diversion: str | None = None,
        why: str | None = None,
    ) -> list[ev.Event]:
        """Forward an incoming call: 302 with ``target`` in Contact (RFC 3261 §8.3)."""
        call = self._calls.require(call_id)
        return self._invite_server.redirect(call, target, now=now, diversion=diversion, why=why)

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
        call = self._calls.require(call_id)
        if self._update.pending(call):  # the offer came in an UPDATE (RFC 3311)
            self._update.answer(call, sdp=sdp, now=now)
        else:
            self._reoffers.answer(call, sdp=sdp, now=now)

    def reject_reoffer(
        self,
        call_id: str,
        *,
        status: int = 488,
        now: float,
        warning: tuple[int, str] | None = None,
    ) -> None:
        call = self._calls.require(call_id)
        part = self._update if self._update.pending(call) else self._reoffers
        part.reject(call, status=status, now=now, warning=warning)

    def refer(self, call_id: str, target: SipUri, now: float) -> None:
        """Blind transfer as transferor: REFER the peer to ``target``."""
        self._transfer.refer(self._calls.require(call_id), target, now)

    def refer_replacing(self, call_id: str, other_call_id: str, now: float) -> None:
        """Attended transfer as transferor: REFER the peer of ``call_id`` to the peer of
        ``other_call_id``, whose dialog with us the new call replaces (RFC 5589 §7.1)."""
        call, other = self._calls.require(call_id), self._calls.require(other_call_id)
        self._transfer.refer_replacing(call, other, now)

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
        return self._dispatch(req, tx, key, now, source)

    def _dispatch(
        self, req: SipRequest, tx: ServerTransaction, key: ServerKey, now: float, source: Address
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
        if not has_tag and not accepts_source(
            self._accounts.values(), core.account_for_request(req), source
        ):
            # only_from_proxy: a request that bypassed the account's proxy rings nothing.
            return core.reply(tx, req, 403, now)
        must_be_ours = spec is not None and spec.addressed_to_us and not has_tag
        if must_be_ours and core.account_for_request(req) is None:
            # A scanner or a misrouted call: not one of our users, not a contact we registered.
            return core.reply(tx, req, 404, now)
        if spec is None or (has_tag and spec.in_dialog is None):
            return core.reply(tx, req, 405, now, extra=[("Allow", methods.allow)])
        unsupported = [tag for tag in req.headers.get_all("Require") if not methods.supports(tag)]
        if unsupported and req.method not in ("CANCEL", "ACK"):  # §8.2.2.3
            return core.reply(tx, req, 420, now, extra=[("Unsupported", ", ".join(unsupported))])
        if "Replaces" in req.headers and req.method != "INVITE":  # RFC 3891 §3
            return core.reply(tx, req, 400, now, reason="Replaces is only for INVITE")
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
        extra = [
            ("Allow", self._methods.allow),
            ("Supported", self._methods.supported),
            ("Accept", "application/sdp"),
        ]
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
