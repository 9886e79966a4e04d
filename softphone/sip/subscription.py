"""Subscriptions (RFC 6665), the subscriber's side, sans-IO: SUBSCRIBE, refresh, unsubscribe,
and the NOTIFYs of the event packages we watch.

:meth:`Subscriptions.subscribe` starts one subscription of an account to a resource in one of
:data:`PACKAGES`: ``presence`` (RFC 3856, PIDF), ``dialog`` (RFC 4235, the busy lamp) and
``message-summary`` (RFC 3842, message waiting). Each is a :class:`Subscription` whose life is
the table :data:`SUB_TRANSITIONS` (sip/subscription_state.py); what happens on entering a state (a SUBSCRIBE going out, a
deadline armed) is in :meth:`Subscriptions._go`, beside it:

- **subscribing**: an initial SUBSCRIBE of a new dialog (Call-ID, From tag) is out, or was
  accepted and the first NOTIFY is awaited (Timer N, 64*T1, §4.1.2.4). A NOTIFY may come before
  the 2xx; it makes the dialog then.
- **pending** / **active**: as the last NOTIFY's Subscription-State said. A refresh (in the
  dialog, same Expires asked) goes out half way through short subscriptions and a minute before
  the end of long ones (§4.1.2.2). A 481 to it means the notifier lost us (a restart): a new
  subscription starts at once (§4.1.2.2).
- **waiting**: the subscription failed (no answer, 408, 5xx, 480...) or the notifier ended it
  with ``probation``, an unknown reason or none; a new one starts after ``retry-after`` or a
  back-off of 30 s doubling to 30 min (§4.1.3).
- **terminated**: the end. Refused (403, 404, 489, 603...), ended with ``rejected``,
  ``noresource``, ``giveup`` or ``invariant``, or unsubscribed. ``deactivated`` and ``timeout``
  start a new subscription at once instead (§4.1.3); three such restarts in a row without the
  subscription becoming active wait like a failure, so a notifier that ends every subscription
  at once is not hammered.
- **unsubscribing**: SUBSCRIBE with Expires: 0 is out (§4.1.2.3); the final NOTIFY, a failure, or
  Timer N after the 2xx ends it.

:meth:`Subscriptions.restart` starts an account's subscriptions again (new dialogs): the phone
calls it when a registration succeeds after a failure, since a registrar that restarted lost
its subscriptions as well as its bindings.

NOTIFYs (through sip/notify.py): one of our dialogs is matched by Call-ID, To tag (our From tag)
and, once known, From tag (§4.1.3); anything else is answered 481. Checked before anything is
changed, so that a bad NOTIFY changes nothing: ``Subscription-State`` present (400), the body's
type one the package takes (415 with Accept), the body parses (400 with the parser's reason),
the CSeq is in order (500). A ``message-summary`` NOTIFY outside any subscription is taken when
it is addressed to one of our accounts: PBXs send message waiting unsolicited.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, address_for_uri, hop_for
from softphone.sip.address import Address
from softphone.sip.context import MethodTable, UaContext
from softphone.sip.dialog import Dialog, DialogState
from softphone.sip.dialog_info import Applied, DialogInfo, DialogView
from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.media_type import MediaType
from softphone.sip.message import Headers, SipMessage, SipRequest, SipResponse
from softphone.sip.notify import parse_event
from softphone.sip.status import explain
from softphone.sip.subscription_state import (
    DEFAULT_EXPIRES,
    PACKAGES,
    REFUSALS,
    SUB_TRANSITIONS,
    Document,
    EventPackage,
    SubInput,
    Subscription,
    SubscriptionState,
    SubState,
    number,
    refresh_delay,
    retry_delay,
)
from softphone.sip.transaction import ClientTransaction, ServerTransaction
from softphone.sip.uri import SipUri

__all__ = ["Subscriptions"]

logger = logging.getLogger(__name__)

S, SI = SubState, SubInput
_LIVE: Final = (S.PENDING, S.ACTIVE)
# Inputs after which SUBSCRIBING means a new dialog's SUBSCRIBE goes out.
_STARTS_OVER: Final = frozenset({SI.GONE, SI.TERMINATED_RETRY_NOW, SI.RETRY_DUE, SI.RESTART})


class Subscriptions:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        self._subs: dict[str, Subscription] = {}
        self._by_dialog: dict[tuple[str, str], str] = {}  # (Call-ID, our tag) -> id

    def install(self, methods: MethodTable) -> None:
        for package in PACKAGES.values():
            methods.register_event_package(
                package.name, elsewhere=partial(self._on_notify, package)
            )

    # --- queries ----------------------------------------------------------------------------
    def state(self, subscription_id: str) -> SubState:
        sub = self._subs.get(subscription_id)
        return sub.state if sub is not None else SubState.TERMINATED

    def of_account(self, account: str) -> list[str]:
        return [s.id for s in self._subs.values() if s.account.name == account]

    @property
    def unsubscribing(self) -> int:
        """Subscriptions whose removal is still waiting for its answer."""
        return sum(s.state is SubState.UNSUBSCRIBING for s in self._subs.values())

    # --- actions ----------------------------------------------------------------------------
    def subscribe(
        self,
        acct: AccountConfig,
        target: SipUri,
        package: str,
        *,
        now: float,
        expires: int = DEFAULT_EXPIRES,
        dest: Address | None = None,
    ) -> tuple[str, list[ev.Event]]:
        """Subscribe ``acct`` to ``target``'s ``package``; returns the subscription's id and the
        first SubscriptionChanged. ``dest`` overrides the next hop (otherwise the account's
        outbound proxy, or the target when its host is an IP literal)."""
        spec = PACKAGES.get(package)
        if spec is None:
            raise LocalProtocolError(f"unknown event package {package!r} ({', '.join(PACKAGES)})")
        if expires <= 0:
            raise LocalProtocolError("a subscription needs a positive Expires")
        hop = dest or acct.outbound or address_for_uri(target, acct.transport)
        while (sub_id := "sub-" + self._ctx.token(12)) in self._subs:
            pass
        sub = Subscription(
            id=sub_id, account=acct, target=target, package=spec, expires=expires, hop=hop
        )
        self._subs[sub_id] = sub
        self._send_initial(sub, now)
        return sub_id, [self._changed(sub)]

    def unsubscribe(self, subscription_id: str, now: float) -> list[ev.Event]:
        """Remove the subscription (SUBSCRIBE with Expires: 0 when one is established)."""
        sub = self._subs.get(subscription_id)
        if sub is None:
            return []
        return self._go(sub, SI.UNSUBSCRIBE, now)

    def restart(self, account: str, now: float) -> list[ev.Event]:
        """Start ``account``'s subscriptions again, each with a new dialog (module docstring)."""
        events: list[ev.Event] = []
        for sub in list(self._subs.values()):
            if sub.account.name == account and (sub.state, SI.RESTART) in SUB_TRANSITIONS:
                sub.failures = sub.quick_restarts = 0
                events += self._go(sub, SI.RESTART, now)
        return events

    # --- the table and what entering a state does ---------------------------------------------
    def _go(
        self,
        sub: Subscription,
        inp: SubInput,
        now: float,
        *,
        reason: str | None = None,
        retry_after: int | None = None,
        expires: int | None = None,
    ) -> list[ev.Event]:
        before = sub.state
        state = sub.apply(inp)
        ctx, key = self._ctx, ("subscription", sub.id)
        if expires is not None:
            sub.expires_at = now + expires
        retry_in: float | None = None
        if state is S.SUBSCRIBING:
            if inp in _STARTS_OVER:
                sub.quick_restarts += inp is SI.TERMINATED_RETRY_NOW
                self._send_initial(sub, now)
            else:  # accepted: the first NOTIFY must follow (§4.1.2.4)
                ctx.set_deadline(key, now + ctx.timers.timeout, partial(self._due, sub.id))
        elif state in _LIVE:
            if inp is SI.REFRESH_DUE:
                self._send(sub, sub.expires, now)
            elif sub.expires_at is not None:
                left = max(int(sub.expires_at - now), 0)
                ctx.set_deadline(key, now + refresh_delay(left), partial(self._due, sub.id))
            if state is S.ACTIVE:
                sub.failures = sub.quick_restarts = 0
        elif state is S.WAITING:
            sub.failures += 1
            retry_in = float(retry_after) if retry_after is not None else retry_delay(sub.failures)
            self._forget_dialog(sub)
            ctx.set_deadline(key, now + retry_in, partial(self._due, sub.id))
        elif state is S.UNSUBSCRIBING:
            if inp is SI.UNSUBSCRIBE and before is not S.UNSUBSCRIBING:
                ctx.clear_deadline(key)
                self._send(sub, 0, now)
            elif inp is SI.ACCEPTED:
                ctx.set_deadline(key, now + ctx.timers.timeout, partial(self._due, sub.id))
        elif state is S.TERMINATED:
            ctx.clear_deadline(key)
            self._forget_dialog(sub)
            self._subs.pop(sub.id, None)
        if state is before and inp not in _STARTS_OVER:
            return []
        return [self._changed(sub, reason=reason, retry_in_s=retry_in)]

    def _due(self, subscription_id: str, now: float) -> list[ev.Event]:
        sub = self._subs.get(subscription_id)
        if sub is None:
            return []
        inp = {
            S.SUBSCRIBING: SI.TIMER_N,
            S.UNSUBSCRIBING: SI.TIMER_N,
            S.PENDING: SI.REFRESH_DUE,
            S.ACTIVE: SI.REFRESH_DUE,
            S.WAITING: SI.RETRY_DUE,
        }.get(sub.state)
        if inp is None:
            return []
        reason = "no NOTIFY came after the 2xx" if inp is SI.TIMER_N else None
        return self._go(sub, inp, now, reason=reason)

    def _changed(
        self, sub: Subscription, *, reason: str | None = None, retry_in_s: float | None = None
    ) -> ev.SubscriptionChanged:
        return ev.SubscriptionChanged(
            subscription_id=sub.id,
            account=sub.account.name,
            target=str(sub.target),
            package=sub.package.name,
            state=sub.state.name.lower(),
            reason=reason,
            retry_in_s=retry_in_s,
        )

    # --- requests ---------------------------------------------------------------------------
    def _send_initial(self, sub: Subscription, now: float) -> None:
        """A SUBSCRIBE that starts a new dialog (§4.1.2.1)."""
        ctx, acct = self._ctx, sub.account
        self._forget_dialog(sub)
        sub.call_id, sub.local_tag = ctx.new_call_id(), ctx.token()
        sub.cseq, sub.auth_attempts, sub.dialog = ctx.rng.randint(1, 10000), 0, None
        sub.view, sub.expires_at = DialogView(), None
        self._by_dialog[(sub.call_id, sub.local_tag)] = sub.id
        headers = Headers()
        sender = NameAddr(uri=acct.aor, display_name=acct.display_name)
        headers.add("From", str(sender.with_param("tag", sub.local_tag)))
        headers.add("To", str(NameAddr(uri=sub.target)))
        headers.add("Call-ID", sub.call_id)
        headers.add("CSeq", f"{sub.cseq} SUBSCRIBE")
        request = SipRequest(method="SUBSCRIBE", uri=sub.target, headers=headers)
        self._finish(sub, request, sub.hop, sub.expires, now)
        sub.request = request

    def _send(self, sub: Subscription, expires: int, now: float) -> None:
        """A refresh (``expires`` > 0) or the removal (0) inside the dialog (§4.1.2.2-3)."""
        if sub.dialog is None:
            raise LocalProtocolError(f"subscription {sub.id} has no dialog to send in")
        request = sub.dialog.build_request("SUBSCRIBE")
        sub.cseq, sub.auth_attempts = request.cseq.seq, 0
        try:
            hop = hop_for(sub.dialog, sub.account)
        except LocalProtocolError:
            hop = sub.hop
        self._finish(sub, request, hop, expires, now)

    def _finish(
        self, sub: Subscription, request: SipRequest, hop: Address, expires: int, now: float
    ) -> None:
        contact = self._ctx.contact_uri(sub.account, hop.transport)
        request.headers.add("Contact", str(NameAddr(uri=contact)))
        request.headers.add("Event", sub.package.name)
        request.headers.add("Accept", ", ".join(sub.package.accept))
        request.headers.add("Expires", str(expires))
        self._ctx.start_client(request, hop, sub.account, partial(self._on_response, sub.id), now)

    def _forget_dialog(self, sub: Subscription) -> None:
        """Leave the current dialog: its NOTIFYs get 481, answers to its SUBSCRIBEs are stale."""
        self._by_dialog.pop((sub.call_id, sub.local_tag), None)
        sub.dialog = None
        sub.cseq = -1

    # --- responses --------------------------------------------------------------------------
    def _on_response(
        self,
        subscription_id: str,
        tx: ClientTransaction,
        resp: SipResponse | None,
        status: int,
        reason: str,
        now: float,
    ) -> list[ev.Event]:
        sub = self._subs.get(subscription_id)
        request = tx.request
        if sub is None or (resp is not None and status < 200):
            return []
        if request.call_id != sub.call_id or request.cseq.seq != sub.cseq:
            return []  # an answer to a SUBSCRIBE of a dialog we have left, or one superseded
        asked = _int_header(request, "Expires") or 0
        if resp is not None and status in (401, 407) and self._answer_challenge(sub, tx, resp, now):
            return []
        if resp is not None and status == 423 and asked:
            floor = _int_header(resp, "Min-Expires")
            if floor and floor > asked:  # RFC 6665 §4.1.2.1 (as RFC 3261 §10.2.8)
                sub.expires = floor
                if sub.dialog is None:
                    self._send_initial(sub, now)
                else:
                    self._send(sub, floor, now)
                return []
        if resp is not None and 200 <= status < 300:
            return self._accepted(sub, tx, resp, now, asked)
        words = explain(status, reason) if resp is not None else reason
        if resp is not None and status == 481:
            return self._go(sub, SI.GONE, now, reason=words)
        inp = SI.REFUSED if resp is not None and status in REFUSALS else SI.FAILED
        return self._go(sub, inp, now, reason=words)

    def _accepted(
        self, sub: Subscription, tx: ClientTransaction, resp: SipResponse, now: float, asked: int
    ) -> list[ev.Event]:
        if sub.dialog is None and sub.state is not S.UNSUBSCRIBING:
            try:
                sub.dialog = Dialog.from_uac(tx.request, resp)
            except RemoteProtocolError as exc:
                return self._go(sub, SI.FAILED, now, reason=f"unusable 2xx: {exc}")
        elif sub.dialog is not None and resp.to.tag == sub.dialog.remote_tag:
            sub.dialog.refresh_target(resp)
        granted = _int_header(resp, "Expires")
        return self._go(sub, SI.ACCEPTED, now, expires=granted if granted is not None else asked)

    def _answer_challenge(
        self, sub: Subscription, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> bool:
        def adopt(request: SipRequest) -> None:
            sub.cseq = request.cseq.seq

        return self._ctx.resend_with_credentials(
            tx,
            resp,
            account=sub.account,
            owner=sub,
            next_cseq=sub.next_cseq,
            handler=partial(self._on_response, sub.id),
            now=now,
            prepare=adopt,
        )

    # --- NOTIFY -----------------------------------------------------------------------------
    def _on_notify(
        self, package: EventPackage, req: SipRequest, tx: ServerTransaction, now: float
    ) -> list[ev.Event]:
        ctx = self._ctx
        sub_id = self._by_dialog.get((req.call_id, req.to.tag or ""))
        sub = self._subs.get(sub_id) if sub_id is not None else None
        if sub is None:
            if package.unsolicited:
                return self._unsolicited(package, req, tx, now)
            return ctx.reply(tx, req, 481, now)
        _, event_id = parse_event(req.headers.get("Event") or "")
        dialog = sub.dialog
        if (
            sub.package is not package
            or event_id is not None
            or (dialog is not None and (req.from_.tag or "") != dialog.remote_tag)
        ):
            return ctx.reply(tx, req, 481, now)
        value = req.headers.get("Subscription-State")
        if value is None:
            return ctx.reply(tx, req, 400, now, reason="Missing Subscription-State")
        substate = SubscriptionState.parse(value)
        document, refusal = self._read_body(package, req)
        if refusal is not None:
            status, words = refusal
            extra = [("Accept", ", ".join(package.accept))] if status == 415 else []
            return ctx.reply(tx, req, status, now, reason=words, extra=extra)
        if dialog is None:
            if req.contacts == [] or not req.from_.tag:
                return ctx.reply(tx, req, 400, now, reason="NOTIFY Without Contact or From Tag")
            dialog = sub.dialog = _dialog_from_notify(sub, req)
        else:
            try:
                dialog.receive_request(req)
            except RemoteProtocolError as exc:
                return ctx.reply(tx, req, exc.status_hint, now, reason=str(exc)[:80])
            dialog.refresh_target(req)
        events = ctx.reply(tx, req, 200, now)
        inp = substate.input(sub.quick_restarts)
        reason = substate.reason if inp not in (SI.NOTIFY_ACTIVE, SI.NOTIFY_PENDING) else None
        changed = self._go(
            sub, inp, now, reason=reason, retry_after=substate.retry_after, expires=substate.expires
        )
        if document is not None or inp is SI.NOTIFY_ACTIVE:
            events += self._document_events(sub, document, now)
        return events + changed

    def _read_body(
        self, package: EventPackage, req: SipRequest
    ) -> tuple[Document | None, tuple[int, str] | None]:
        """The parsed body (None when there is none), or the refusal (status, reason)."""
        if not req.body:
            return None, None
        value = req.headers.get("Content-Type")
        if value is None:
            return None, (400, "Missing Content-Type")
        try:
            media = MediaType.parse(value)
        except ParseError:
            return None, (400, "Bad Content-Type")
        if media.essence not in package.accept:
            return None, (415, "Unsupported Media Type")
        try:
            return package.parse(req.body), None
        except ParseError as exc:
            logger.info("NOTIFY %s refused: %s", package.name, exc)
            return None, (400, _reason_phrase(f"Bad {media.subtype}: {exc}"))

    def _document_events(
        self, sub: Subscription, document: Document | None, now: float
    ) -> list[ev.Event]:
        """What a NOTIFY's body tells (module docstring). A dialog NOTIFY without a body is the
        full state "no dialogs": what Kamailio's presence_dialoginfo sends for an idle party."""
        if document is None and sub.package.name == "dialog":
            sub.view.clear()
            document = DialogInfo(entity=str(sub.target), version=sub.view.version or 0, full=True)
        elif isinstance(document, DialogInfo):
            applied = sub.view.apply(document)
            if applied is Applied.GAP and sub.state in _LIVE and sub.dialog is not None:
                # A partial notification was lost: a refresh brings full state (RFC 4235 §4.1.2).
                self._send(sub, sub.expires, now)
            if applied is not Applied.APPLIED:
                return []
            document = DialogInfo(
                entity=document.entity,
                version=document.version,
                full=True,
                dialogs=sub.view.dialogs,
            )
        return [
            ev.NotificationReceived(
                subscription_id=sub.id,
                account=sub.account.name,
                target=str(sub.target),
                package=sub.package.name,
                document=document,
            )
        ]

    def _unsolicited(
        self, package: EventPackage, req: SipRequest, tx: ServerTransaction, now: float
    ) -> list[ev.Event]:
        acct = self._ctx.account_for_request(req)
        if acct is None:
            return self._ctx.reply(tx, req, 404 if not req.to.tag else 481, now)
        document, refusal = self._read_body(package, req)
        if refusal is not None:
            status, words = refusal
            extra = [("Accept", ", ".join(package.accept))] if status == 415 else []
            return self._ctx.reply(tx, req, status, now, reason=words, extra=extra)
        events = self._ctx.reply(tx, req, 200, now)
        if document is None:
            return events
        notification = ev.NotificationReceived(
            subscription_id=None,
            account=acct.name,
            target=str(acct.aor),
            package=package.name,
            document=document,
        )
        return [*events, notification]


def _dialog_from_notify(sub: Subscription, notify: SipRequest) -> Dialog:
    """§4.1.2.4: a NOTIFY before the 2xx makes the dialog; its Record-Route is the route set,
    as for any request that creates a dialog at its recipient (RFC 3261 §12.1.1)."""
    assert sub.request is not None
    return Dialog(
        call_id=sub.call_id,
        local_tag=sub.local_tag,
        remote_tag=notify.from_.tag or "",
        local_uri=sub.request.from_,
        remote_uri=notify.from_,
        remote_target=notify.contacts[0].uri,
        route_set=list(notify.record_routes),
        local_seq=sub.cseq,
        remote_seq=notify.cseq.seq,
        state=DialogState.CONFIRMED,
    )


def _int_header(msg: SipMessage, name: str) -> int | None:
    return number((msg.headers.get(name) or "").strip() or None)


def _reason_phrase(text: str) -> str:
    """A reason phrase from free text: one line, printable, short."""
    line = "".join(c if c.isprintable() else " " for c in text)
    return line[:100]
