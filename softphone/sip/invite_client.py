"""Outgoing calls: the caller's side of INVITE (RFC 3261 §13.2), sans-IO.

INVITE, provisional responses (early dialogs), the 2xx and its ACK (§13.2.2.4), CANCEL (§9.1),
redirects (§8.1.3.4) and credentials (§22.2). A redirect or a challenge restarts the INVITE: a
new transaction for the same call, through the RESTART input of the call table.

A next hop that answers nothing at all (not even 100 Trying) is told about after
``TimerConfig.silence_notice`` (InviteNotAnswered), long before Timer B gives up.

An INVITE to one of the account's servers that times out, cannot be sent or gets 503 before any
early dialog goes to the next server (RFC 3263 §4.3, sip/failover.py): ServerFailedOver, and a
new transaction through the same RESTART as a redirect.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import (
    AccountConfig,
    address_for_uri,
    hop_for,
    is_ip_literal,
    server_targets,
)
from softphone.sip.address import Address
from softphone.sip.bye import Bye
from softphone.sip.call import Call, CallInput, CallState
from softphone.sip.compose import copy_request, sdp_body
from softphone.sip.context import UaContext, ignore_response
from softphone.sip.dialog import Dialog, DialogInput
from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.failover import fails_over, failure_text, retry_after_s
from softphone.sip.headers import NameAddr
from softphone.sip.message import Headers, SipRequest, SipResponse
from softphone.sip.prack import Prack
from softphone.sip.reliable import PrackClient
from softphone.sip.session_refresh import SessionRefresh
from softphone.sip.status import explain, warning_texts
from softphone.sip.transaction import ClientTransaction
from softphone.sip.uri import SipUri

MAX_REDIRECTS: Final = 5


class InviteClient:
    def __init__(self, ctx: UaContext, bye: Bye, prack: Prack, session: SessionRefresh) -> None:
        self._ctx = ctx
        self._bye = bye
        self._prack = prack  # RFC 3262: PRACK for reliable 1xx
        self._session = session  # RFC 4028: session timers

    def invite(
        self,
        acct: AccountConfig,
        target: SipUri,
        *,
        sdp: bytes | None,
        now: float,
        dest: Address | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Start an outgoing call. Returns its Call-ID. ``dest`` overrides the next hop (otherwise
        the account's outbound proxy, or the target itself when its host is an IP literal).
        ``extra``: more headers, e.g. Replaces and Referred-By for a transfer (RFC 5589 §7.1)."""
        ctx = self._ctx
        hop = (
            dest
            or ctx.health.first(server_targets(acct), now)
            or address_for_uri(target, acct.transport)
        )
        secure = target.scheme == "sips"
        if secure and hop.transport != "tls":
            # RFC 3261 §26.2.2 / RFC 5630 §3.1.1: a SIPS request is sent over TLS on every hop.
            raise LocalProtocolError(
                f"{target} needs TLS all the way, but account {acct.name!r} reaches {hop} over"
                f" {hop.transport.upper()}"
            )
        call_id = ctx.new_call_id()
        local_tag = ctx.token()
        headers = Headers()
        headers.add(
            "From",
            str(
                NameAddr(uri=acct.aor, display_name=acct.display_name).with_param("tag", local_tag)
            ),
        )
        headers.add("To", str(NameAddr(uri=target)))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{ctx.rng.randint(1, 10000)} INVITE")
        headers.add(
            "Contact", str(NameAddr(uri=ctx.contact_uri(acct, hop.transport, secure=secure)))
        )
        headers.add("Allow", ctx.allow)
        # The option tags we understand, less those this account turns off (RFC 3262, 4028).
        off = {
            *(["100rel"] if acct.prack == "off" else []),
            *(["timer"] if not acct.session_expires_s else []),
        }
        supported = [tag for tag in ctx.supported.split(", ") if tag and tag not in off]
        if supported:
            headers.add("Supported", ", ".join(supported))
        for name, value in [
            *self._prack.invite_headers(acct),
            *self._session.invite_headers(acct),
            *extra,
        ]:
            headers.add(name, value)
        if sdp is not None:
            headers.add("Content-Type", "application/sdp")
        request = SipRequest(method="INVITE", uri=target, headers=headers, body=sdp or b"")
        call = Call(
            call_id=call_id,
            account=acct,
            outgoing=True,
            state=CallState.CALLING,
            invite=request,
            dest=hop,
            local_tag=local_tag,
            local_sdp=sdp,
        )
        call.visited.add(str(target))
        ctx.calls.add(call)
        ctx.start_client(request, hop, acct, self._on_response, now)
        self._watch_silence(call_id, hop, now)
        return call_id

    def _watch_silence(self, call_id: str, hop: Address, now: float) -> None:
        self._ctx.set_deadline(
            _silence_key(call_id),
            now + self._ctx.timers.silence_notice,
            partial(self._not_answered, call_id, hop, now),
        )

    def _not_answered(
        self, call_id: str, hop: Address, sent_at: float, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(call_id)
        if call is None or call.state is not CallState.CALLING or call.got_provisional:
            return []
        return [
            ev.InviteNotAnswered(
                call_id=call_id,
                server=hop.host_port,
                transport=hop.transport,
                waited_s=now - sent_at,
                gives_up_in_s=max(0.0, sent_at + self._ctx.timers.timeout - now),
            )
        ]

    def cancel(self, call: Call, now: float) -> None:
        """§9.1: CANCEL is sent once a provisional response has arrived; before that it waits."""
        if call.state not in (CallState.CALLING, CallState.PROCEEDING, CallState.CANCELLING):
            raise LocalProtocolError(f"cannot cancel a call in state {call.state.name}")
        call.apply(CallInput.CANCEL)
        if call.got_provisional:
            self._send_cancel(call, now)

    def response_without_transaction(self, resp: SipResponse) -> None:
        """§17.1.1.2 / RFC 6026: a 2xx retransmission after the transaction is gone: ACK again."""
        call = self._ctx.calls.get(resp.call_id)
        if call is not None and 200 <= resp.status < 300 and resp.cseq.method == "INVITE":
            if call.ack:
                self._ctx.resend(call.ack)

    def _send_cancel(self, call: Call, now: float) -> None:
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
        self._ctx.start_client(cancel, call.dest, call.account, ignore_response, now, keep_via=True)

    def _on_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        self._ctx.clear_deadline(_silence_key(tx.request.call_id))  # the hop answered, or gave up
        call = self._ctx.calls.get(tx.request.call_id)
        if call is None or tx.request.cseq.seq != call.invite.cseq.seq:
            if call is not None and resp is not None and 200 <= status < 300:
                return self._stray_2xx(call, resp, now)
            return []
        if (
            fails_over(resp)
            and call.state in (CallState.CALLING, CallState.PROCEEDING)
            and call.dialog is None
        ):
            moved = self._fail_over(call, tx.dest, resp, reason, now)
            if moved is not None:
                return moved
        if resp is None:  # timeout or transport error
            if call.state in (CallState.CALLING, CallState.PROCEEDING, CallState.CANCELLING):
                call.apply(CallInput.RECV_FAILURE)
                return call.end(
                    ev.CallFailed(
                        call_id=call.call_id, status=status, reason=reason, no_response=True
                    )
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
            return self._provisional(call, resp, now)
        if status < 300:
            return self._answered(call, resp, now)
        return self._failure(call, tx, resp, now)

    def _provisional(self, call: Call, resp: SipResponse, now: float) -> list[ev.Event]:
        first = not call.got_provisional
        call.got_provisional = True
        if resp.to.tag and call.dialog is None and resp.contacts:
            call.dialog = Dialog.from_uac(call.invite, resp)
            self._ctx.calls.index_dialog(call)
        if not self._prack.provisional(call, resp, now):
            return []  # a retransmitted reliable 1xx (PRACKed again) or one out of order
        if call.state is CallState.CANCELLING:
            if first:
                self._send_cancel(call, now)
            return []
        call.apply(CallInput.RECV_1XX)
        return [
            ev.CallProgressed(
                call_id=call.call_id, status=resp.status, reason=resp.reason, sdp=sdp_body(resp)
            )
        ]

    def _answered(self, call: Call, resp: SipResponse, now: float) -> list[ev.Event]:
        tag = resp.to.tag or ""
        if call.answered_tag is not None and tag != call.answered_tag:
            # A second fork answered (§13.2.2.4): ACK it, then BYE it.
            return self._stray_2xx(call, resp, now)
        if call.answered_tag is not None:  # retransmitted 2xx: the ACK got lost
            if call.ack is not None:
                self._ctx.resend(call.ack)
            return []
        call.answered_tag = tag
        if call.dialog is not None and call.dialog.remote_tag == tag:  # the early dialog confirms
            call.dialog.refresh_target(resp)
            call.dialog.route_set = list(reversed(resp.record_routes))
        else:  # no early dialog, or another fork's: this 2xx makes the dialog (§13.2.2.4)
            if call.dialog is not None:
                self._ctx.calls.unindex_dialog(call.dialog)
            call.dialog = Dialog.from_uac(call.invite, resp)
            self._ctx.calls.index_dialog(call)
        call.dialog.apply(DialogInput.RECV_2XX)
        self._send_ack(call, now)
        if call.state is CallState.CANCELLING:
            # CANCEL/200 race (§9.1): the call was answered anyway. ACK it and hang up.
            call.apply(CallInput.RECV_2XX)
            self._bye.send(call, now, why="cancelled here (answered as the CANCEL went out)")
            return []
        call.apply(CallInput.RECV_2XX)
        self._session.confirmed_by(call, resp, now)
        return [ev.CallAnswered(call_id=call.call_id, sdp=sdp_body(resp))]

    def _stray_2xx(self, call: Call, resp: SipResponse, now: float) -> list[ev.Event]:
        """A 2xx we did not want (another fork, or after we gave up): ACK, then BYE (§13.2.2.4)."""
        try:
            dialog = Dialog.from_uac(call.invite, resp)
        except RemoteProtocolError:
            return []
        ack = dialog.build_request("ACK", seq=resp.cseq.seq)
        self._ctx.send_stateless(ack, hop_for(dialog, call.account), now)
        bye = dialog.build_request("BYE")
        self._ctx.start_client(
            bye, hop_for(dialog, call.account), call.account, ignore_response, now
        )
        return []

    def _send_ack(self, call: Call, now: float) -> None:
        """§13.2.2.4: ACK for a 2xx is its own transaction-less request through the dialog."""
        assert call.dialog is not None
        ack = call.dialog.build_request("ACK", seq=call.invite.cseq.seq)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in call.invite.headers.get_lines(name):
                ack.headers.add(name, value)
        call.ack = self._ctx.send_stateless(ack, hop_for(call.dialog, call.account), now)

    def _failure(
        self, call: Call, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> list[ev.Event]:
        status = resp.status
        if (
            status in (401, 407)
            and call.state is not CallState.CANCELLING
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=lambda: call.invite.cseq.seq + 1,  # §8.1.3.5
                handler=self._on_response,
                now=now,
                prepare=lambda request: self._restart(call, request, tx.dest),
            )
        ):
            return []
        if status == 422 and call.state is not CallState.CANCELLING:
            retried = self._retry_422(call, resp, tx.dest, now)
            if retried is not None:
                return retried
        if 300 <= status < 400 and call.state is not CallState.CANCELLING:
            redirected = self._follow_redirect(call, resp, now)
            if redirected is not None:
                return redirected
        if call.dialog is not None:
            self._ctx.calls.unindex_dialog(call.dialog)
            call.dialog.apply(DialogInput.FAILED)
        cancelled = call.state is CallState.CANCELLING
        call.apply(CallInput.RECV_FAILURE)
        warnings = warning_texts(resp.headers.get_lines("Warning"))
        reason = (
            "cancelled"
            if cancelled and status == 487
            else explain(status, resp.reason, "; ".join(warnings) or None)
        )
        return call.end(
            ev.CallFailed(call_id=call.call_id, status=status, reason=reason, phrase=resp.reason)
        )

    def _follow_redirect(self, call: Call, resp: SipResponse, now: float) -> list[ev.Event] | None:
        """§8.1.3.4: try the Contacts of a 3xx, in q order, never twice, at most MAX_REDIRECTS."""
        candidates = sorted(resp.contacts, key=lambda c: -_q(c))
        for contact in candidates:
            uri = contact.uri
            if not isinstance(uri, SipUri) or str(uri) in call.visited:
                continue
            if call.redirects >= MAX_REDIRECTS:
                call.apply(CallInput.RECV_FAILURE)
                return call.end(
                    ev.CallFailed(
                        call_id=call.call_id,
                        status=resp.status,
                        reason=f"{resp.status} {resp.reason} (gave up after {MAX_REDIRECTS} redirects)",
                        phrase=resp.reason,
                    ),
                )
            if call.account.outbound is not None:
                hop = call.account.outbound
            elif is_ip_literal(uri.host):
                hop = address_for_uri(uri, call.account.transport)
            else:
                continue
            call.redirects += 1
            call.visited.add(str(uri))
            request = copy_request(call.invite)
            request.uri = uri
            request.headers.remove("Authorization")
            request.headers.remove("Proxy-Authorization")
            request.headers.remove("Via")
            request.headers.set("CSeq", f"{call.invite.cseq.seq + 1} INVITE")  # §8.1.3.5
            call.auth_attempts = 0
            self._restart(call, request, hop)
            self._ctx.start_client(request, hop, call.account, self._on_response, now)
            return []
        if candidates and all(str(c.uri) in call.visited for c in candidates):
            call.apply(CallInput.RECV_FAILURE)
            return call.end(
                ev.CallFailed(
                    call_id=call.call_id,
                    status=482,
                    reason="redirect loop (482 Loop Detected)",
                    phrase="Loop Detected",
                ),
            )
        return None

    def _retry_422(
        self, call: Call, resp: SipResponse, hop: Address, now: float
    ) -> list[ev.Event] | None:
        """RFC 4028 §7.4: 422 Session Interval Too Small: the INVITE again, asking for the
        422's Min-SE. None when there is nothing to retry with."""
        interval = self._session.interval_after_422(call, resp, call.invite)
        if interval is None:
            return None
        request = copy_request(call.invite)
        request.headers.remove("Via")
        request.headers.set("CSeq", f"{call.invite.cseq.seq + 1} INVITE")  # §8.1.3.5
        request.headers.set("Session-Expires", str(interval))
        request.headers.set("Min-SE", str(interval))
        self._restart(call, request, hop)
        self._ctx.start_client(request, hop, call.account, self._on_response, now)
        return []

    def _fail_over(
        self, call: Call, dest: Address, resp: SipResponse | None, reason: str, now: float
    ) -> list[ev.Event] | None:
        """RFC 3263 §4.3: the INVITE's server did not answer, could not be reached or answered
        503: hold it down and send the INVITE to the account's next server, in a new
        transaction. None when it went elsewhere (a direct call) or no server is left."""
        targets = server_targets(call.account)
        if dest not in targets:
            return None
        health = self._ctx.health
        held_until = health.failed(dest, now, hold_s=retry_after_s(resp))
        call.tried_hops.append(dest)
        nxt = health.next_after(targets, call.tried_hops, now)
        if nxt is None:
            return None
        request = copy_request(call.invite)
        request.headers.remove("Via")
        # Credentials were for the server left behind: the next one challenges afresh.
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        request.headers.set("CSeq", f"{call.invite.cseq.seq + 1} INVITE")  # a new request
        call.auth_attempts = 0
        self._restart(call, request, nxt)
        self._ctx.start_client(request, nxt, call.account, self._on_response, now)
        self._watch_silence(call.call_id, nxt, now)
        return [
            ev.ServerFailedOver(
                account=call.account.name,
                method="INVITE",
                call_id=call.call_id,
                failed=dest.host_port,
                trying=nxt.host_port,
                transport=nxt.transport,
                why=failure_text(resp, reason),
                held_until=held_until,
            )
        ]

    def _restart(self, call: Call, request: SipRequest, hop: Address) -> None:
        """``request`` (new CSeq, no Via yet) becomes the call's INVITE, sent to ``hop`` in a new
        transaction: the call is CALLING again, with no dialog and no provisional yet."""
        call.apply(CallInput.RESTART)
        if call.dialog is not None:
            self._ctx.calls.unindex_dialog(call.dialog)
            call.dialog = None
        call.invite = request
        call.dest = hop
        call.got_provisional = False
        call.prack_client = PrackClient()  # RSeq counts per early dialog (RFC 3262 §4)


def _silence_key(call_id: str) -> tuple[str, str]:
    return ("invite-silent", call_id)


def _q(contact: NameAddr) -> float:
    try:
        return float(contact.param("q") or "1")
    except ValueError:
        return 0.0
