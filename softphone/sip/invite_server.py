"""Incoming calls: the callee's side of INVITE (RFC 3261 §13.3), sans-IO.

A new INVITE rings (IncomingCall); the phone rings, answers or rejects. The 2xx waits for its
ACK (§13.3.1.4: no ACK within 64*T1 ends the call with a BYE), and a CANCEL before the answer
ends the call with 487 (§9.2).

An INVITE with Replaces (RFC 3891 §3) names a call of ours: matched, it arrives as an
Incoming call carrying the replaced call's id (the phone answers it without ringing), and the
replaced call ends once the new one is confirmed by its ACK: BYE when it was up, 487 when it
was still ringing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from softphone.sip import events as ev
from softphone.sip.bye import Bye
from softphone.sip.call import Call, CallInput, CallState
from softphone.sip.context import MethodTable, ServerKey, UaContext
from softphone.sip.dialog import Dialog, DialogInput
from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError
from softphone.sip.message import SipRequest
from softphone.sip.prack import Prack
from softphone.sip.replaces import Replaces
from softphone.sip.session_refresh import SessionRefresh
from softphone.sip.status import explain, warning_header
from softphone.sip.transaction import (
    AckNotReceived,
    AckReceived,
    ServerTransaction,
    TransactionEvent,
    TransportFailed,
    server_key,
)
from softphone.sip.uri import Uri


class InviteServer:
    def __init__(self, ctx: UaContext, bye: Bye, prack: Prack, session: SessionRefresh) -> None:
        self._ctx = ctx
        self._bye = bye
        self._prack = prack  # RFC 3262: our 1xx reliable when asked
        self._session = session  # RFC 4028: session timers
        prack.release_answer = self._answer_after_prack

    def install(self, methods: MethodTable) -> None:
        methods.register_method(
            "INVITE",
            out_of_dialog=self._on_invite,
            accept=("application/sdp",),
            addressed_to_us=True,
            creates_dialog=True,
        )
        methods.register_extension("replaces")  # RFC 3891 §6.2
        methods.observe_call_transactions(self._on_transaction_event)

    def ring(self, call: Call, now: float, *, status: int = 180) -> None:
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot ring a call in state {call.state.name}")
        if call.prack_server is not None and status > 100:
            self._prack.send_reliable(call, status, None, now)
            return
        resp = self._ctx.response(call.invite, status, to_tag=call.local_tag, contact=call.account)
        self._ctx.send_response(call.invite_server_tx, resp, now)

    def answer(self, call: Call, *, sdp: bytes | None, now: float) -> None:
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot answer a call in state {call.state.name}")
        if self._prack.holds_answer(call, sdp):
            return  # RFC 3262 §3: the 2xx goes when the reliable 1xx is PRACKed
        call.local_sdp = sdp
        extra = self._session.answered(call, call.invite, now)
        resp = self._ctx.response(
            call.invite, 200, to_tag=call.local_tag, contact=call.account, sdp=sdp, extra=extra
        )
        assert call.dialog is not None
        call.dialog.apply(DialogInput.ACK_OR_2XX_SENT)
        call.apply(CallInput.SEND_2XX)
        self._ctx.send_response(call.invite_server_tx, resp, now)

    def reject(
        self,
        call: Call,
        *,
        status: int = 486,
        now: float,
        reason: str | None = None,
        warning: tuple[int, str] | None = None,
        extra: Sequence[tuple[str, str]] = (),
        why: str | None = None,
    ) -> list[ev.Event]:
        """A final 3xx-6xx for the ringing call; ``why``: the call's end in words, in place of
        the explained status (a redirect says where the call went)."""
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            raise LocalProtocolError(f"cannot reject a call in state {call.state.name}")
        if not 300 <= status < 700:
            raise LocalProtocolError(f"a rejection needs a 3xx-6xx status, not {status}")
        headers = [*extra]
        if warning is not None:
            headers.append(("Warning", warning_header(*warning)))
        resp = self._ctx.response(
            call.invite, status, to_tag=call.local_tag, reason=reason, extra=headers
        )
        call.apply(CallInput.REJECT)
        self._prack.final_sent(call)
        self._ctx.send_response(call.invite_server_tx, resp, now)
        return call.end(
            ev.CallFailed(
                call_id=call.call_id,
                status=status,
                reason=why or explain(status, resp.reason, warning[1] if warning else None),
                phrase=resp.reason,
            )
        )

    def redirect(
        self,
        call: Call,
        target: Uri,
        *,
        now: float,
        diversion: str | None = None,
        why: str | None = None,
    ) -> list[ev.Event]:
        """Send the caller elsewhere: 302 Moved Temporarily with ``target`` in Contact (RFC 3261
        §8.3, §21.3.3). ``diversion``: the RFC 5806 §4 reason (``unconditional``, ``user-busy``,
        ``no-answer``), said in a Diversion header naming this account; ``why``: the call's end in
        words (default: "forwarded to <target>")."""
        extra = [("Contact", f"<{target}>")]
        if diversion is not None:
            extra.append(("Diversion", f"<{call.account.aor}>;reason={diversion};counter=1"))
        return self.reject(
            call, status=302, now=now, extra=extra, why=why or f"forwarded to {target}"
        )

    def cancelled(self, call: Call, now: float) -> list[ev.Event]:
        """§9.2: the CANCEL matched this call's INVITE (and got its 200): 487 unless answered."""
        if call.state is not CallState.INCOMING or call.invite_server_tx is None:
            return []
        self._ctx.send_response(
            call.invite_server_tx,
            self._ctx.response(call.invite, 487, to_tag=call.local_tag),
            now,
        )
        call.apply(CallInput.RECV_CANCEL)
        self._prack.final_sent(call)
        call.forget_dialog()
        return call.end(
            ev.CallFailed(
                call_id=call.call_id,
                status=487,
                reason="caller cancelled",
                phrase="Request Terminated",
            )
        )

    def _on_invite(self, req: SipRequest, tx: ServerTransaction, now: float) -> list[ev.Event]:
        ctx = self._ctx
        acct = ctx.account_for_request(req)
        assert acct is not None
        if req.call_id in ctx.calls:  # same Call-ID, new transaction, no tag: a merged request
            return ctx.reply(tx, req, 482, now)
        replaced = self._replaced_call(req)
        if isinstance(replaced, tuple):
            status, why = replaced
            return ctx.reply(tx, req, status, now, reason=why)
        if self._prack.refuses(acct, req, tx, now) or self._session.refuses(acct, req, tx, now):
            return []
        local_tag = ctx.token()
        try:
            dialog = Dialog.from_uas(req, local_tag)
        except RemoteProtocolError as exc:
            return ctx.reply(tx, req, exc.status_hint, now, reason=str(exc))
        call = Call(
            call_id=req.call_id,
            account=acct,
            outgoing=False,
            state=CallState.INCOMING,
            invite=req,
            dest=tx.source,
            local_tag=local_tag,
            dialog=dialog,
            invite_server_tx=tx,
            replaces=replaced.call_id if replaced is not None else None,
        )
        ctx.calls.add(call)
        ctx.calls.index_dialog(call)
        self._prack.setup(call)
        ctx.own_server_transaction(server_key(req), call)
        ctx.send_response(tx, ctx.response(req, 100), now)
        waiting = any(
            c.state in (CallState.CONFIRMED, CallState.ANSWERED)
            for c in ctx.calls.live()
            if c is not call
        )
        return [
            ev.IncomingCall(
                call_id=call.call_id,
                account=acct.name,
                remote=str(req.from_.without_param("tag")),
                remote_uri=str(req.from_.uri),
                remote_display=req.from_.display_name,
                request_uri=str(req.uri),
                sdp=req.body if req.body else None,
                replaces_call=waiting,
                replaces=call.replaces,
            )
        ]

    def _replaced_call(self, req: SipRequest) -> Call | tuple[int, str] | None:
        """RFC 3891 §3: the call an INVITE's Replaces names, None without one, or the
        (status, reason) refusing the INVITE."""
        lines = req.headers.get_lines("Replaces")
        if not lines:
            return None
        if len(lines) > 1:
            return 400, "More than one Replaces"
        try:
            replaces = Replaces.parse(lines[0])
        except ParseError as exc:
            return 400, f"Bad Replaces: {exc}"[:80]
        # The tags are matched as if the Replaces were a request we received: to-tag is ours.
        call = self._ctx.calls.by_dialog(replaces.call_id, replaces.to_tag, replaces.from_tag)
        if call is None:
            return 481, "Replaced call does not exist"
        match call.state:
            case CallState.CONFIRMED | CallState.ANSWERED:
                if replaces.early_only:
                    return 486, "Replaced call already answered"
                return call
            case CallState.INCOMING:  # an early dialog we did not initiate may be replaced
                return call
            case CallState.CALLING | CallState.PROCEEDING | CallState.CANCELLING:
                return 481, "Replaced call is our own early dialog"
            case CallState.TERMINATING | CallState.TERMINATED:
                return 603, "Replaced call has ended"
            case _:
                assert_never(call.state)

    def _end_replaced(self, call: Call, now: float) -> list[ev.Event]:
        """The call that replaced another is confirmed: end the other (RFC 3891 §3)."""
        old = self._ctx.calls.get(call.replaces or "")
        call.replaces = None
        if old is None:
            return []
        if old.state is CallState.INCOMING:
            return self.reject(old, status=487, now=now, reason="Replaced")
        if old.state is CallState.CONFIRMED:
            self._bye.send(old, now, why="replaced by a transferred call")
        elif old.state is CallState.ANSWERED:
            self._bye.hang_up(old, now)  # BYE once its ACK comes (§15)
        return []

    def _answer_after_prack(self, call: Call, sdp: bytes | None, now: float) -> None:
        if call.state is CallState.INCOMING:
            self.answer(call, sdp=sdp, now=now)

    def _on_transaction_event(
        self, call: Call, key: ServerKey, item: TransactionEvent, now: float
    ) -> list[ev.Event]:
        """The ACK for our 2xx confirms the call (then a BYE waiting for it goes); no ACK within
        64*T1 ends it with BYE (§13.3.1.4); a transport failure before the answer ends it."""
        if isinstance(item, AckReceived) and call.state is CallState.ANSWERED:
            call.apply(CallInput.RECV_ACK)
            events: list[ev.Event] = [ev.CallConfirmed(call_id=call.call_id)]
            if call.bye_pending:
                self._bye.send(call, now)
            elif call.replaces is not None:
                events += self._end_replaced(call, now)
            return events
        if isinstance(item, AckNotReceived) and call.state is CallState.ANSWERED:
            self._bye.send(call, now)
            return call.end(
                ev.CallEnded(
                    call_id=call.call_id, by="timeout", status=408, reason="no ACK for our answer"
                ),
            )
        if isinstance(item, TransportFailed) and call.state is CallState.INCOMING:
            call.apply(CallInput.REJECT)
            return call.end(
                ev.CallFailed(
                    call_id=call.call_id, status=503, reason=item.reason, no_response=True
                )
            )
        return []
